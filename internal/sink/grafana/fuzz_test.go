package grafana

import (
	"strings"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/jsonev"
)

// FuzzNoteOf decodes arbitrary annotation bodies as the sink does: it
// never panics, and what it accepts keeps the convention's promises.
func FuzzNoteOf(f *testing.F) {
	for _, s := range []string{
		`{"kind":"annotation","text":"deployed","title":"Deploy","tags":{"service":"api"}}`,
		`{"kind":"annotation","text":"x","tags":"a, b,,c"}`,
		`{"kind":"annotation","text":"x","time_end":1795000000000000000}`,
		`{"kind":"annotation","text":"x","time_end":1795000000}`,
		`{"kind":"annotation","text":"x","time_end":1.5e18}`,
		`{"kind":"annotation","text":"x","time_end":-5}`,
		`{"kind":"annotation","region":"r","phase":"start","text":"go"}`,
		`{"kind":"annotation","region":"r","phase":"end"}`,
		`{"kind":"annotation","text":"x","activity":"probe"}`,
		`{"kind":"annotation","text":5}`,
		`"just a string"`,
		`not json`,
	} {
		f.Add([]byte(s), int64(1795000000123456789))
	}
	f.Fuzz(func(t *testing.T, body []byte, at int64) {
		var p fastjson.Parser
		e := event.Event{Seq: 1, Time: at, Kind: event.KindAnnotation, Body: body, Format: event.FormatJSON}
		jsonev.Expand(&p, &e)
		n, ok, err := noteOf(&e)
		if !ok {
			t.Fatal("an annotation event was taken for another kind")
		}
		if err != nil {
			return
		}
		if n.text == "" && n.phase != PhaseEnd {
			t.Errorf("accepted without text: %+v", n)
		}
		if n.timeEnd != 0 && n.timeEnd < n.time {
			t.Errorf("accepted a region ending before it starts: %+v", n)
		}
		if (n.phase == "") != (n.region == "") {
			t.Errorf("phase %q with region %q", n.phase, n.region)
		}
		if len(n.text) > maxText || len(n.tags) > maxTags/2 {
			t.Errorf("bounds exceeded: %d bytes of text, %d tags", len(n.text), len(n.tags))
		}
		for _, tag := range n.tags {
			if strings.TrimSpace(tag) == "" || len(tag) > maxTagLen {
				t.Errorf("bad tag %q", tag)
			}
		}
	})
}

// FuzzConfig: any settings are either refused or valid.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		`{"servers":[{"host":"g","port":3000,"api_token":"t","dashboard_uid":"u","panel_id":1,"tags":["a"]}]}`,
		`{"servers":[{"host":"g","dashboardId":4,"panelId":1,"only_actions":true,"timeout":"5s"}]}`,
		`{"servers":[{"host":"g","protocol":"https","annotation_api_endpoint":"/g/api/annotations/"}]}`,
		`{"servers":[]}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, settings []byte) {
		c, err := parseConfig(settings)
		if err != nil {
			return
		}
		for _, s := range c.Servers {
			if s.Host == "" || s.Port < 1 || s.Port > 65535 || (s.Protocol != "http" && s.Protocol != "https") ||
				!strings.HasPrefix(s.AnnotationAPIEndpoint, "/") || (s.APIToken != "" && s.Username != "") {
				t.Errorf("accepted invalid server settings: %+v", s)
			}
		}
	})
}
