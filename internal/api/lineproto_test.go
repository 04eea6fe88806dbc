package api

import (
	"encoding/json"
	"io"
	"testing"

	"github.com/chronostream/chronostream/event"
)

// A metric written as line protocol is stored as its line; reads derive
// its tags and typed fields, and filter on them.
func TestReadLineProtocol(t *testing.T) {
	e := newEnv(t, Config{})
	e.append("telegraf", "cpu",
		event.Event{Time: 1e9, Kind: event.KindMetric, Format: event.FormatLine,
			Body: []byte(`cpu,host=a,dc=eu\ west usage=1.5,n=3i,big=18446744073709551615u,up=t,note="say \"hi\"" 1`)},
		event.Event{Time: 2e9, Kind: event.KindMetric, Format: event.FormatLine, Body: []byte(`cpu,host=b usage=2 2`)})

	resp := e.do("GET", "/api/v1/chronicles/telegraf/stories/cpu/events?tag.host=a", nil)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	var p struct {
		Events []struct {
			Kind   string                     `json:"kind"`
			Tags   map[string]string          `json:"tags"`
			Fields map[string]json.RawMessage `json:"fields"`
		} `json:"events"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 1 {
		t.Fatalf("tag filter: %s", b)
	}
	ev := p.Events[0]
	if ev.Kind != "metric" || ev.Tags["host"] != "a" || ev.Tags["dc"] != "eu west" {
		t.Errorf("tags: %s", b)
	}
	want := map[string]string{"usage": "1.5", "n": "3", "big": "18446744073709551615", "up": "true", "note": `"say \"hi\""`}
	for k, v := range want {
		if string(ev.Fields[k]) != v {
			t.Errorf("field %s = %s, want %s", k, ev.Fields[k], v)
		}
	}
	var q struct{ Events []json.RawMessage }
	e.getJSON("/api/v1/chronicles/telegraf/stories/cpu/events?field.usage=2", 200, &q)
	if len(q.Events) != 1 {
		t.Errorf("field filter: %d events", len(q.Events))
	}
}
