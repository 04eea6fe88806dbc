package sink

import (
	"context"
	"fmt"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/store"
)

// Source is the log as a runner reads it: the local store in the server
// (LocalSource), or a server's HTTP API for `chronostream forward`
// (internal/sink/remote). Errors wrapping store.ErrNotFound mean the
// chronicle does not exist (yet).
type Source interface {
	// Read passes to fn, in seq order, the events after the cursor, at
	// most limit of them, and reports evicted ranges to onGap; it returns
	// how many events it passed.
	Read(ctx context.Context, chronicle string, after uint64, limit int, fn func(*event.Event) error, onGap func(store.Gap) error) (int, error)
	// ReadBack passes to fn, in seq order, the last events at or before
	// the cursor, at most limit of them.
	ReadBack(ctx context.Context, chronicle string, upto uint64, limit int, fn func(*event.Event) error) error
	// Tail follows the chronicle after the cursor, pushed as events are
	// appended. A Feed ending with store.ErrSlowConsumer is resumed by Read.
	Tail(ctx context.Context, chronicle string, after uint64) (Feed, error)
	// Head is a cursor after every event appended so far.
	Head(ctx context.Context, chronicle string) (uint64, error)
	// SeqAt is the cursor before the first event (in log order) whose time
	// is at or after t; Head when there is none.
	SeqAt(ctx context.Context, chronicle string, t time.Time) (uint64, error)
	// DeadLetter appends refused events (already wrapped with their reason)
	// to a story, durably.
	DeadLetter(ctx context.Context, chronicle, story string, evs []event.Event) error
}

// Feed is a tail in progress.
type Feed interface {
	Next(ctx context.Context) (store.TailItem, error)
	Close()
}

// LocalSource reads the server's own log.
type LocalSource struct{ Store *store.Store }

// Read implements Source.
func (s LocalSource) Read(ctx context.Context, chronicle string, after uint64, limit int, fn func(*event.Event) error, onGap func(store.Gap) error) (int, error) {
	n := 0
	_, err := s.Store.Read(ctx, store.Query{Chronicle: chronicle, After: after, Limit: limit}, func(e *event.Event) error {
		n++
		return fn(e)
	}, onGap)
	return n, err
}

// ReadBack implements Source.
func (s LocalSource) ReadBack(ctx context.Context, chronicle string, upto uint64, limit int, fn func(*event.Event) error) error {
	var evs []event.Event
	_, err := s.Store.Read(ctx, store.Query{Chronicle: chronicle, Before: upto + 1, Desc: true, Limit: limit}, func(e *event.Event) error {
		evs = append(evs, *e)
		return nil
	}, nil)
	if err != nil {
		return err
	}
	for i := len(evs) - 1; i >= 0; i-- {
		if err := fn(&evs[i]); err != nil {
			return err
		}
	}
	return nil
}

// Tail implements Source.
func (s LocalSource) Tail(ctx context.Context, chronicle string, after uint64) (Feed, error) {
	q := store.TailQuery{Chronicle: chronicle, After: after}
	if after == 0 {
		q.Since = time.Unix(0, 1) // from the oldest event kept, not from now
	}
	t, err := s.Store.Tail(ctx, q)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Head implements Source.
func (s LocalSource) Head(ctx context.Context, chronicle string) (uint64, error) {
	b, err := s.Store.LastBlock(ctx, chronicle)
	if err != nil || b == 0 {
		return 0, err
	}
	return event.MakeSeq(b, event.MaxBlockEvents), nil
}

// SeqAt implements Source.
func (s LocalSource) SeqAt(ctx context.Context, chronicle string, t time.Time) (uint64, error) {
	var first uint64
	_, err := s.Store.Read(ctx, store.Query{Chronicle: chronicle, From: t.UnixNano(), Limit: 1}, func(e *event.Event) error {
		first = e.Seq
		return nil
	}, nil)
	if err != nil {
		return 0, err
	}
	if first == 0 {
		return s.Head(ctx, chronicle)
	}
	return first - 1, nil
}

// DeadLetter implements Source.
func (s LocalSource) DeadLetter(ctx context.Context, chronicle, story string, evs []event.Event) error {
	if _, err := s.Store.Append(chronicle, story, evs).Wait(ctx); err != nil {
		return fmt.Errorf("sink: dead-letter: %w", err)
	}
	return nil
}
