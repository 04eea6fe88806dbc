package tsdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fastjson"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest/lineproto"
	"github.com/chronostream/chronostream/internal/jsonev"
	"github.com/chronostream/chronostream/internal/store"
)

// Log is what the index reads: the store's catch-up reads, push-based
// tails and the chronicles' block ranges.
type Log interface {
	Read(ctx context.Context, q store.Query, fn func(*event.Event) error, onGap func(store.Gap) error) (uint64, error)
	Tail(ctx context.Context, q store.TailQuery) (*store.Tail, error)
	Blocks(ctx context.Context, chronicle string) (first, last uint64, err error)
	ChronicleNames(ctx context.Context) ([]string, error)
}

// Options configure an Index.
type Options struct {
	Log     Log
	Logger  *slog.Logger
	Rollups []time.Duration // default DefaultRollups
	// CatchUp bounds how long Sync waits for the index to reach the log's
	// newest block (default 10 s).
	CatchUp time.Duration
	// Rescan is how often chronicles are listed (new ones followed,
	// deleted ones dropped) and retention applied (default 5 s).
	Rescan time.Duration
	// MaxPoints bounds the points held over all chronicles (default
	// DefaultMaxPoints). A chronicle whose points would pass it stops being
	// indexed and its queries fail with ErrFull (never a partial answer)
	// until retention brings the total under 90% of the bound, when it is
	// read again from the log (again no sooner than a minute later,
	// doubling up to an hour, while it still does not fit).
	MaxPoints int64
	// MaxStringBytes bounds the bytes of string field values held
	// (default DefaultMaxStringBytes), as MaxPoints bounds the points.
	MaxStringBytes int64
	// TailBuffer bounds a tail's undelivered bytes (store.TailQuery's
	// MaxBuffered; 0: the store's default). Past it the tail ends and the
	// index resumes with a read from its last block.
	TailBuffer int64
	Registerer prometheus.Registerer
}

// DefaultMaxPoints is about 2 GB of index at 21 bytes a point.
const DefaultMaxPoints = 100_000_000

// DefaultMaxStringBytes bounds the text of string fields (log messages).
const DefaultMaxStringBytes = 1 << 30

// ErrFull is the error of queries on a chronicle the index had no room for.
var ErrFull = errors.New("the query index is full")

// ErrCatchUp is returned by Sync when the index did not reach the log's
// newest block in time (it is still loading a large chronicle).
var ErrCatchUp = errors.New("the query index is still reading the log")

type stats struct {
	points, series, conflicts, strBytes atomic.Int64
}

