package ingest_test

import (
	"context"
	"errors"
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

// TestStreamsMemory: Appended moves next forward only; a failed append
// makes the next Acquire read the log again.
func TestStreamsMemory(t *testing.T) {
	s := testutil.OpenStore(t, store.Options{})
	appendStream(t, s, "a", "one", 0, 4)
	st := ingest.NewStreams(s, 0, nil)
	g, err := st.Acquire(context.Background(), "c", "a", "one")
	if err != nil {
		t.Fatal(err)
	}
	g.Appended(100, 0, nil)
	g.Appended(50, 0, nil)
	g.Release()
	if got := next(t, st, "a", "one"); got != 100 {
		t.Fatalf("next from memory %d, want 100", got)
	}
	g, _ = st.Acquire(context.Background(), "c", "a", "one")
	g.Appended(200, 0, errors.New("append failed"))
	g.Release()
	if got := next(t, st, "a", "one"); got != 4 {
		t.Fatalf("next after a failed append %d, want 4 (from the log)", got)
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

// TestStreamsRecordedPosition: a source record carrying the stream's
// position bounds the lookup to the events after it, however deep the
// stream's last event lies, and events the stream appended after the record
// (a crash before it was updated) still count: the log is the truth.
func TestStreamsRecordedPosition(t *testing.T) {
	s := testutil.OpenStore(t, store.Options{})
	appendStream(t, s, "p", "rec", 0, 5)
	var last uint64
	if _, err := s.Read(context.Background(), store.Query{Chronicle: "c", Story: "p"}, func(e *event.Event) error { last = e.Seq; return nil }, nil); err != nil {
		t.Fatal(err)
	}
	put := func(pos *store.StreamPosition, story string) {
		t.Helper()
		if err := s.PutSource(context.Background(), store.Source{ID: "rec", Chronicle: "c", Story: story, Stream: pos}); err != nil {
			t.Fatal(err)
		}
	}
	put(&store.StreamPosition{Next: 5, Seq: last}, "p")
	appendOther(t, s, "p", 50) // deeper than the bound below

	// Without the record, a bound of 10 misses the stream; with it, the
	// 50 events after its position are read whole, not cut at the bound.
	if got := next(t, ingest.NewStreams(s, 10, nil), "p", "rec"); got != 5 {
		t.Fatalf("next with a recorded position: %d, want 5", got)
	}
	// Appended after the record was put: found after its position.
	var evs []event.Event
	for i := uint64(5); i < 8; i++ {
		evs = append(evs, event.Event{Source: "rec", Index: i, Indexed: true, Body: []byte("{}")})
	}
	if _, err := s.Append("c", "p", evs).Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	appendOther(t, s, "p", 3)
	if got := next(t, ingest.NewStreams(s, 10, nil), "p", "rec"); got != 8 {
		t.Fatalf("next with events after the recorded position: %d, want 8", got)
	}
	// A record of another story says nothing of this one.
	put(&store.StreamPosition{Next: 99, Seq: last}, "other")
	if got := next(t, ingest.NewStreams(s, 0, nil), "p", "rec"); got != 8 {
		t.Fatalf("next with a record of another story: %d, want 8 (from the log)", got)
	}
}
