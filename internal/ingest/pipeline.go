package ingest

import (
	"context"
	"sync"
	"unsafe"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/store"
)

// BatchOptions size a Pipeline's batches and its window of appends.
type BatchOptions struct {
	// Events and Bytes: an open batch goes to the log when it holds this
	// many events, or when the next body would take its arena past Bytes.
	// Large batches keep the log's group commit fed; the bytes bound keeps
	// a request's memory proportional to the window, not to its body.
	Events, Bytes int
	// InFlight is how many appended batches of one request may be
	// outstanding (across all its stories) before the oldest is waited for:
	// the log stores them while the transport reads and decodes more. It
	// also bounds the open batches: together they may hold as much as
	// InFlight full batches, and past that the largest is appended early,
	// so that a body naming thousands of stories holds a window's worth of
	// memory, not a full batch per story.
	InFlight int
}

// DefaultBatch is what NDJSON measured best with 200–400 byte events: about
// 2 MiB in flight per request.
var DefaultBatch = BatchOptions{Events: 4096, Bytes: 256 << 10, InFlight: 8}

// Appender feeds the log for one transport. It is shared by all requests of
// a handler and safe for concurrent use: it owns the pool of batches, so that
// in steady state no event costs an allocation. Each request gets its own
// Pipeline from Begin.
type Appender struct {
	log  Log
	opts BatchOptions
	full sync.Pool // *batch grown to opts.Events and opts.Bytes
	part sync.Pool // *batch smaller than that, as the stories of many-story requests use
}

// NewAppender returns an Appender writing to log. Zero fields of opts take
// DefaultBatch's values.
func NewAppender(log Log, opts BatchOptions) *Appender {
	if opts.Events <= 0 {
		opts.Events = DefaultBatch.Events
	}
	if opts.Bytes <= 0 {
		opts.Bytes = DefaultBatch.Bytes
	}
	if opts.InFlight <= 0 {
		opts.InFlight = DefaultBatch.InFlight
	}
	return &Appender{log: log, opts: opts}
}

// batch is a unit of append: events of one story whose bodies live in
// arena, in order and back to back (so a grown arena re-slices them).
// Batches start small and grow up to the options' sizes as their story
// fills them.
type batch struct {
	story StoryRef
	evs   []event.Event
	arena []byte
	size  int // bytes held: the capacities of evs and arena
	p     *store.Pending
}

const eventSize = int(unsafe.Sizeof(event.Event{}))

// First sizes of a batch that starts small.
const (
	minBatchEvents = 16
	minBatchBytes  = 2 << 10
)

func (b *batch) resize() { b.size = cap(b.evs)*eventSize + cap(b.arena) }

// get returns a batch for story s. A pipeline whose other stories hold no
// open batch (the one-story request, the common case) takes a full one, so
// that in steady state it never grows; others start small.
func (a *Appender) get(s StoryRef, small bool) *batch {
	var b *batch
	if !small {
		b, _ = a.full.Get().(*batch)
	}
	if b == nil {
		b, _ = a.part.Get().(*batch)
	}
	if b == nil {
		ne, nb := a.opts.Events, a.opts.Bytes
		if small {
			ne, nb = min(ne, minBatchEvents), min(nb, minBatchBytes)
		}
		b = &batch{evs: make([]event.Event, 0, ne), arena: make([]byte, 0, nb)}
	}
	b.story = s
	b.resize()
	return b
}

// grow makes room in b for one more event with a body of n bytes, up to
// the options' sizes (the caller flushed a batch that could not fit it).
// Bodies in the old arena are re-sliced into the new one.
func (a *Appender) grow(b *batch, n int) {
	if len(b.evs) == cap(b.evs) {
		evs := make([]event.Event, len(b.evs), min(max(2*cap(b.evs), minBatchEvents), a.opts.Events))
		copy(evs, b.evs)
		b.evs = evs
	}
	if need := len(b.arena) + n; need > cap(b.arena) {
		c := need // a body larger than Bytes: a one-off arena
		if need <= a.opts.Bytes {
			c = min(max(2*cap(b.arena), minBatchBytes, need), a.opts.Bytes)
		}
		arena := make([]byte, len(b.arena), c)
		copy(arena, b.arena)
		off := 0
		for i := range b.evs {
			l := len(b.evs[i].Body)
			b.evs[i].Body = arena[off : off+l : off+l]
			off += l
		}
		b.arena = arena
	}
	b.resize()
}

