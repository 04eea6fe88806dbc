package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The config file's sinks section, in YAML and TOML alike: several sinks,
// dashes or underscores, the type's settings passed on as JSON.
func TestConfigFileSinks(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"c.yaml": `sinks:
  - name: influx
    type: influxdb
    chronicle: host-1
    stories: [cpu_usage, "mem_*"]
    kinds: [metric]
    tags: {dc: eu}
    window-sec: 300
    batch_events: 100
    batch-age: 50ms
    settings: {url: "http://127.0.0.1:8086/write?db=x", gzip: false}
  - name: second
    type: influxdb
    chronicle: app
    start: now
    settings: {url: "http://127.0.0.1:8086/api/v2/write?org=o&bucket=b", token: t}
`,
		"c.toml": `[[sinks]]
name = "influx"
type = "influxdb"
chronicle = "host-1"
stories = ["cpu_usage", "mem_*"]
kinds = ["metric"]
tags = {dc = "eu"}
window_sec = 300
batch_events = 100
batch_age = "50ms"
settings = {url = "http://127.0.0.1:8086/write?db=x", gzip = false}

[[sinks]]
name = "second"
type = "influxdb"
chronicle = "app"
start = "now"
settings = {url = "http://127.0.0.1:8086/api/v2/write?org=o&bucket=b", token = "t"}
`,
	}
	for name, body := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := parseServe([]string{"--config", path}, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s := c.server.Sinks
		if len(s) != 2 {
			t.Fatalf("%s: %d sinks", name, len(s))
		}
		a := s[0]
		if a.Name != "influx" || a.Chronicle != "host-1" || strings.Join(a.Stories, ",") != "cpu_usage,mem_*" || a.Kinds[0] != "metric" ||
			a.Tags["dc"] != "eu" || a.WindowSec != 300 || a.BatchEvents != 100 || time.Duration(a.BatchAge) != 50*time.Millisecond {
			t.Errorf("%s: first sink %+v", name, a)
		}
		if !strings.Contains(string(a.Settings), `"gzip":false`) || s[1].Start != "now" || !strings.Contains(string(s[1].Settings), `"token":"t"`) {
			t.Errorf("%s: settings %s / %+v", name, a.Settings, s[1])
		}
	}
	for _, bad := range []string{
		"sinks: {name: x}", // not a list
		"sinks:\n  - name: x\n    type: influxdb\n    chronicle: c\n    bogus: 1",                          // unknown key
		"sinks:\n  - name: 'a b'\n    type: influxdb\n    chronicle: c",                                    // bad name
		"sinks:\n  - name: x\n    type: nope\n    chronicle: c",                                            // unknown type
		"sinks:\n  - name: x\n    type: influxdb\n    chronicle: c\n    settings: {url: 'http://h/query'}", // not a write URL
	} {
		path := filepath.Join(dir, "bad.yaml")
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := parseServe([]string{"--config", path}, nil)
		if err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
