package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/testutil"
)

// TestServeDefaultsIngestAndReadBack runs `chronostream serve` with nothing
// but a random port, posts NDJSON as the anacrolix server takes it, and
// reads back exactly what was sent.
func TestServeDefaultsIngestAndReadBack(t *testing.T) {
	bin := testutil.BuildBinary(t)
	dir := t.TempDir()
	p := testutil.StartProc(t, bin, testutil.ProcOptions{Args: []string{"serve", "--http", "127.0.0.1:0"}, Dir: dir})
	if _, err := os.Stat(filepath.Join(dir, "data")); err != nil {
		t.Fatalf("the default --data ./data was not used: %v", err)
	}
	for _, path := range []string{"/health", "/ready", "/metrics"} {
		resp, err := client.Get(p.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
	}

	sent := []string{
		`{"msg":"hello","level":"info","n":1}`,
		`{"time":"2026-03-04T05:06:07.123456789Z","kind":"metric","tags":{"host":"a b","dc":"ü"},"cpu":0.5,"up":true}`,
		`{"nested":{"deep":[1,2,{"x":null}]},"s":"line\nbreak","big":12345678901234}`,
		`42`,
		`"just a string"`,
		`[1,"two",3.5]`,
	}
	// A story name NATS subjects cannot carry as is must work all the same.
	const chronicle, story = "e2e.chronicle", "story with spaces/and.dots*>"
	mustPost(t, p.URL(), chronicle, story, sent...)

	got := readStory(t, p.URL(), chronicle, story)
	if len(got) != len(sent) {
		t.Fatalf("read %d events, want %d", len(got), len(sent))
	}
	for i, e := range got {
		if !sameJSON(t, e.Body, []byte(sent[i])) {
			t.Errorf("event %d: body %s, want %s", i, e.Body, sent[i])
		}
		if e.Story != story {
			t.Errorf("event %d: story %q, want %q", i, e.Story, story)
		}
		if i > 0 && e.Seq <= got[i-1].Seq {
			t.Errorf("event %d: seq %d does not follow %d", i, e.Seq, got[i-1].Seq)
		}
		if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
			t.Errorf("event %d: time %q: %v", i, e.Time, err)
		}
	}
	m := got[1]
	if m.Kind != "metric" || m.Time != "2026-03-04T05:06:07.123456789Z" {
		t.Errorf("event 1: kind %q time %q, want the payload's metric at 2026-03-04T05:06:07.123456789Z", m.Kind, m.Time)
	}
	if m.Tags["host"] != "a b" || m.Tags["dc"] != "ü" || m.Fields["cpu"] != 0.5 || m.Fields["up"] != true {
		t.Errorf("event 1: tags %v fields %v, want the payload's", m.Tags, m.Fields)
	}
	if got[0].Kind != "log" {
		t.Errorf("event 0: kind %q, want log (it has msg and level)", got[0].Kind)
	}

	// POST / without parameters writes to the default chronicle and story.
	mustPost(t, p.URL(), "", "", `{"anonymous":true}`)
	def := readStory(t, p.URL(), "default", "default")
	if len(def) != 1 || !sameJSON(t, def[0].Body, []byte(`{"anonymous":true}`)) {
		t.Fatalf("default story holds %v, want the one anonymous event", def)
	}
}

