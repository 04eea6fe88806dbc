package ndjson

import (
	"strings"
	"testing"

	"github.com/chronostream/chronostream/internal/ingest"
)

// TestRefusalHeaders: a refused POST / or events request says in headers
// how many events were stored, why, and whether one event (which line) or
// the request as a whole was refused, for clients to act on without
// parsing the text.
func TestRefusalHeaders(t *testing.T) {
	f := newFixture(t, ingest.Limits{MaxBodyBytes: 100, MaxEventBytes: 30}, true)
	for _, tc := range []struct {
		name, path, body     string
		header               map[string]string
		status               int
		stored, reason, line string
	}{
		{"event too large", "/?story=h", "{\"a\":1}\n{\"a\":2}\n{\"pad\":\"" + strings.Repeat("x", 40) + "\"}\n", nil, 413, "2", "event_too_large", "3"},
		{"body too large", "/?story=h", strings.Repeat("{\"a\":1}\n", 20), nil, 413, "0", "body_too_large", ""},
		{"invalid json", "/?story=h", "{\"a\":1}\n{\"a\":]\n", nil, 400, "1", "invalid_json", "2"},
		{"invalid stream", "/?story=h", "{}\n", map[string]string{ingest.HeaderStream: "a b", ingest.HeaderIndex: "0"}, 400, "0", "invalid_stream", ""},
		{"events route", "/api/v1/chronicles/main/stories/h/events", "{\"a\":1}\n{\"pad\":\"" + strings.Repeat("x", 40) + "\"}\n", nil, 413, "1", "event_too_large", "2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, h, body := f.post(t, tc.path, strings.NewReader(tc.body), tc.header)
			if code != tc.status || h.Get(HeaderStored) != tc.stored || h.Get(HeaderReason) != tc.reason || h.Get(HeaderRejectedLine) != tc.line {
				t.Fatalf("%d stored=%q reason=%q line=%q (%q); want %d %q %q %q", code, h.Get(HeaderStored), h.Get(HeaderReason),
					h.Get(HeaderRejectedLine), body, tc.status, tc.stored, tc.reason, tc.line)
			}
		})
	}
}
