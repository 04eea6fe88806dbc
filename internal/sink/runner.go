package sink

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest/lineproto"
	"github.com/chronostream/chronostream/internal/jsonev"
	"github.com/chronostream/chronostream/internal/store"
)

// Status is what the API and the logs tell about a sink.
type Status struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Chronicle string `json:"chronicle"`
	// State: "running", "paused", "standby" (another node holds the
	// lease), "waiting" (the chronicle does not exist yet) or "stopped".
	State        string    `json:"state"`
	Node         string    `json:"node,omitempty"`
	Cursor       uint64    `json:"cursor"`
	Delivered    uint64    `json:"delivered"`
	Skipped      uint64    `json:"skipped"` // accepted by the sink and sent nowhere (see Filterer)
	DeadLettered uint64    `json:"deadlettered"`
	Retries      uint64    `json:"retries"`
	Batches      uint64    `json:"batches"`
	Gaps         uint64    `json:"gaps"`
	LagEvents    int64     `json:"lag_events"`
	LagSeconds   float64   `json:"lag_seconds"`
	LastError    string    `json:"last_error,omitempty"`
	LastErrorAt  time.Time `json:"last_error_at,omitzero"`
	LastDelivery time.Time `json:"last_delivery,omitzero"`
}

// Runner delivers one sink: it reads the sink's chronicle in log order
// from its durable cursor, selects, batches, retries, dead-letters and
// commits the cursor after each batch the destination accepted.
type Runner struct {
	cfg     Config
	sink    Sink
	src     Source
	cursors Cursors
	sel     *selection
	log     *slog.Logger
	m       *Metrics
	id      string // the By of the cursor records it writes

	// retryBase is the first retry's delay (tests shorten it).
	retryBase time.Duration

	mu     sync.Mutex
	status Status
	behind time.Time // when the sink was last caught up, while behind

	queued atomic.Int64 // events read and not yet delivered, dead-lettered or passed over
	follow atomic.Bool  // the reader is tailing (caught up with the log)
}

// errReload ends a session: the cursor record changed (API, another node).
var errReload = errors.New("sink: cursor changed; reloading")

// NewRunner validates cfg and returns its runner; snk is the built sink.
func NewRunner(cfg Config, snk Sink, src Source, cursors Cursors, m *Metrics, id string, log *slog.Logger) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sel, err := newSelection(&cfg)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	r := &Runner{cfg: cfg, sink: snk, src: src, cursors: cursors, sel: sel, m: m, id: id,
		log: log.With("sink", cfg.Name), retryBase: 100 * time.Millisecond}
	r.status = Status{Name: cfg.Name, Type: cfg.Type, Chronicle: cfg.Chronicle, State: "standby"}
	return r, nil
}

// Status returns the runner's status.
func (r *Runner) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.status
	s.LagEvents = r.queued.Load()
	if !r.behind.IsZero() {
		s.LagSeconds = time.Since(r.behind).Seconds()
	}
	return s
}

func (r *Runner) setState(st string) {
	r.mu.Lock()
	r.status.State = st
	r.mu.Unlock()
}

func (r *Runner) setError(err error) {
	r.mu.Lock()
	r.status.LastError, r.status.LastErrorAt = err.Error(), time.Now().UTC()
	r.mu.Unlock()
}

// Run delivers until ctx is done (the lease lost, the server stopping).
func (r *Runner) Run(ctx context.Context) {
	defer r.setState("standby")
	failures := 0
	for ctx.Err() == nil {
		err := r.session(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errReload):
			failures = 0
			continue
		case err != nil:
			r.setError(err)
			r.log.Warn("sink: stopped by an error; restarting from the cursor", "err", err)
			sleepCtx(ctx, r.backoff(failures, 0))
			failures++
		}
	}
}

// session runs from the committed cursor until an error or a reload.
func (r *Runner) session(parent context.Context) error {
	cur, rev, err := r.loadCursor(parent)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	changes, err := r.cursors.WatchCursor(ctx, r.cfg.Name)
	if err != nil {
		return err
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case c := <-changes:
				if c.By != r.id {
					cancel(errReload) // the API or another node changed it
					return
				}
			}
		}
	}()
	r.mu.Lock()
	r.status.Cursor = cur.Seq
	r.mu.Unlock()
	r.m.Cursor.WithLabelValues(r.cfg.Name).Set(float64(cur.Seq))
	if cur.Paused {
		r.setState("paused")
		<-ctx.Done()
		return context.Cause(ctx)
	}
	r.setState("running")
	if err := r.prime(ctx, cur.Seq); err != nil {
		return err
	}
	s := &session{r: r, ctx: ctx, cancel: cancel, rev: rev, pos: cur.Seq, committed: cur.Seq}
	return s.run() // the cause when ctx ended (errReload, the lease lost)
}