// TestServeAgainstExternalNATS runs chronostream on a separately started
// nats-server process: events are stored there, so a second chronostream
// with another --data directory reads them back.
func TestServeAgainstExternalNATS(t *testing.T) {
	natsURL := testutil.StartNATSServer(t)
	bin := testutil.BuildBinary(t)
	p := testutil.StartBinary(t, bin, "--nats", natsURL, "--data", t.TempDir())
	if !strings.Contains(p.ReadyLine, "nats=") || strings.Contains(p.ReadyLine, "nats=embedded") {
		t.Fatalf("the ready line does not show the external NATS: %s", p.ReadyLine)
	}
	var sent []string
	for i := range 100 {
		b, _ := json.Marshal(map[string]any{"i": i, "msg": "via external nats", "pad": pad})
		sent = append(sent, string(b))
	}
	mustPost(t, p.URL(), "ext", "s", sent[:60]...)
	mustPost(t, p.URL(), "ext", "s", sent[60:]...)
	check := func(base string) {
		t.Helper()
		got := readStory(t, base, "ext", "s")
		if len(got) != len(sent) {
			t.Fatalf("read %d events, want %d", len(got), len(sent))
		}
		for i, e := range got {
			if !sameJSON(t, e.Body, []byte(sent[i])) {
				t.Fatalf("event %d: body %s, want %s", i, e.Body, sent[i])
			}
		}
	}
	check(p.URL())
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	q := testutil.StartBinary(t, bin, "--nats", natsURL, "--data", t.TempDir())
	check(q.URL())
}

// TestGracefulShutdownLosesNothingAcknowledged sends SIGTERM during a
// sustained ingest: the process exits 0, and after a restart on the same
// data every acknowledged event is there, once, in order.
func TestGracefulShutdownLosesNothingAcknowledged(t *testing.T) {
	bin := testutil.BuildBinary(t)
	data := t.TempDir()
	p := testutil.StartBinary(t, bin, "--data", data)
	l := startLoad("graceful", 4)
	l.setBase(p.URL())
	l.waitAcked(t, 2000)
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	l.setDown()
	l.finish(t)
	if !strings.Contains(p.Stderr(), "chronostream stopped") {
		t.Errorf("no \"chronostream stopped\" in the log:\n%s", p.Stderr())
	}
	q := testutil.StartBinary(t, bin, "--data", data)
	l.verify(t, q.URL())
}

// contractFlags are the serve flags users and scripts rely on (DESIGN.md
// and issue 2); --help must document each with its environment variable.
var contractFlags = []string{
	"data", "http", "graphite", "forward", "nats", "nats-creds", "nats-user", "nats-password", "nats-token",
	"nats-tls-ca", "nats-tls-cert", "nats-tls-key", "replicas", "config", "token", "insecure-no-auth",
	"auto-create", "retention-max-age", "retention-max-bytes", "retention-max-events", "max-body-bytes",
	"max-event-bytes", "default-chronicle", "default-story", "sync", "log-level", "log-format",
}

func TestServeHelpListsEveryFlag(t *testing.T) {
	bin := testutil.BuildBinary(t)
	for _, args := range [][]string{{"serve", "--help"}, {"help", "serve"}} {
		out := runOutput(t, bin, args...)
		for _, f := range contractFlags {
			env := "CHRONOSTREAM_" + strings.ToUpper(strings.ReplaceAll(f, "-", "_"))
			if !strings.Contains(out, "--"+f+" ") || !strings.Contains(out, env) {
				t.Errorf("%s does not document --%s and %s", strings.Join(args, " "), f, env)
			}
		}
	}
	if v := runOutput(t, bin, "version"); !strings.HasPrefix(v, "chronostream ") {
		t.Errorf("version printed %q", v)
	}
}