// put recycles a batch the log is done with.
func (a *Appender) put(b *batch) {
	if cap(b.arena) > a.opts.Bytes || cap(b.evs) > a.opts.Events {
		return // a one-off arena sized for a huge body
	}
	clear(b.evs) // drop references to bodies, tags and fields
	b.evs, b.arena, b.p = b.evs[:0], b.arena[:0], nil
	if cap(b.arena) == a.opts.Bytes && cap(b.evs) == a.opts.Events {
		a.full.Put(b)
	} else {
		a.part.Put(b)
	}
}

// Begin starts the appends of one request (or connection). ctx bounds the
// waits for durability; gate, if not nil, is called once, before the first
// append, and its error fails the pipeline before anything is stored. A
// transport records its source in the gate (started in the background, so
// that it overlaps reading and decoding the first batch): then an
// acknowledgement never names a source that is not recorded.
func (a *Appender) Begin(ctx context.Context, gate func() error) *Pipeline {
	return &Pipeline{a: a, ctx: ctx, who: auth.FromContext(ctx), gate: gate, last: -1, window: make([]*batch, 0, a.opts.InFlight+1),
		budget: a.opts.InFlight * (a.opts.Events*eventSize + a.opts.Bytes)}
}

// StoryRef names a story of a Pipeline; Story returns it. Transports that
// write many stories per request (a line-protocol body names a measurement
// per line) keep refs to skip the lookup.
type StoryRef int32

type storyKey struct{ chronicle, story string }

// pipeStory is a story's state within one pipeline.
type pipeStory struct {
	storyKey
	open   *batch         // being filled; nil until the story's next event
	hi     int            // open's index in Pipeline.opens
	acked  store.Appended // the durable prefix of this request's events
	failed bool           // a batch failed: later ones are not acknowledged
}

// Pipeline streams the events of one request into the log, in one open
// batch per story, each appended when full, with up to InFlight appends
// outstanding. It is not safe for concurrent use.
//
// Acknowledgements cover durable prefixes: Stored counts the events of the
// batches that succeeded, except that within a story nothing after its
// first failed batch counts (the store fails whatever was queued behind a
// failed block of the story, so in practice nothing after it is stored
// either). The first failure of any story stops further appends.
type Pipeline struct {
	a      *Appender
	ctx    context.Context
	who    *auth.Principal // the request's token (nil: unchecked)
	gate   func() error
	gated  bool
	err    error
	stored int

	stories []pipeStory
	index   map[storyKey]StoryRef // built once a request names several stories
	last    StoryRef              // the story named last: most requests name one
	window  []*batch              // appended, oldest first

	// The open batches, a max-heap by size, and the bytes they hold: past
	// budget the largest is appended.
	opens     []StoryRef
	openBytes int
	budget    int
}

// Story returns the ref of a story, validating its names and that the
// request's token (its context's auth.Principal) may write to the
// chronicle the first time: every transport resolves its chronicle here,
// so this one check covers all of them. It does not allocate for a story
// the pipeline has seen.
func (p *Pipeline) Story(chronicle, story string) (StoryRef, error) {
	if p.last >= 0 {
		if k := &p.stories[p.last].storyKey; k.chronicle == chronicle && k.story == story {
			return p.last, nil
		}
	}
	key := storyKey{chronicle, story}
	if p.index != nil {
		if ref, ok := p.index[key]; ok {
			p.last = ref
			return ref, nil
		}
	}
	if err := store.ValidateNames(chronicle, story); err != nil {
		return -1, err
	}
	if err := p.who.Check(auth.ScopeWrite, chronicle); err != nil {
		return -1, err
	}
	ref := StoryRef(len(p.stories))
	p.stories = append(p.stories, pipeStory{storyKey: key})
	if len(p.stories) > 1 {
		if p.index == nil {
			p.index = make(map[storyKey]StoryRef)
			p.index[p.stories[0].storyKey] = 0
		}
		p.index[key] = ref
	}
	p.last = ref
	return ref, nil
}

// Add queues one event for story s. *e is copied and body is copied into
// the batch's arena (e.Body is ignored), so both may be reused as soon as
// Add returns; tags and fields maps are kept until the batch is durable.
// After a failure Add stores nothing and returns the failure, as do Close
// and Err.
func (p *Pipeline) Add(s StoryRef, e *event.Event, body []byte) error {
	if p.err != nil {
		return p.err
	}
	st := &p.stories[s]
	b := st.open
	if b == nil {
		b = p.openBatch(s)
	}
	if len(b.evs) == cap(b.evs) || len(b.arena)+len(body) > cap(b.arena) {
		if len(b.evs) > 0 && (len(b.evs) >= p.a.opts.Events || len(b.arena)+len(body) > p.a.opts.Bytes) {
			if err := p.flush(st); err != nil {
				return err
			}
			b = p.openBatch(s)
		}
		if len(b.evs) == cap(b.evs) || len(b.arena)+len(body) > cap(b.arena) {
			// Grow, or give a body larger than Bytes an arena of its own.
			old := b.size
			p.a.grow(b, len(body))
			p.openBytes += b.size - old
			p.fix(st.hi)
		}
	}
	off := len(b.arena)
	b.arena = append(b.arena, body...)
	b.evs = append(b.evs, *e)
	b.evs[len(b.evs)-1].Body = b.arena[off:len(b.arena):len(b.arena)]
	for p.openBytes > p.budget && len(p.opens) > 1 {
		if err := p.flush(&p.stories[p.opens[0]]); err != nil {
			return err
		}
	}
	return nil
}

