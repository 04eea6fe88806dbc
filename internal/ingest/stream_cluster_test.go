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

// sendVia is one request of client stream id on a node: events from..to-1
// go through the node's Streams as a transport sends them (resends dropped,
// the rest appended, the outcome recorded). It returns how many were stored.
func sendVia(t *testing.T, s *store.Store, node *ingest.Streams, story, id string, from, to uint64) int {
	t.Helper()
	ctx := context.Background()
	g, err := node.Acquire(ctx, "c", story, id)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	var evs []event.Event
	for i := from; i < to; i++ {
		if !g.Stored(i) {
			evs = append(evs, event.Event{Source: id, Index: i, Indexed: true, Body: []byte("{}")})
		}
	}
	src := ingest.NewSource(&http.Request{}, "test", "c", story)
	src.ID, src.Stream = id, g.Position()
	if err := s.PutSource(ctx, src); err != nil {
		t.Fatal(err)
	}
	a, err := s.Append("c", story, evs).Wait(ctx)
	g.Appended(to, a.Last, err)
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

// TestStreamsMoveBetweenNodes: two nodes (two Streams) on one log that
// both write. A client stream moves from A to B and back to A, resending
// what B stored: A must check the log, not trust what it remembers from
// before the move, and store each index once. Another stream writing the
// story meanwhile must not make A forget the position either.
func TestStreamsMoveBetweenNodes(t *testing.T) {
	s := testutil.OpenStore(t, store.Options{}, testutil.Shared)
	a := ingest.NewStreams(s, 0, nil)
	b := ingest.NewStreams(s, 0, nil)

	steps := []struct {
		node     *ingest.Streams
		name     string
		from, to uint64
		stored   int
	}{
		{a, "A", 0, 5, 5},
		{a, "A (resend)", 3, 7, 2},
		{b, "B (resend of A's, then new)", 5, 10, 3},
		{a, "A again (resend of B's, then new)", 7, 12, 2},
		{b, "B again (resend)", 0, 12, 0},
	}
	for _, st := range steps {
		if got := sendVia(t, s, st.node, "s", "client", st.from, st.to); got != st.stored {
			t.Fatalf("%s: stored %d of %d..%d, want %d", st.name, got, st.from, st.to-1, st.stored)
		}
		appendOther(t, s, "s", 3) // another producer of the story
	}
	counts := map[uint64]int{}
	if _, err := s.Read(context.Background(), store.Query{Chronicle: "c", Story: "s"}, func(e *event.Event) error {
		if e.Source == "client" {
			counts[e.Index]++
		}
		return nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 12; i++ {
		if counts[i] != 1 {
			t.Errorf("index %d stored %d times, want once", i, counts[i])
		}
	}
	if len(counts) != 12 {
		t.Errorf("%d distinct indexes stored, want 12", len(counts))
	}
}

// staleLog is a shared log whose first read of a story is served by a copy
// that lacks the newest block, as a JetStream follower a moment behind its
// leader would.
type staleLog struct {
	*store.Store
	stale int // reads still to serve stale
}

func (l *staleLog) Read(ctx context.Context, q store.Query, fn func(*event.Event) error, onGap func(store.Gap) error) (uint64, error) {
	if l.stale == 0 {
		return l.Store.Read(ctx, q, fn, onGap)
	}
	l.stale--
	head, err := l.StoryHead(ctx, q.Chronicle, q.Story)
	if err != nil {
		return 0, err
	}
	match := q.Match
	q.Match = func(e *event.Event) bool {
		block, _ := event.SplitSeq(e.Seq)
		return block < head && (match == nil || match(e))
	}
	return l.Store.Read(ctx, q, fn, onGap)
}

// TestStreamsStaleCopy: a node learning a stream's position from a copy
// that lacks the newest block (the one with the stream's newest events)
// reads again until it sees the leader's newest block, instead of taking
// the older position and storing a resend twice.
func TestStreamsStaleCopy(t *testing.T) {
	s := testutil.OpenStore(t, store.Options{}, testutil.Shared)
	a := ingest.NewStreams(s, 0, nil)
	if got := sendVia(t, s, a, "s", "client", 0, 5); got != 5 {
		t.Fatalf("stored %d, want 5", got)
	}
	appendStream(t, s, "s", "client", 5, 8) // the newest block: 5..7, its record not updated
	b := ingest.NewStreams(&staleLog{Store: s, stale: 2}, 0, nil)
	if got := next(t, b, "s", "client"); got != 8 {
		t.Fatalf("next %d after reads of a stale copy, want 8 (the leader's newest block holds index 7)", got)
	}
}