// Index follows every chronicle of the log.
type Index struct {
	opts   Options
	log    *slog.Logger
	widths []int64
	stats  stats

	mu      sync.Mutex
	entries map[string]*entry
	retries map[string]retry // chronicles left out for want of room
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// retry is when a chronicle left out for want of room may be read again.
type retry struct {
	at    time.Time
	delay time.Duration
}

// A chronicle that did not fit is read again at once when there is room,
// then no sooner than a minute after, doubling up to an hour: reading a
// chronicle too big for the room retention made would otherwise read its
// whole log again at every rescan.
const (
	fullRetryMin = time.Minute
	fullRetryMax = time.Hour
)

// entry is one followed chronicle.
type entry struct {
	db     *DB
	cancel context.CancelFunc
	// progress is closed (and replaced) each time blocks are applied.
	mu       sync.Mutex
	progress chan struct{}
}

// New returns an index; Start begins following the log.
func New(o Options) *Index {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Rollups == nil {
		o.Rollups = DefaultRollups
	}
	if o.CatchUp <= 0 {
		o.CatchUp = 10 * time.Second
	}
	if o.Rescan <= 0 {
		o.Rescan = 5 * time.Second
	}
	if o.MaxPoints <= 0 {
		o.MaxPoints = DefaultMaxPoints
	}
	if o.MaxStringBytes <= 0 {
		o.MaxStringBytes = DefaultMaxStringBytes
	}
	ix := &Index{opts: o, log: o.Logger, entries: map[string]*entry{}, retries: map[string]retry{}}
	for _, w := range o.Rollups {
		ix.widths = append(ix.widths, int64(w))
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "chronostream_query_index_points",
				Help: "Points (field values) held by the query index."}, func() float64 { return float64(ix.stats.points.Load()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "chronostream_query_index_series",
				Help: "Series (measurement and tag set) held by the query index."}, func() float64 { return float64(ix.stats.series.Load()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "chronostream_query_index_string_bytes",
				Help: "Bytes of string field values held by the query index."}, func() float64 { return float64(ix.stats.strBytes.Load()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "chronostream_query_index_type_conflicts_total",
				Help: "Field values not indexed because the field already had another type."}, func() float64 { return float64(ix.stats.conflicts.Load()) }),
		)
	}
	return ix
}

// Start follows every chronicle now in the log, and those created later.
func (ix *Index) Start(ctx context.Context) {
	ix.ctx, ix.cancel = context.WithCancel(context.WithoutCancel(ctx))
	ix.rescan()
	ix.wg.Add(1)
	go func() {
		defer ix.wg.Done()
		t := time.NewTicker(ix.opts.Rescan)
		defer t.Stop()
		for {
			select {
			case <-ix.ctx.Done():
				return
			case <-t.C:
				ix.rescan()
			}
		}
	}()
}

// Close stops following the log.
func (ix *Index) Close() {
	if ix.cancel != nil {
		ix.cancel()
	}
	ix.wg.Wait()
}

// Stats returns the points and series held.
func (ix *Index) Stats() (points, series int64) {
	return ix.stats.points.Load(), ix.stats.series.Load()
}

// rescan follows new chronicles, drops deleted ones and applies retention.
func (ix *Index) rescan() {
	names, err := ix.opts.Log.ChronicleNames(ix.ctx)
	if err != nil {
		if ix.ctx.Err() == nil {
			ix.log.Warn("query index: listing chronicles", "err", err)
		}
		return
	}
	for _, n := range names {
		if _, err := ix.sync(ix.ctx, n, false); err != nil && !errors.Is(err, store.ErrNotFound) && ix.ctx.Err() == nil {
			ix.log.Warn("query index: chronicle", "chronicle", n, "err", err)
		}
	}
	live := map[string]bool{}
	for _, n := range names {
		live[n] = true
	}
	ix.mu.Lock()
	now := time.Now()
	for n := range ix.retries {
		if !live[n] {
			delete(ix.retries, n)
		}
	}
	for n, e := range ix.entries {
		e.db.mu.RLock()
		full := e.db.full
		e.db.mu.RUnlock()
		if !live[n] {
			ix.removeLocked(n, e)
			continue
		}
		// A chronicle left out for want of room is read again once
		// retention made room (see fullRetryMin).
		room := ix.stats.points.Load() < ix.opts.MaxPoints/10*9 && ix.stats.strBytes.Load() < ix.opts.MaxStringBytes/10*9
		if r := ix.retries[n]; full && room && !now.Before(r.at) {
			r.delay = min(max(2*r.delay, fullRetryMin), fullRetryMax)
			r.at = now.Add(r.delay)
			ix.retries[n] = r
			ix.removeLocked(n, e)
		}
	}
	ix.mu.Unlock()
}

func (ix *Index) removeLocked(name string, e *entry) {
	e.cancel()
	e.db.drop()
	delete(ix.entries, name)
}

// Sync returns the index of a chronicle once it holds every block the log
// had acknowledged when Sync was called (read-your-writes) and none that
// retention has evicted. It starts following the chronicle if needed. A
// missing chronicle is store.ErrNotFound.
func (ix *Index) Sync(ctx context.Context, chronicle string) (*DB, error) {
	return ix.sync(ctx, chronicle, true)
}

func (ix *Index) sync(ctx context.Context, chronicle string, wait bool) (*DB, error) {
	first, last, err := ix.opts.Log.Blocks(ctx, chronicle)
	ix.mu.Lock()
	e := ix.entries[chronicle]
	if errors.Is(err, store.ErrNotFound) {
		if e != nil {
			ix.removeLocked(chronicle, e)
		}
		ix.mu.Unlock()
		return nil, err
	}
	if err != nil {
		ix.mu.Unlock()
		return nil, err
	}
	if e != nil {
		e.db.mu.RLock()
		recreated := last < e.db.applied
		e.db.mu.RUnlock()
		if recreated { // deleted and created again: start over
			ix.removeLocked(chronicle, e)
			e = nil
		}
	}
	if e == nil {
		if ix.ctx == nil || ix.ctx.Err() != nil {
			ix.mu.Unlock()
			return nil, errors.New("query index: not running")
		}
		e = &entry{db: newDB(chronicle, ix.widths, &ix.stats), progress: make(chan struct{})}
		fctx, cancel := context.WithCancel(ix.ctx)
		e.cancel = cancel
		ix.entries[chronicle] = e
		ix.wg.Add(1)
		go func() {
			defer ix.wg.Done()
			ix.follow(fctx, e)
		}()
	}
	ix.mu.Unlock()

	e.db.mu.Lock()
	if first > 0 {
		e.db.evict(first)
	}
	e.db.mu.Unlock()
	if !wait {
		return e.db, nil
	}
	timer := time.NewTimer(ix.opts.CatchUp)
	defer timer.Stop()
	for {
		e.mu.Lock()
		ch := e.progress
		e.mu.Unlock()
		e.db.mu.RLock()
		applied, full := e.db.applied, e.db.full
		e.db.mu.RUnlock()
		if applied >= last {
			if full {
				return nil, fmt.Errorf("%w: chronicle %q is not indexed: the index holds %d points (limit %d) and %d bytes of strings (limit %d); shorten retention",
					ErrFull, chronicle, ix.stats.points.Load(), ix.opts.MaxPoints, ix.stats.strBytes.Load(), ix.opts.MaxStringBytes)
			}
			return e.db, nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return nil, fmt.Errorf("%w: chronicle %q at block %d of %d", ErrCatchUp, chronicle, applied, last)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// catchUp reads the chronicle after the cursor to its current end and
// indexes it. Decoding blocks (the read) and parsing and indexing their
// events run in two goroutines, so that a start or a resume takes half the
// time on two cores.
func (ix *Index) catchUp(ctx context.Context, e *entry, after uint64) (uint64, error) {
	type block struct {
		seq uint64
		evs []event.Event
	}
	blocks := make(chan block, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var p fastjson.Parser
		for b := range blocks {
			for i := range b.evs {
				b.evs[i] = expand(&p, &b.evs[i])
			}
			ix.apply(e, b.seq, b.evs)
		}
	}()
	var cur block
	send := func() bool {
		if len(cur.evs) == 0 {
			return true
		}
		select {
		case blocks <- cur:
			cur = block{}
			return true
		case <-ctx.Done():
			return false
		}
	}
	last, err := ix.opts.Log.Read(ctx, store.Query{Chronicle: e.db.Name, After: after}, func(ev *event.Event) error {
		b, _ := event.SplitSeq(ev.Seq)
		if b != cur.seq && !send() {
			return ctx.Err()
		}
		cur.seq = b
		cur.evs = append(cur.evs, *ev)
		return nil
	}, nil)
	send()
	close(blocks)
	<-done
	return last, err
}

// follow reads a chronicle from its start, then tails it; a tail that
// falls behind (ErrSlowConsumer) resumes from the last block applied.
func (ix *Index) follow(ctx context.Context, e *entry) {
	name := e.db.Name
	after := event.MakeSeq(0, event.MaxBlockEvents) // before the first block
	var p fastjson.Parser
	for ctx.Err() == nil {
		last, err := ix.catchUp(ctx, e, after)
		after = max(after, last)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, store.ErrNotFound) {
				ix.log.Warn("query index: reading the log", "chronicle", name, "err", err)
				sleep(ctx, time.Second)
			}
			if errors.Is(err, store.ErrNotFound) {
				return // deleted: rescan or Sync drops the entry
			}
			continue
		}
		tail, err := ix.opts.Log.Tail(ctx, store.TailQuery{Chronicle: name, After: after, MaxBuffered: ix.opts.TailBuffer})
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return
			}
			if ctx.Err() == nil {
				ix.log.Warn("query index: tailing the log", "chronicle", name, "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		for {
			item, err := tail.Next(ctx)
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, store.ErrSlowConsumer) {
					ix.log.Warn("query index: tail ended", "chronicle", name, "err", err)
				}
				break
			}
			if len(item.Events) == 0 {
				continue
			}
			b, _ := event.SplitSeq(item.Events[0].Seq)
			evs := make([]event.Event, len(item.Events))
			for i := range item.Events {
				evs[i] = expand(&p, &item.Events[i])
			}
			ix.apply(e, b, evs)
			after = max(after, item.Events[len(item.Events)-1].Seq)
		}
		tail.Close()
	}
}

