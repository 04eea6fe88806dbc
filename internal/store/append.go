package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/chronostream/chronostream/event"
)

// Appended tells where appended events landed.
type Appended struct {
	N     int    // events stored
	First uint64 // seq of the first event
	Last  uint64 // seq of the last event
}

// Pending is an append in progress. Wait returns once every event of it is
// durable, or the first error.
type Pending struct {
	parts []*part
}

type part struct {
	evs   []event.Event
	size  int
	done  chan struct{}
	first uint64
	err   error
}

// Wait blocks until the append is durable or ctx ends. After ctx ends the
// append may still complete; it is never half-acknowledged to the caller.
func (p *Pending) Wait(ctx context.Context) (Appended, error) {
	var a Appended
	for _, pt := range p.parts {
		select {
		case <-pt.done:
		case <-ctx.Done():
			return a, ctx.Err()
		}
		if pt.err != nil {
			return a, pt.err
		}
		if a.N == 0 {
			a.First = pt.first
		}
		a.N += len(pt.evs)
		a.Last = pt.first + uint64(len(pt.evs)) - 1
	}
	return a, nil
}

func failed(err error) *Pending {
	pt := &part{done: make(chan struct{}), err: err}
	close(pt.done)
	return &Pending{parts: []*part{pt}}
}

// ValidateNames checks a chronicle's and a story's names as Append does,
// so that a handler can refuse a bad name before it reads a body. The
// error wraps ErrInvalidName.
func ValidateNames(chronicle, story string) error {
	if err := event.ValidateChronicle(chronicle); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidName, err)
	}
	if err := event.ValidateStory(story); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidName, err)
	}
	return nil
}

// Append adds events to a story. It does not block: events from concurrent
// appends to the same story are group-committed into shared blocks. Events
// with a zero Time get the current time. The events' Story field is ignored.
// The caller must not modify evs until Wait returns.
func (s *Store) Append(chronicle, story string, evs []event.Event) *Pending {
	if err := ValidateNames(chronicle, story); err != nil {
		return failed(err)
	}
	if len(evs) == 0 {
		return &Pending{}
	}
	now := time.Now().UnixNano()
	p := &Pending{}
	var cur *part
	start := 0
	for i := range evs {
		if evs[i].Time == 0 {
			evs[i].Time = now
		}
		sz := encodedSize(&evs[i])
		if sz > s.opts.MaxBlockBytes {
			return failed(fmt.Errorf("%w: an event of %d bytes exceeds the limit of %d", ErrTooLarge, sz, s.opts.MaxBlockBytes))
		}
		if cur == nil || cur.size+sz > s.opts.MaxBlockBytes || len(cur.evs) == event.MaxBlockEvents {
			cur = &part{done: make(chan struct{})}
			start = i
			p.parts = append(p.parts, cur)
		}
		cur.evs = evs[start : i+1]
		cur.size += sz
	}
	if err := s.enqueue(chronicle, story, p.parts); err != nil {
		return failed(err)
	}
	return p
}

// enqueue hands parts to the story's writer. It holds s.mu throughout so
// that Close, which drains writers after setting closed, cannot miss an
// append that slipped in between.
func (s *Store) enqueue(chronicle, story string, parts []*part) error {
	key := chronicle + "\x00" + story
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	w := s.writers[key]
	if w == nil {
		w = &storyWriter{s: s, key: key, chronicle: chronicle, story: story, subject: storySubject(chronicle, story)}
		s.writers[key] = w
	}
	w.enqueue(parts)
	return nil
}

// writerIdleTimeout is how long a story's writer (and the story state it
// caches) is kept after its last append; reloading it costs a read of the
// story's last block, so busy stories must keep theirs.
const writerIdleTimeout = 2 * time.Minute

// evictIdleWriters bounds the writers map: without it, a story per
// request id would grow it forever.
func (s *Store) evictIdleWriters(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, w := range s.writers {
		w.mu.Lock()
		if !w.running && len(w.queue) == 0 && now.Sub(w.lastUsed) > writerIdleTimeout {
			delete(s.writers, key)
		}
		w.mu.Unlock()
	}
}

// storyWriter group-commits appends to one story: while one block is being
// stored, later appends queue up and go out together in the next block.
type storyWriter struct {
	s                         *Store
	key                       string
	chronicle, story, subject string

	mu       sync.Mutex
	queue    []*part
	running  bool
	idle     *sync.Cond
	lastUsed time.Time

	// State of the story's tail, owned by the running flush loop.
	loaded bool
	last   uint64 // stream sequence of the story's last block
	lastN  int    // events in that block
	tmax   int64  // largest event time in the story
	total  uint64 // events in the story
	bytes  uint64 // block bytes in the story
}

func (w *storyWriter) enqueue(parts []*part) {
	w.mu.Lock()
	w.lastUsed = time.Now()
	w.queue = append(w.queue, parts...)
	start := !w.running
	w.running = true
	w.mu.Unlock()
	if start {
		go w.run()
	}
}

// drain waits until the queue is empty.
func (w *storyWriter) drain() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.idle == nil {
		w.idle = sync.NewCond(&w.mu)
	}
	for w.running {
		w.idle.Wait()
	}
}

// blockBufs recycles block encoding buffers across writers: a story's
// writer goroutine exits when its queue is empty, so a buffer per writer
// would be thrown away after every burst.
var blockBufs = sync.Pool{New: func() any { return new(blockBuf) }}

// blockBuf holds a block as encoded and as compressed.
type blockBuf struct{ raw, out []byte }