// loadCursor returns the sink's cursor, creating it from the start policy.
func (r *Runner) loadCursor(ctx context.Context) (Cursor, int64, error) {
	for {
		c, rev, err := r.cursors.Cursor(ctx, r.cfg.Name)
		if err == nil {
			if c.Chronicle != "" && c.Chronicle != r.cfg.Chronicle {
				// A cursor is a position in one chronicle's log.
				r.log.Warn("sink: the cursor belongs to another chronicle; starting afresh", "cursor_chronicle", c.Chronicle)
			} else {
				return c, int64(rev), nil
			}
		} else if !errors.Is(err, ErrNoCursor) {
			return c, 0, err
		}
		seq, err := r.startSeq(ctx)
		if err != nil {
			return c, 0, err
		}
		c = Cursor{Seq: seq, Chronicle: r.cfg.Chronicle, By: r.id}
		if rev == 0 {
			_, err = r.cursors.SetCursor(ctx, r.cfg.Name, c, 0)
		} else {
			_, err = r.cursors.SetCursor(ctx, r.cfg.Name, c, int64(rev))
		}
		if err != nil && !errors.Is(err, ErrConflict) {
			return c, 0, err
		}
		r.log.Info("sink: starting", "cursor", seq, "start", r.cfg.Start, "window_sec", r.cfg.WindowSec)
		// Read it back: whoever won the race, its record is the truth.
	}
}

// startSeq is where a sink without a cursor starts.
func (r *Runner) startSeq(ctx context.Context) (uint64, error) {
	for {
		var (
			seq uint64
			err error
		)
		switch {
		case r.cfg.WindowSec > 0:
			seq, err = r.src.SeqAt(ctx, r.cfg.Chronicle, time.Now().Add(-time.Duration(r.cfg.WindowSec)*time.Second))
		case r.cfg.Start == "now":
			seq, err = r.src.Head(ctx, r.cfg.Chronicle)
		default:
			return 0, nil
		}
		if errors.Is(err, store.ErrNotFound) {
			return 0, nil // no chronicle yet: everything is after now
		}
		return seq, err
	}
}

// prime hands a Primer sink the events before the cursor (see Primer),
// read back one batch_events chunk of the log at a time, as far as the
// sink ranges over them. It is called with cursor 0 too: a moved cursor
// must not leave the sink the state of another position.
func (r *Runner) prime(ctx context.Context, cursor uint64) error {
	p, ok := r.sink.(Primer)
	if !ok {
		return nil
	}
	var err error
	p.Prime(r.cfg.Chronicle, func(yield func(*event.Event, bool) bool) {
		err = r.readBack(ctx, cursor, yield)
	})
	if err != nil {
		return fmt.Errorf("sink: read before the cursor: %w", err)
	}
	return nil
}

// readBack yields the events at or before upto, newest first, each with
// whether it is selected, until yield returns false or the log has no more.
func (r *Runner) readBack(ctx context.Context, upto uint64, yield func(*event.Event, bool) bool) error {
	var parser fastjson.Parser
	for upto > 0 {
		var evs []event.Event
		err := r.src.ReadBack(ctx, r.cfg.Chronicle, upto, r.cfg.BatchEvents, func(e *event.Event) error {
			evs = append(evs, *e)
			return nil
		})
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		for i := len(evs) - 1; i >= 0; i-- {
			e := &evs[i]
			Expand(&parser, e)
			if !yield(e, r.sel.match(e)) {
				return nil
			}
		}
		if len(evs) < r.cfg.BatchEvents {
			return nil // the log's start
		}
		upto = evs[0].Seq - 1
	}
	return nil
}

// backoff is the delay before retry attempt n (from 0): exponential from
// retryBase, capped at RetryMax, with jitter in [d/2, d], and at least
// what the destination asked for.
func (r *Runner) backoff(n int, after time.Duration) time.Duration {
	d := r.retryBase
	for i := 0; i < n && d < time.Duration(r.cfg.RetryMax); i++ {
		d *= 2
	}
	d = min(d, time.Duration(r.cfg.RetryMax))
	d = d/2 + rand.N(d/2+1)
	return max(d, after)
}