// TestServeConfigPrecedence checks, on the real binary, that a flag beats
// its environment variable, which beats the config file, which beats the
// default — for YAML and TOML files.
func TestServeConfigPrecedence(t *testing.T) {
	bin := testutil.BuildBinary(t)
	root := t.TempDir()
	dirs := map[string]string{}
	for _, k := range []string{"config", "toml", "env", "flag"} {
		dirs[k] = filepath.Join(root, k+"-data")
	}
	yamlFile := filepath.Join(root, "chronostream.yaml")
	writeConfig(t, yamlFile, "data: "+dirs["config"]+"\nhttp: 127.0.0.1:0\nlog-format: json\ntoken: [t1, t2]\n")
	tomlFile := filepath.Join(root, "chronostream.toml")
	writeConfig(t, tomlFile, "data = \""+dirs["toml"]+"\"\nhttp = \"127.0.0.1:0\"\n")
	// 256.0.0.1 cannot be listened on: if it wins, the server fails to start.
	const unusable = "256.0.0.1:0"

	tests := []struct {
		name     string
		args     []string
		env      []string
		wantData string
	}{
		{"yaml config", []string{"--config", yamlFile}, nil, dirs["config"]},
		{"toml config from env", nil, []string{"CHRONOSTREAM_CONFIG=" + tomlFile}, dirs["toml"]},
		{"env beats config", []string{"--config", yamlFile}, []string{"CHRONOSTREAM_DATA=" + dirs["env"]}, dirs["env"]},
		{"flag beats env", []string{"--config", yamlFile, "--data", dirs["flag"]}, []string{"CHRONOSTREAM_DATA=" + dirs["env"]}, dirs["flag"]},
		{"env http beats config http", []string{"--config", tomlFile},
			[]string{"CHRONOSTREAM_HTTP=127.0.0.1:0", "CHRONOSTREAM_GRAPHITE=", "CHRONOSTREAM_FORWARD="}, dirs["toml"]},
		{"flag http beats env http", []string{"--config", tomlFile, "--http", "127.0.0.1:0"},
			[]string{"CHRONOSTREAM_HTTP=" + unusable}, dirs["toml"]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testutil.StartProc(t, bin, testutil.ProcOptions{Args: append([]string{"serve"}, tt.args...), Env: tt.env})
			if got := readyAttr(t, p.ReadyLine, "data"); got != tt.wantData {
				t.Errorf("data = %q, want %q", got, tt.wantData)
			}
			if _, err := os.Stat(filepath.Join(tt.wantData, "jetstream")); err != nil {
				t.Errorf("nothing stored in the chosen data directory: %v", err)
			}
			if code := p.Stop(); code != 0 {
				t.Errorf("exit code %d after SIGTERM", code)
			}
		})
	}

	t.Run("tokens from config are enforced", func(t *testing.T) {
		p := testutil.StartProc(t, bin, testutil.ProcOptions{Args: []string{"serve", "--config", yamlFile}})
		req, _ := http.NewRequest(http.MethodPost, p.URL()+"/", strings.NewReader("{}\n"))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("POST / without a token: %s, want 401", resp.Status)
		}
		req, _ = http.NewRequest(http.MethodPost, p.URL()+"/", strings.NewReader("{}\n"))
		req.Header.Set("Authorization", "Bearer t2")
		resp, err = client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST / with a configured token: %s, want 200", resp.Status)
		}
	})

	bad := []struct {
		name, file, content, want string
	}{
		{"unknown key", "bad.yaml", "data: x\nhttp: 127.0.0.1:0\nlisten: 127.0.0.1:0\n", `unknown key "listen"`},
		{"bad value", "bad.toml", "replicas = \"many\"\n", `key "replicas"`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), tt.file)
			writeConfig(t, f, tt.content)
			p := testutil.StartProc(t, bin, testutil.ProcOptions{Args: []string{"serve", "--config", f}, NoWaitReady: true})
			if code := p.Wait(); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if !strings.Contains(p.Stderr(), tt.want) {
				t.Errorf("stderr does not name the problem (%s):\n%s", tt.want, p.Stderr())
			}
		})
	}
}

func writeConfig(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// readyAttr returns an attribute of the ready log line, text or JSON.
func readyAttr(t testing.TB, line, key string) string {
	t.Helper()
	if strings.HasPrefix(line, "{") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("ready line %q: %v", line, err)
		}
		s, _ := m[key].(string)
		return s
	}
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// runOutput runs bin with args, requires exit code 0, and returns its stdout.
func runOutput(t testing.TB, bin string, args ...string) string {
	t.Helper()
	p := testutil.StartProc(t, bin, testutil.ProcOptions{Args: args, NoWaitReady: true})
	if code := p.Wait(); code != 0 {
		t.Fatalf("chronostream %s: exit code %d; stderr:\n%s", strings.Join(args, " "), code, p.Stderr())
	}
	return p.Stdout()
}
