package wsingest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/coder/websocket"

	"github.com/chronostream/chronostream/internal/ingest"
)

func streamHeader(id string, index int) http.Header {
	h := http.Header{}
	h.Set(ingest.HeaderStream, id)
	h.Set(ingest.HeaderIndex, strconv.Itoa(index))
	return h
}

// TestStreamDropsDuplicates: a reconnection resending from an index the
// log holds already gets counts of every message it sent, and the story
// holds each index once, also when the server forgot the stream.
func TestStreamDropsDuplicates(t *testing.T) {
	f := newFixture(t, ingest.Limits{})
	sendRange := func(f *fixture, from, to int) {
		c := f.dial(t, "?story=s", streamHeader("ws-1", from))
		for i := from; i < to; i++ {
			send(t, c, websocket.MessageText, fmt.Sprintf(`{"i":%d}`, i))
		}
		send(t, c, websocket.MessageBinary, "")
		countsUntil(t, c, to-from)
		if st := closeStatus(t, c); st != websocket.StatusNormalClosure {
			t.Fatalf("close status %v", st)
		}
	}
	sendRange(f, 0, 5)
	sendRange(f, 2, 8) // overlaps 2..4
	sendRange(f, 0, 8) // all of it again

	// A fresh handler on the same log, as after a restart.
	f2 := &fixture{store: f.store, metrics: f.metrics, done: make(chan struct{})}
	f2.handler = NewHandler(Config{Config: ingest.Config{Log: f.store, DefaultChronicle: "main", DefaultStory: "ws"}, Done: f2.done})
	f2.srv = httptest.NewServer(f2.handler)
	t.Cleanup(f2.srv.Close)
	sendRange(f2, 6, 10)

	evs := f.read(t, "main", "s")
	if len(evs) != 10 {
		t.Fatalf("stored %d events, want 10", len(evs))
	}
	for i, e := range evs {
		if want := fmt.Sprintf(`{"i":%d}`, i); string(e.Body) != want || e.Source != "ws-1" || !e.Indexed || e.Index != uint64(i) {
			t.Fatalf("event %d: %s source %q index %d/%v", i, e.Body, e.Source, e.Index, e.Indexed)
		}
	}
}

func TestStreamBadHeader(t *testing.T) {
	f := newFixture(t, ingest.Limits{})
	h := http.Header{}
	h.Set(ingest.HeaderStream, "no spaces")
	h.Set(ingest.HeaderIndex, "0")
	req, _ := http.NewRequest("GET", f.srv.URL+"/", nil)
	req.Header = h
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
}
