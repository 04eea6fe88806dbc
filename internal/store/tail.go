package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/chronostream/chronostream/event"
)

// TailQuery says what a tail follows and where it starts.
type TailQuery struct {
	Chronicle string
	Story     string // "" follows every story of the chronicle
	// Start: after the cursor After when it is set; else from the first
	// block ingested at or after Since when it is set; else from now.
	After uint64
	Since time.Time
	Match func(*event.Event) bool
	// MaxBuffered bounds the bytes of blocks delivered but not yet consumed;
	// beyond it the tail ends with ErrSlowConsumer. Default 8 MiB.
	MaxBuffered int64
}

// TailItem is what a tail delivers: events in seq order, or a gap notice.
type TailItem struct {
	Events []event.Event
	Gap    *Gap
}

// Tail follows a chronicle or story as events are appended. New blocks wake
// it (JetStream pushes them); nothing polls.
type Tail struct {
	Cursor uint64 // the seq the tail started after

	ch       chan tailEntry
	buffered atomic.Int64
	mu       sync.Mutex
	err      error
	cancel   context.CancelFunc
	done     chan struct{}
}

type tailEntry struct {
	item TailItem
	size int64
}

// Next returns the next item, waiting for one. When the tail has ended it
// returns what was still buffered, then the reason (ErrSlowConsumer, a
// store error, or the context's error).
func (t *Tail) Next(ctx context.Context) (TailItem, error) {
	select {
	case e := <-t.ch:
		t.buffered.Add(-e.size)
		return e.item, nil
	case <-t.done:
		select {
		case e := <-t.ch:
			t.buffered.Add(-e.size)
			return e.item, nil
		default:
			return TailItem{}, t.Err()
		}
	case <-ctx.Done():
		return TailItem{}, ctx.Err()
	}
}

// Err tells why the tail ended.
func (t *Tail) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Close stops the tail.
func (t *Tail) Close() {
	t.cancel()
	<-t.done
}

// Tail starts following q.
func (s *Store) Tail(ctx context.Context, q TailQuery) (*Tail, error) {
	if q.MaxBuffered <= 0 {
		q.MaxBuffered = 8 << 20
	}
	str, err := s.js.Stream(ctx, streamName(q.Chronicle))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("chronicle %q: %w", q.Chronicle, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	subj := chronicleSubjects(q.Chronicle)
	if q.Story != "" {
		subj = storySubject(q.Chronicle, q.Story)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}}
	after := q.After
	switch {
	case q.After != 0:
		b, _ := event.SplitSeq(q.After)
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = max(b, 1)
	case !q.Since.IsZero():
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		since := q.Since
		cfg.OptStartTime = &since
	default:
		// From now: start after the current last block, so that the cursor
		// handed to the client is exact.
		info, err := str.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		after = event.MakeSeq(info.State.LastSeq, event.MaxBlockEvents)
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = info.State.LastSeq + 1
	}
	cons, cleanup, err := s.orderedConsumer(ctx, str.CachedInfo().Config.Name, cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	t := &Tail{Cursor: after, ch: make(chan tailEntry, 1024), cancel: cancel, done: make(chan struct{})}
	r := &reader{q: Query{Chronicle: q.Chronicle, Story: q.Story, After: after, Match: q.Match}}
	if q.After != 0 {
		r.gaps = newGapDetector(q.After, q.Story != "")
	} else {
		r.gaps = newGapDetector(0, q.Story != "")
	}
	fail := func(err error) {
		t.mu.Lock()
		if t.err == nil {
			t.err = err
		}
		t.mu.Unlock()
		cancel()
	}
	var batch []event.Event
	r.fn = func(e *event.Event) error {
		batch = append(batch, *e)
		return nil
	}
	handler := func(m jetstream.Msg) {
		if ctx.Err() != nil {
			return
		}
		md, err := m.Metadata()
		if err != nil {
			fail(fmt.Errorf("store: %w", err))
			return
		}
		seq := md.Sequence.Stream
		var item TailItem
		if g, ok := r.gaps.check(m.Subject(), seq, headerUint(m.Headers(), hdrPrev), headerUint(m.Headers(), hdrPrevN)); ok {
			item.Gap = &g
		}
		batch = nil
		if err := r.block(seq, m.Subject(), m.Headers(), m.Data()); err != nil {
			fail(err)
			return
		}
		item.Events = batch
		if item.Gap == nil && len(item.Events) == 0 {
			return
		}
		size := decodedSize(item.Events)
		if t.buffered.Add(size) > q.MaxBuffered {
			fail(ErrSlowConsumer)
			return
		}
		select {
		case t.ch <- tailEntry{item, size}:
		default:
			fail(ErrSlowConsumer)
		}
	}
	cc, err := cons.Consume(handler, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if errors.Is(err, jetstream.ErrNoHeartbeat) || errors.Is(err, jetstream.ErrOrderConsumerUsedAsFetch) {
			return
		}
		s.log.Debug("tail: consumer", "chronicle", q.Chronicle, "story", q.Story, "err", err)
	}))
	if err != nil {
		cancel()
		cleanup()
		return nil, fmt.Errorf("store: %w", err)
	}
	go func() {
		<-ctx.Done()
		cc.Stop()
		<-cc.Closed()
		cleanup()
		fail(ctx.Err())
		// t.ch is never closed: a handler call may still be running after
		// Closed fires, and a send on a closed channel would panic. Next
		// watches done instead.
		close(t.done)
	}()
	return t, nil
}

// decodedSize estimates the memory decoded events hold, which is what a
// tail's buffer bound must limit (blocks are smaller: compact, compressed).
func decodedSize(evs []event.Event) int64 {
	const perEvent, perEntry = 160, 64 // struct, map and string headers
	var n int64
	for i := range evs {
		e := &evs[i]
		n += perEvent + int64(len(e.Body)+len(e.Story)+len(e.Source))
		for k, v := range e.Tags {
			n += perEntry + int64(len(k)+len(v))
		}
		for k, v := range e.Fields {
			n += perEntry + int64(len(k)+len(v.StringValue()))
		}
	}
	return n
}
