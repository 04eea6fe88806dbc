package remote

import (
	"testing"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/api"
)

// FuzzDecodeEvent: any input decodes or is refused with an error (no
// panic); what decodes, encoded again by the API and decoded, is the same
// event (seq, time, story, kind, format and body survive the round trip).
func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"seq":100001,"time":"2026-11-22T03:00:00.123456789Z","story":"cpu","kind":"metric","tags":{"host":"a"},"fields":{"v":2},"body":"cpu,host=a v=2 1","source":"s"}`))
	f.Add([]byte(`{"seq":7,"time":"1970-01-01T00:00:00Z","story":"logs","kind":"log","tags":{},"fields":{"msg":"x"},"body":{"msg":"x","n":[1,2]}}`))
	f.Add([]byte(`{"seq":9,"time":"1970-01-01T00:00:00.000000005Z","story":"raw","kind":"log","tags":{},"fields":{},"body_base64":"/wB4"}`))
	f.Add([]byte(`{"seq":3,"time":"2000-01-01T00:00:00Z","story":"g","kind":"metric","tags":{},"fields":{"v":1e300,"ok":true,"s":"t"},"body":"g 1 2"}`))
	f.Add([]byte(`{"seq":0}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEvent(data)
		if err != nil {
			return
		}
		again, err := DecodeEvent(api.AppendEventJSON(nil, &e))
		if err != nil {
			t.Fatalf("re-encoded event does not decode: %v\n%s", err, api.AppendEventJSON(nil, &e))
		}
		if again.Seq != e.Seq || again.Time != e.Time || again.Story != e.Story || again.Kind != e.Kind ||
			again.Format != e.Format || string(again.Body) != string(e.Body) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", e, again)
		}
		if e.Format == event.FormatRaw && len(again.Fields) != len(e.Fields) {
			t.Fatalf("fields %v became %v", e.Fields, again.Fields)
		}
	})
}