func (ix *Index) apply(e *entry, block uint64, evs []event.Event) {
	e.db.mu.Lock()
	var n, sb int64
	for i := range evs {
		n += int64(len(evs[i].Fields))
		for _, v := range evs[i].Fields {
			sb += int64(len(v.StringValue()))
		}
	}
	if !e.db.full && (ix.stats.points.Load()+n > ix.opts.MaxPoints || ix.stats.strBytes.Load()+sb > ix.opts.MaxStringBytes) {
		// No room: drop what this chronicle holds rather than answer
		// from a part of it.
		ix.log.Warn("query index: full; a chronicle is no longer indexed", "chronicle", e.db.Name, "max_points", ix.opts.MaxPoints)
		e.db.full = true
		e.db.clear()
	}
	if block >= e.db.evicted && !e.db.full {
		e.db.apply(block, evs)
	} else {
		e.db.applied = max(e.db.applied, block)
	}
	e.db.mu.Unlock()
	e.mu.Lock()
	close(e.progress)
	e.progress = make(chan struct{})
	e.mu.Unlock()
}

// expand returns a copy of ev with the tags and fields of its body.
func expand(p *fastjson.Parser, ev *event.Event) event.Event {
	e := *ev
	switch e.Format {
	case event.FormatJSON:
		jsonev.Expand(p, &e)
	case event.FormatLine:
		// Ingest validated the line; one that fails here keeps what it has.
		_ = lineproto.Expand(&e)
	}
	e.Body = nil // not needed: let the block's memory go
	return e
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