// item is what the reader hands the session: events, a gap, or an error.
type item struct {
	events []event.Event
	gap    *store.Gap
	err    error
}

// session is one run from a committed cursor.
type session struct {
	r      *Runner
	ctx    context.Context
	cancel context.CancelCauseFunc
	rev    int64

	pos       uint64 // every event up to pos is handled or in batch
	committed uint64
	batch     []event.Event
	read      uint64   // events of the chronicle read in the session
	positions []uint64 // the batch's Positions (see Batch)
	bytes     int
	first     time.Time // when the batch's first event was added
	lastSave  time.Time
	parser    fastjson.Parser
}

func (s *session) run() error {
	r := s.r
	items := make(chan item, 2)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		r.read(s.ctx, s.pos, items)
	}()
	go func() {
		// The loop below is blocked in deliver while a batch is retried
		// (a destination's outage): the lag gauges must keep growing.
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-t.C:
				r.publishLag()
			}
		}
	}()
	defer func() {
		// What was read and not handled is read again by the next session.
		s.cancel(errStopped)
		<-readDone
		r.queued.Add(-int64(len(s.batch)))
		for {
			select {
			case it := <-items:
				r.queued.Add(-int64(len(it.events)))
			default:
				return
			}
		}
	}()
	age := time.NewTimer(time.Hour)
	age.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return context.Cause(s.ctx)
		case <-tick.C:
			// Only selection-skipped events moved the cursor: save it now
			// and then, not per event.
			if len(s.batch) == 0 && s.pos != s.committed {
				if err := s.commit(); err != nil {
					return err
				}
			}
		case <-age.C:
			if err := s.flush(); err != nil {
				return err
			}
		case it := <-items:
			if it.err != nil {
				return it.err
			}
			if it.gap != nil {
				if err := s.flush(); err != nil {
					return err
				}
				r.gap(*it.gap)
				s.pos = max(s.pos, it.gap.Next-1)
			}
			for i := range it.events {
				e := &it.events[i]
				Expand(&s.parser, e)
				s.pos = e.Seq
				s.read++
				if !r.sel.match(e) {
					r.queued.Add(-1)
					continue
				}
				if len(s.batch) == 0 {
					s.first = time.Now()
					age.Reset(time.Duration(r.cfg.BatchAge))
					r.updateLag(false) // behind until the batch is delivered
				}
				s.batch = append(s.batch, *e)
				s.positions = append(s.positions, s.read)
				s.bytes += approxSize(e)
				if len(s.batch) >= r.cfg.BatchEvents || s.bytes >= r.cfg.BatchBytes {
					age.Stop()
					if err := s.flush(); err != nil {
						return err
					}
				}
			}
			if len(s.batch) == 0 && s.pos != s.committed && time.Since(s.lastSave) > time.Second {
				if err := s.commit(); err != nil {
					return err
				}
			}
		}
		r.updateLag(len(s.batch) == 0 && len(items) == 0)
	}
}

// flush delivers the batch, then commits the cursor past it.
func (s *session) flush() error {
	if len(s.batch) == 0 {
		return nil
	}
	r := s.r
	if err := r.deliver(s.ctx, Batch{Chronicle: r.cfg.Chronicle, Events: s.batch, Positions: s.positions}); err != nil {
		return err
	}
	r.m.Batches.WithLabelValues(r.cfg.Name).Inc()
	r.mu.Lock()
	r.status.Batches++
	r.status.LastDelivery = time.Now().UTC()
	r.mu.Unlock()
	r.queued.Add(-int64(len(s.batch)))
	clear(s.batch)
	s.batch, s.positions, s.bytes = s.batch[:0], s.positions[:0], 0
	return s.commit()
}

func (s *session) commit() error {
	r := s.r
	// A batch the destination accepted is committed even when the session
	// is ending (shutdown, pause): otherwise it would be delivered again.
	// The compare-and-set still loses to whoever changed the record.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 5*time.Second)
	defer cancel()
	rev, err := r.cursors.SetCursor(ctx, r.cfg.Name, Cursor{Seq: s.pos, Chronicle: r.cfg.Chronicle, By: r.id}, s.rev)
	if errors.Is(err, ErrConflict) {
		return errReload
	}
	if err != nil {
		return err
	}
	s.rev, s.committed, s.lastSave = int64(rev), s.pos, time.Now()
	r.mu.Lock()
	r.status.Cursor = s.pos
	r.mu.Unlock()
	r.m.Cursor.WithLabelValues(r.cfg.Name).Set(float64(s.pos))
	return nil
}