// openBatch gives story s an open batch.
func (p *Pipeline) openBatch(s StoryRef) *batch {
	st := &p.stories[s]
	b := p.a.get(s, len(p.opens) > 0)
	st.open = b
	st.hi = len(p.opens)
	p.opens = append(p.opens, s)
	p.openBytes += b.size
	p.up(st.hi)
	return b
}

// closeBatch takes st's open batch out of the open ones.
func (p *Pipeline) closeBatch(st *pipeStory) *batch {
	b := st.open
	st.open = nil
	p.openBytes -= b.size
	i, last := st.hi, len(p.opens)-1
	if i != last {
		p.swap(i, last)
	}
	p.opens = p.opens[:last]
	if i != last {
		p.fix(i)
	}
	return b
}

// The heap of open batches, largest first.

func (p *Pipeline) larger(i, j int) bool {
	return p.stories[p.opens[i]].open.size > p.stories[p.opens[j]].open.size
}

func (p *Pipeline) swap(i, j int) {
	p.opens[i], p.opens[j] = p.opens[j], p.opens[i]
	p.stories[p.opens[i]].hi = i
	p.stories[p.opens[j]].hi = j
}

func (p *Pipeline) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !p.larger(i, parent) {
			return
		}
		p.swap(i, parent)
		i = parent
	}
}

func (p *Pipeline) fix(i int) {
	p.up(i)
	for n := len(p.opens); ; {
		l := 2*i + 1
		if l >= n {
			return
		}
		c := l
		if r := l + 1; r < n && p.larger(r, l) {
			c = r
		}
		if !p.larger(c, i) {
			return
		}
		p.swap(i, c)
		i = c
	}
}

// flush appends st's open batch.
func (p *Pipeline) flush(st *pipeStory) error {
	b := p.closeBatch(st)
	if len(b.evs) == 0 {
		p.a.put(b)
		return nil
	}
	if !p.gated {
		p.gated = true
		if p.gate != nil {
			if err := p.gate(); err != nil {
				p.err = err
				p.a.put(b)
				return err
			}
		}
	}
	b.p = p.a.log.Append(st.chronicle, st.story, b.evs)
	p.who.Spend(len(b.evs), len(b.arena)) // the token's ingest rate, if limited
	p.window = append(p.window, b)
	if len(p.window) > p.a.opts.InFlight {
		p.waitOldest()
	}
	return p.err
}

func (p *Pipeline) waitOldest() {
	b := p.window[0]
	n := copy(p.window, p.window[1:])
	p.window[n] = nil
	p.window = p.window[:n]
	st := &p.stories[b.story]
	a, err := b.p.Wait(p.ctx)
	if err != nil {
		if p.err == nil {
			p.err = err
		}
		st.failed = true
		// Not recycled: after a failed part, or once ctx ended, the log
		// may still be reading this batch.
		return
	}
	if !st.failed {
		if st.acked.N == 0 {
			st.acked.First = a.First
		}
		st.acked.N += a.N
		st.acked.Last = a.Last
		p.stored += a.N
	}
	p.a.put(b)
}

// Close appends what is still open (unless the pipeline failed) and waits
// until every append is durable or failed, so that no request returns
// while the log holds its memory. It returns the first failure, which the
// transport maps to its response; Stored is final once Close returns.
func (p *Pipeline) Close() error {
	for i := range p.stories {
		st := &p.stories[i]
		if st.open == nil {
			continue
		}
		if p.err == nil {
			_ = p.flush(st) // a failure is kept in p.err
		} else {
			p.a.put(p.closeBatch(st))
		}
	}
	for len(p.window) > 0 {
		p.waitOldest()
	}
	return p.err
}

// Err returns the first failure so far.
func (p *Pipeline) Err() error { return p.err }

// Stored returns how many events are acknowledged so far: durable, and in
// each story a prefix of what the request sent to it.
func (p *Pipeline) Stored() int { return p.stored }

// Acked returns the acknowledged prefix of story s: its event count and
// the seqs of its first and last events.
func (p *Pipeline) Acked(s StoryRef) store.Appended { return p.stories[s].acked }
