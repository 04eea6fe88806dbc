package ingest_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
)

func appendStream(t testing.TB, s *store.Store, story, id string, from, to uint64) {
	t.Helper()
	var evs []event.Event
	for i := from; i < to; i++ {
		evs = append(evs, event.Event{Source: id, Index: i, Indexed: true, Body: []byte("{}")})
	}
	if err := s.PutSource(context.Background(), store.Source{ID: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append("c", story, evs).Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func appendOther(t testing.TB, s *store.Store, story string, n int) {
	t.Helper()
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{Source: "other", Body: []byte("{}")}
	}
	if _, err := s.Append("c", story, evs).Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func next(t testing.TB, st *ingest.Streams, story, id string) uint64 {
	t.Helper()
	g, err := st.Acquire(context.Background(), "c", story, id)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	return g.Next()
}

// TestStreamsLearnFromLog: without memory of a stream, its next index is
// its newest event's index plus one, found within the scan bound, and 0
// for a stream the log does not hold (or holds deeper than the bound).
func TestStreamsLearnFromLog(t *testing.T) {
	s := testutil.OpenStore(t, store.Options{})
	appendStream(t, s, "a", "one", 0, 10)
	appendOther(t, s, "a", 5)
	appendStream(t, s, "b", "two", 0, 3)
	appendOther(t, s, "b", 20)

	st := ingest.NewStreams(s, 10, nil)
	for _, tc := range []struct {
		story, id string
		want      uint64
	}{
		{"a", "one", 10},
		{"a", "two", 0},    // its source exists, its events are in b
		{"a", "never", 0},  // no source: no read at all
		{"nope", "one", 0}, // no such story
		{"b", "two", 0},    // beyond the 10 newest events of b
	} {
		if got := next(t, st, tc.story, tc.id); got != tc.want {
			t.Errorf("%s/%s: next %d, want %d", tc.story, tc.id, got, tc.want)
		}
	}
	if got := next(t, ingest.NewStreams(s, 0, nil), "b", "two"); got != 3 {
		t.Errorf("b/two with the default bound: next %d, want 3", got)
	}
}

// TestStreamsMemory: Stored moves next forward only; Invalidate makes the
// next Acquire read the log again.
func TestStreamsMemory(t *testing.T) {
	s := testutil.OpenStore(t, store.Options{})
	appendStream(t, s, "a", "one", 0, 4)
	st := ingest.NewStreams(s, 0, nil)
	g, err := st.Acquire(context.Background(), "c", "a", "one")
	if err != nil {
		t.Fatal(err)
	}
	g.Stored(100)
	g.Stored(50)
	g.Release()
	if got := next(t, st, "a", "one"); got != 100 {
		t.Fatalf("next from memory %d, want 100", got)
	}
	g, _ = st.Acquire(context.Background(), "c", "a", "one")
	g.Invalidate()
	g.Release()
	if got := next(t, st, "a", "one"); got != 4 {
		t.Fatalf("next after Invalidate %d, want 4 (from the log)", got)
	}
	// The lock is exclusive: a second Acquire waits for the first's Release.
	g, _ = st.Acquire(context.Background(), "c", "a", "one")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := st.Acquire(ctx, "c", "a", "one"); err == nil {
		t.Fatal("a second holder acquired the stream")
	}
	g.Release()
}

func TestStreamOf(t *testing.T) {
	r, _ := http.NewRequest("POST", "/", nil)
	if _, _, ok, err := ingest.StreamOf(r); ok || err != nil {
		t.Fatalf("no headers: %v %v", ok, err)
	}
	r.Header.Set(ingest.HeaderStream, "abc-DEF_9")
	r.Header.Set(ingest.HeaderIndex, "18446744073709551615")
	id, first, ok, err := ingest.StreamOf(r)
	if !ok || err != nil || id != "abc-DEF_9" || first != 1<<64-1 {
		t.Fatalf("got %q %d %v %v", id, first, ok, err)
	}
}