func (r *Runner) updateLag(idle bool) {
	r.mu.Lock()
	caughtUp := idle && r.follow.Load() && r.queued.Load() == 0
	switch {
	case caughtUp:
		r.behind = time.Time{}
	case r.behind.IsZero():
		r.behind = time.Now()
	}
	r.mu.Unlock()
	r.publishLag()
}

// publishLag sets the lag gauges from the runner's state.
func (r *Runner) publishLag() {
	r.mu.Lock()
	defer r.mu.Unlock()
	lag := 0.0
	if !r.behind.IsZero() {
		lag = time.Since(r.behind).Seconds()
	}
	r.m.LagSeconds.WithLabelValues(r.cfg.Name).Set(lag)
	r.m.LagEvents.WithLabelValues(r.cfg.Name).Set(float64(r.queued.Load()))
}

func (r *Runner) gap(g store.Gap) {
	r.m.Gaps.WithLabelValues(r.cfg.Name).Inc()
	r.mu.Lock()
	r.status.Gaps++
	first := r.status.Gaps == 1
	r.mu.Unlock()
	if first {
		r.log.Warn("sink: retention evicted events before they were delivered; moving on (counted in chronostream_sink_gaps_total)",
			"after", g.After, "next", g.Next)
	}
}

// deliver hands b to the sink until it accepts it: transient errors are
// retried with backoff; a permanent refusal splits the batch in halves
// until the refused events are alone, and those are dead-lettered.
func (r *Runner) deliver(ctx context.Context, b Batch) error {
	evs := b.Events
	for attempt := 0; ; attempt++ {
		f, filters := r.sink.(Filterer)
		var before uint64
		if filters {
			before = f.Filtered()
		}
		err := r.sink.Deliver(ctx, b)
		if err == nil {
			var skipped uint64
			if filters {
				skipped = min(f.Filtered()-before, uint64(len(evs)))
			}
			delivered := uint64(len(evs)) - skipped
			r.m.Delivered.WithLabelValues(r.cfg.Name).Add(float64(delivered))
			r.m.Skipped.WithLabelValues(r.cfg.Name).Add(float64(skipped))
			r.mu.Lock()
			r.status.Delivered += delivered
			r.status.Skipped += skipped
			r.mu.Unlock()
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		r.setError(err)
		if IsPermanent(err) {
			if len(evs) == 1 {
				return r.deadLetter(ctx, evs[0], err)
			}
			first, second := b.split()
			if err := r.deliver(ctx, first); err != nil {
				return err
			}
			return r.deliver(ctx, second)
		}
		r.m.Retries.WithLabelValues(r.cfg.Name).Inc()
		r.mu.Lock()
		r.status.Retries++
		r.mu.Unlock()
		d := r.backoff(attempt, RetryAfter(err))
		if attempt == 0 || attempt%10 == 0 {
			r.log.Warn("sink: delivery failed; retrying", "events", len(evs), "attempt", attempt+1, "in", d, "err", err)
		}
		if !sleepCtx(ctx, d) {
			return context.Cause(ctx)
		}
	}
}

// DeadLetter is the body of a dead-letter event: the refused event and why.
type DeadLetter struct {
	Sink   string                 `json:"sink"`
	Error  string                 `json:"error"`
	Seq    uint64                 `json:"seq"`
	Story  string                 `json:"story"`
	Time   int64                  `json:"event_time"`
	Kind   string                 `json:"event_kind"`
	Tags   map[string]string      `json:"event_tags,omitempty"`
	Fields map[string]event.Value `json:"event_fields,omitempty"`
	Body   string                 `json:"event_body,omitempty"`
	Base64 bool                   `json:"event_body_base64,omitempty"`
}

func (r *Runner) deadLetter(ctx context.Context, e event.Event, cause error) error {
	dl := DeadLetter{Sink: r.cfg.Name, Error: cause.Error(), Seq: e.Seq, Story: e.Story, Time: e.Time,
		Kind: e.Kind.String(), Tags: e.Tags, Fields: e.Fields}
	if utf8.Valid(e.Body) {
		dl.Body = string(e.Body)
	} else {
		dl.Body, dl.Base64 = base64.StdEncoding.EncodeToString(e.Body), true
	}
	body, err := json.Marshal(dl)
	if err != nil {
		return fmt.Errorf("sink: dead-letter: %w", err)
	}
	ev := []event.Event{{Kind: event.KindEvent, Body: body, Format: event.FormatJSON}}
	for attempt := 0; ; attempt++ {
		err := r.src.DeadLetter(ctx, r.cfg.Chronicle, DeadLetterPrefix+r.cfg.Name, ev)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		r.log.Warn("sink: storing a dead letter failed; retrying", "err", err)
		if !sleepCtx(ctx, r.backoff(attempt, 0)) {
			return context.Cause(ctx)
		}
	}
	r.m.DeadLettered.WithLabelValues(r.cfg.Name).Inc()
	r.mu.Lock()
	r.status.DeadLettered++
	r.mu.Unlock()
	r.log.Warn("sink: event refused; dead-lettered", "seq", e.Seq, "story", e.Story, "err", cause)
	return nil
}

// read feeds the session: Read in chunks while behind, then a pushed
// Tail; a tail the session cannot keep up with falls back to Read.
func (r *Runner) read(ctx context.Context, pos uint64, out chan<- item) {
	send := func(it item) bool {
		r.queued.Add(int64(len(it.events)))
		select {
		case out <- it:
			return true
		case <-ctx.Done():
			r.queued.Add(-int64(len(it.events)))
			return false
		}
	}
	chunk := r.cfg.BatchEvents
	for ctx.Err() == nil {
		r.follow.Store(false)
		caughtUp := false
		for !caughtUp {
			var evs []event.Event
			n, err := r.src.Read(ctx, r.cfg.Chronicle, pos, chunk, func(e *event.Event) error {
				evs = append(evs, *e)
				return nil
			}, func(g store.Gap) error {
				if len(evs) > 0 && !send(item{events: evs}) {
					return ctx.Err()
				}
				evs = nil
				if !send(item{gap: &g}) {
					return ctx.Err()
				}
				pos = max(pos, g.Next-1)
				return nil
			})
			if len(evs) > 0 {
				pos = evs[len(evs)-1].Seq
				if !send(item{events: evs}) {
					return
				}
			}
			switch {
			case ctx.Err() != nil:
				return
			case errors.Is(err, store.ErrNotFound):
				r.setState("waiting")
				sleepCtx(ctx, time.Second) // the chronicle is created by its first write
				continue
			case err != nil:
				send(item{err: fmt.Errorf("sink: read: %w", err)})
				return
			}
			r.setState("running")
			caughtUp = n < chunk
		}
		feed, err := r.src.Tail(ctx, r.cfg.Chronicle, pos)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			send(item{err: fmt.Errorf("sink: tail: %w", err)})
			return
		}
		r.follow.Store(true)
		for {
			it, err := feed.Next(ctx)
			if err != nil {
				feed.Close()
				if errors.Is(err, store.ErrSlowConsumer) {
					r.log.Info("sink: fell behind its tail; catching up by reading", "cursor", pos)
					break
				}
				if ctx.Err() == nil {
					send(item{err: fmt.Errorf("sink: tail: %w", err)})
				}
				return
			}
			if it.Gap != nil {
				pos = max(pos, it.Gap.Next-1)
				if !send(item{gap: it.Gap}) {
					feed.Close()
					return
				}
			}
			if len(it.Events) > 0 {
				pos = it.Events[len(it.Events)-1].Seq
				if !send(item{events: it.Events}) {
					feed.Close()
					return
				}
			}
		}
	}
}

// Expand derives the tags and fields of bodies kept verbatim, as every
// reader of the log does (internal/api, internal/vivo).
func Expand(p *fastjson.Parser, e *event.Event) {
	switch e.Format {
	case event.FormatJSON:
		jsonev.Expand(p, e)
	case event.FormatLine:
		_ = lineproto.Expand(e) // ingest validated it
	}
}

// approxSize estimates an event's encoded size for BatchBytes.
func approxSize(e *event.Event) int {
	n := 64 + len(e.Story) + len(e.Body)
	for k, v := range e.Tags {
		n += len(k) + len(v) + 2
	}
	for k, v := range e.Fields {
		n += len(k) + len(v.StringValue()) + 24
	}
	return n
}
