package store

import (
	"context"
	"errors"
	"testing"

	"github.com/chronostream/chronostream/event"
)

// TestStreamIndexStored: client stream indexes are stored with their events
// (mixed in one block with events that have none) and a descending read
// matching the stream id finds the stream's newest index first, which is
// how ingest learns a stream's last durable index after a restart.
func TestStreamIndexStored(t *testing.T) {
	s := openStore(t, Options{AutoCreate: true})
	ctx := context.Background()
	var evs []event.Event
	for i := range 10 {
		evs = append(evs, event.Event{Source: "cli-1", Index: uint64(100 + i), Indexed: true, Body: []byte(`{}`)})
		evs = append(evs, event.Event{Source: "req", Body: []byte(`{}`)})
	}
	if _, err := s.Append("c", "s", evs[:8]).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append("c", "s", evs[8:]).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	var got []uint64
	_, err := s.Read(ctx, Query{Chronicle: "c", Story: "s"}, func(e *event.Event) error {
		if e.Indexed != (e.Source == "cli-1") {
			t.Errorf("event %d of %q: indexed %v", e.Seq, e.Source, e.Indexed)
		}
		if e.Indexed {
			got = append(got, e.Index)
		}
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 || got[0] != 100 || got[9] != 109 {
		t.Fatalf("indexes read back: %v", got)
	}
	errFound := errors.New("found")
	var last uint64
	_, err = s.Read(ctx, Query{Chronicle: "c", Story: "s", Desc: true,
		Match: func(e *event.Event) bool { return e.Indexed && e.Source == "cli-1" }},
		func(e *event.Event) error { last = e.Index; return errFound }, nil)
	if !errors.Is(err, errFound) || last != 109 {
		t.Fatalf("newest index of the stream: %d (%v), want 109", last, err)
	}
}