func (w *storyWriter) run() {
	bb := blockBufs.Get().(*blockBuf)
	defer blockBufs.Put(bb)
	for {
		w.mu.Lock()
		if len(w.queue) == 0 {
			w.running = false
			if w.idle != nil {
				w.idle.Broadcast()
			}
			w.mu.Unlock()
			return
		}
		// Take as many queued parts as fit one block.
		n, size, events := 0, 0, 0
		for n < len(w.queue) {
			pt := w.queue[n]
			if n > 0 && (size+pt.size > w.s.opts.MaxBlockBytes || events+len(pt.evs) > event.MaxBlockEvents) {
				break
			}
			size += pt.size
			events += len(pt.evs)
			n++
		}
		batch := make([]*part, n)
		copy(batch, w.queue[:n])
		w.queue = w.queue[n:]
		w.mu.Unlock()

		var evs []event.Event
		if len(batch) == 1 {
			evs = batch[0].evs
		} else {
			evs = make([]event.Event, 0, events)
			for _, pt := range batch {
				evs = append(evs, pt.evs...)
			}
		}
		if cap(bb.raw) < size+64 {
			bb.raw = make([]byte, 0, size+64)
		}
		bb.raw = encodeBlock(bb.raw[:0], evs)
		bb.out = compressBlock(bb.out[:0], bb.raw)
		block, err := w.store(bb.out, evs)
		if err != nil {
			// Fail what queued up behind the failed block too: an append's
			// acknowledged events must be a prefix of it, so none of its
			// later parts may be stored once an earlier one failed.
			w.mu.Lock()
			batch = append(batch, w.queue...)
			w.queue = nil
			w.mu.Unlock()
		}
		pos := 1
		for _, pt := range batch {
			pt.err = err
			if err == nil {
				pt.first = event.MakeSeq(block, pos)
				pos += len(pt.evs)
			}
			close(pt.done)
		}
	}
}

// store publishes one block, creating the chronicle and loading the story's
// state when needed, and retrying when another writer (another node) appended
// to the story first.
func (w *storyWriter) store(payload []byte, evs []event.Event) (uint64, error) {
	s := w.s
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.ensureChronicle(ctx, w.chronicle); err != nil {
		s.metrics.appendErrors.Inc()
		return 0, err
	}
	t0, t1 := evs[0].Time, evs[0].Time
	for i := range evs {
		t0, t1 = min(t0, evs[i].Time), max(t1, evs[i].Time)
	}
	for attempt := 0; ; attempt++ {
		if !w.loaded {
			if err := w.load(ctx); err != nil {
				s.metrics.appendErrors.Inc()
				return 0, err
			}
		}
		msg := &nats.Msg{Subject: w.subject, Data: payload, Header: nats.Header{}}
		msg.Header.Set(hdrCount, strconv.Itoa(len(evs)))
		msg.Header.Set(hdrTotal, strconv.FormatUint(w.total+uint64(len(evs)), 10))
		msg.Header.Set(hdrBytes, strconv.FormatUint(w.bytes+uint64(len(payload)), 10))
		msg.Header.Set(hdrPrev, strconv.FormatUint(w.last, 10))
		msg.Header.Set(hdrPrevN, strconv.Itoa(w.lastN))
		msg.Header.Set(hdrT0, strconv.FormatInt(t0, 10))
		msg.Header.Set(hdrT1, strconv.FormatInt(t1, 10))
		msg.Header.Set(hdrTMax, strconv.FormatInt(max(w.tmax, t1), 10))
		var opts []jetstream.PublishOpt
		if !s.opts.Exclusive {
			opts = append(opts, jetstream.WithExpectLastSequencePerSubject(w.last))
		}
		ack, err := s.js.PublishMsg(ctx, msg, opts...)
		if err != nil {
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
				apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) && attempt < 100 {
				w.loaded = false // someone else appended: reload and retry
				continue
			}
			if errors.Is(err, jetstream.ErrNoStreamResponse) && attempt < 3 {
				// The chronicle may have been deleted under us.
				s.forgetChronicle(w.chronicle)
				if err := s.ensureChronicle(ctx, w.chronicle); err != nil {
					return 0, err
				}
				w.loaded = false
				continue
			}
			// The block may have been stored even so (a timeout is
			// ambiguous): reload the story's state before the next block,
			// so that its counters and previous-block link stay true.
			w.loaded = false
			s.metrics.appendErrors.Inc()
			return 0, fmt.Errorf("store: append to %s/%s: %w", w.chronicle, w.story, err)
		}
		w.last, w.lastN, w.tmax = ack.Sequence, len(evs), max(w.tmax, t1)
		w.total += uint64(len(evs))
		w.bytes += uint64(len(payload))
		s.metrics.appendLatency.Observe(time.Since(start).Seconds())
		s.metrics.eventsAppended.Add(float64(len(evs)))
		s.metrics.blocksAppended.Inc()
		s.metrics.bytesAppended.Add(float64(len(payload)))
		return ack.Sequence, nil
	}
}

// load reads the story's last block to continue its counters.
func (w *storyWriter) load(ctx context.Context) error {
	str, err := w.s.js.Stream(ctx, streamName(w.chronicle))
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	m, err := str.GetLastMsgForSubject(ctx, w.subject)
	switch {
	case isNotFound(err):
		w.last, w.lastN, w.total, w.bytes, w.tmax = 0, 0, 0, 0, 0
	case err != nil:
		return fmt.Errorf("store: load story %s/%s: %w", w.chronicle, w.story, err)
	default:
		w.last, w.lastN = m.Sequence, int(headerUint(m.Header, hdrCount))
		w.total = headerUint(m.Header, hdrTotal)
		w.bytes = headerUint(m.Header, hdrBytes)
		w.tmax = blockTMax(m.Header)
	}
	w.loaded = true
	return nil
}

// FailedPending returns an append that failed with err, for logs that
// wrap the store (and tests of how their failures are answered).
func FailedPending(err error) *Pending { return failed(err) }
