package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/chronostream/chronostream/internal/sink"
	// Every sink type the config file can name.
	_ "github.com/chronostream/chronostream/internal/sink/all"
)

// parseSinks reads the config file's "sinks" section: a list of sinks, each
// a map of the keys of sink.Config (dashes or underscores alike) with the
// type's own settings under "settings", e.g. in YAML
//
//	sinks:
//	  - name: influx
//	    type: influxdb
//	    chronicle: metrics
//	    stories: [cpu_usage, "mem_*"]
//	    settings: {url: "http://127.0.0.1:8086/write?db=metrics"}
//
// (in TOML, [[sinks]] tables). Like "chronicles", it has no flag form.
func parseSinks(v any) ([]sink.Config, error) {
	var items []map[string]any
	switch v := v.(type) {
	case []map[string]any: // TOML's [[sinks]]
		items = v
	case []any:
		for i, it := range v {
			m, ok := it.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("sink %d: want a map of settings, not %T", i+1, it)
			}
			items = append(items, m)
		}
	default:
		return nil, fmt.Errorf("want a list of sinks, not %T", v)
	}
	out := make([]sink.Config, 0, len(items))
	for i, m := range items {
		norm := make(map[string]any, len(m))
		for k, val := range m {
			norm[strings.ReplaceAll(k, "-", "_")] = val
		}
		b, err := json.Marshal(norm)
		if err != nil {
			return nil, fmt.Errorf("sink %d: %w", i+1, err)
		}
		var c sink.Config
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("sink %d (%v): %w", i+1, m["name"], err)
		}
		if err := c.Validate(); err != nil {
			return nil, err
		}
		// Build it once to check the type and its settings now, with the
		// rest of the command line, rather than when the server starts.
		snk, err := sink.New(c.Type, c.Settings, nil)
		if err != nil {
			return nil, fmt.Errorf("sink %s: %w", c.Name, err)
		}
		_ = snk.Close()
		out = append(out, c)
	}
	return out, nil
}
