package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/chronostream/chronostream/event"
)

// Query selects events of a chronicle: of one story, or of all when Story is "".
type Query struct {
	Chronicle string
	Story     string
	After     uint64 // exclusive lower bound on seq (0: from the oldest)
	Before    uint64 // exclusive upper bound on seq (0: none)
	From, To  int64  // inclusive event-time bounds in Unix ns (0: none)
	Desc      bool   // newest first
	Limit     int    // at most this many events (0: no limit)
	// Match, when set, keeps only the events it accepts.
	Match func(*event.Event) bool
}

// Gap tells a reader that events it had not read yet were evicted by retention.
type Gap struct {
	After uint64 `json:"after"` // the reader's cursor
	Next  uint64 `json:"next"`  // the first seq still available after it
}

// Read calls fn for each event the query selects, in seq order (or reverse).
// It returns the seq of the last event passed to fn (0 if none). Blocks that
// a reader with cursor After had not seen and that retention evicted are
// reported to onGap when it is not nil.
func (s *Store) Read(ctx context.Context, q Query, fn func(*event.Event) error, onGap func(Gap) error) (uint64, error) {
	str, err := s.js.Stream(ctx, streamName(q.Chronicle))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, fmt.Errorf("chronicle %q: %w", q.Chronicle, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	r := &reader{q: q, fn: fn, onGap: onGap}
	if q.Desc {
		err = s.readDesc(ctx, str, r)
	} else {
		err = s.readAsc(ctx, str, r)
	}
	if errors.Is(err, errLimit) {
		err = nil
	}
	return r.last, err
}

var errLimit = errors.New("limit reached")

// reader filters the events of blocks and tracks the cursor.
type reader struct {
	q     Query
	fn    func(*event.Event) error
	onGap func(Gap) error
	n     int
	last  uint64
	gaps  gapDetector
}

// block passes a block's selected events to fn.
func (r *reader) block(seq uint64, subj string, hdr map[string][]string, data []byte) error {
	if r.q.From != 0 && headerInt(hdr, hdrT1) < r.q.From || r.q.To != 0 && headerInt(hdr, hdrT0) > r.q.To {
		return nil // no event of this block is in the time range
	}
	story := r.q.Story
	if story == "" {
		var err error
		if story, err = storyFromSubject(subj); err != nil {
			return fmt.Errorf("%w: subject %q", errCorrupt, subj)
		}
	}
	evs, err := decodeBlock(data, seq, story)
	if err != nil {
		return fmt.Errorf("store: block %d: %w", seq, err)
	}
	if r.q.Desc {
		for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
			evs[i], evs[j] = evs[j], evs[i]
		}
	}
	for i := range evs {
		e := &evs[i]
		if e.Seq <= r.q.After || r.q.Before != 0 && e.Seq >= r.q.Before ||
			r.q.From != 0 && e.Time < r.q.From || r.q.To != 0 && e.Time > r.q.To ||
			r.q.Match != nil && !r.q.Match(e) {
			continue
		}
		if err := r.fn(e); err != nil {
			return err
		}
		r.last = e.Seq
		r.n++
		if r.q.Limit > 0 && r.n >= r.q.Limit {
			return errLimit
		}
	}
	return nil
}

func (s *Store) readAsc(ctx context.Context, str jetstream.Stream, r *reader) error {
	q := r.q
	subj := chronicleSubjects(q.Chronicle)
	var end uint64
	if q.Story != "" {
		subj = storySubject(q.Chronicle, q.Story)
		m, err := str.GetLastMsgForSubject(ctx, subj)
		if isNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		end = m.Sequence
	} else {
		info, err := str.Info(ctx)
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		end = info.State.LastSeq
	}
	if q.Before != 0 {
		b, _ := event.SplitSeq(q.Before)
		end = min(end, b)
	}
	start, _ := event.SplitSeq(q.After)
	start = max(start, 1)
	if q.From != 0 && q.Story != "" {
		// Times resolve to sequences: skip the blocks that cannot hold
		// events at or after From.
		seek, err := seekTime(ctx, str, subj, start, end, q.From)
		if err != nil {
			return err
		}
		start = max(start, seek)
	}
	if start > end {
		return nil
	}
	r.gaps = newGapDetector(q.After, q.Story != "")
	stream := str.CachedInfo().Config.Name
	cons, cleanup, err := s.orderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subj},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    start,
	})
	if err != nil {
		return err
	}
	defer cleanup()
	it, err := cons.Messages(jetstream.PullMaxMessages(64))
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	next := start
	for {
		m, err := it.Next(jetstream.NextMaxWait(time.Second))
		if errors.Is(err, nats.ErrTimeout) {
			// Nothing came: retention may have removed every block between
			// the cursor and the end computed above. Go on waiting only
			// while a block to deliver still exists.
			if _, gerr := str.GetMsg(ctx, next, jetstream.WithGetMsgSubject(subj)); isNotFound(gerr) {
				return nil
			}
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("store: %w", err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		seq := md.Sequence.Stream
		if seq > end {
			return nil
		}
		next = seq + 1
		if g, ok := r.gaps.check(m.Subject(), seq, headerUint(m.Headers(), hdrPrev), headerUint(m.Headers(), hdrPrevN)); ok && r.onGap != nil {
			if err := r.onGap(g); err != nil {
				return err
			}
		}
		if err := r.block(seq, m.Subject(), m.Headers(), m.Data()); err != nil {
			return err
		}
		if seq == end || md.NumPending == 0 {
			return nil
		}
	}
}

// readDesc walks blocks backwards: a story by following each block's
// previous-block header, a chronicle by stream sequence.
func (s *Store) readDesc(ctx context.Context, str jetstream.Stream, r *reader) error {
	q := r.q
	var seq uint64
	if q.Story != "" {
		subj := storySubject(q.Chronicle, q.Story)
		m, err := newestStoryBlock(ctx, str, subj, q.Before)
		for m != nil {
			if err != nil {
				return err
			}
			if m.Sequence*event.SeqsPerBlock+event.MaxBlockEvents <= q.After {
				return nil
			}
			if err := r.block(m.Sequence, m.Subject, m.Header, m.Data); err != nil {
				return err
			}
			m, err = prevStoryBlock(ctx, str, m)
		}
		return err
	}
	info, err := str.Info(ctx)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	seq = info.State.LastSeq
	if q.Before != 0 {
		b, _ := event.SplitSeq(q.Before)
		seq = min(seq, b)
	}
	after, _ := event.SplitSeq(q.After)
	for ; seq >= info.State.FirstSeq && seq >= max(after, 1); seq-- {
		m, err := str.GetMsg(ctx, seq)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if err := r.block(m.Sequence, m.Subject, m.Header, m.Data); err != nil {
			return err
		}
	}
	return nil
}

// newestStoryBlock returns the story's newest block holding events before
// the cursor before (0: its last block), or nil if it has none.
func newestStoryBlock(ctx context.Context, str jetstream.Stream, subj string, before uint64) (*jetstream.RawStreamMsg, error) {
	if before == 0 {
		return getBlock(str.GetLastMsgForSubject(ctx, subj))
	}
	b, _ := event.SplitSeq(before)
	m, err := getBlock(str.GetMsg(ctx, b, jetstream.WithGetMsgSubject(subj)))
	switch {
	case err != nil:
		return nil, err
	case m == nil:
		// No block of the story at or after b: its last one is before it.
		return getBlock(str.GetLastMsgForSubject(ctx, subj))
	case m.Sequence == b:
		return m, nil
	}
	// m is the story's first block after b; the one before it is the answer.
	return prevStoryBlock(ctx, str, m)
}

// prevStoryBlock follows a block's link to the story's previous block. It
// returns nil at the story's start and where retention removed the rest.
func prevStoryBlock(ctx context.Context, str jetstream.Stream, m *jetstream.RawStreamMsg) (*jetstream.RawStreamMsg, error) {
	prev := headerUint(m.Header, hdrPrev)
	if prev == 0 {
		return nil, nil
	}
	if prev >= m.Sequence {
		return nil, fmt.Errorf("%w: block %d links forward to %d", errCorrupt, m.Sequence, prev)
	}
	p, err := getBlock(str.GetMsg(ctx, prev))
	if err != nil || p == nil {
		return nil, err
	}
	if p.Subject != m.Subject {
		return nil, fmt.Errorf("%w: block %d of %s links to block %d of %s", errCorrupt, m.Sequence, m.Subject, prev, p.Subject)
	}
	return p, nil
}

// seekTime returns the first stream sequence in [lo, hi] from which a
// story's blocks can hold events at or after t (hi+1 if none can), by binary
// search on the story's running maximum event time. Each probe reads the
// story's first block at or after a sequence.
func seekTime(ctx context.Context, str jetstream.Stream, subj string, lo, hi uint64, t int64) (uint64, error) {
	best := hi + 1
	for lo <= hi {
		mid := lo + (hi-lo)/2
		m, err := getBlock(str.GetMsg(ctx, mid, jetstream.WithGetMsgSubject(subj)))
		switch {
		case err != nil:
			return 0, err
		case m == nil || m.Sequence > hi:
			hi = mid - 1 // no story block in [mid, hi]
		case blockTMax(m.Header) < t:
			lo = m.Sequence + 1 // it and every story block before it end before t
		default:
			best = m.Sequence // a candidate; an earlier one can only lie before mid
			hi = mid - 1
		}
	}
	return best, nil
}

// blockTMax is a block's running maximum event time in its story.
func blockTMax(h nats.Header) int64 {
	if h.Get(hdrTMax) == "" {
		return headerInt(h, hdrT1) // written before the header existed
	}
	return headerInt(h, hdrTMax)
}

// getBlock turns "not found" into a nil block.
func getBlock(m *jetstream.RawStreamMsg, err error) (*jetstream.RawStreamMsg, error) {
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return m, nil
}

// gapDetector notices evicted blocks in an ascending read. For a story, a
// block whose previous-block header points past the last block read means
// blocks in between are gone; for a whole chronicle, any jump in stream
// sequence does (nothing but retention deletes blocks, always the oldest).
// A reader starting from the very beginning (cursor 0) has no gap. A cursor
// inside a block that is gone lost the rest of that block, which the next
// block of its story tells from the count of events it records for it.
// (For a chronicle whose next block belongs to another story, that count is
// unknown and the rest of the cursor's block can go unreported.)
type gapDetector struct {
	story bool
	last  map[string]uint64 // per subject for stories; key "" for chronicles
	from  uint64
	after uint64
}

func newGapDetector(after uint64, story bool) gapDetector {
	b, _ := event.SplitSeq(after)
	return gapDetector{story: story, from: b, after: after, last: map[string]uint64{}}
}

func (g *gapDetector) check(subj string, seq, prev, prevN uint64) (Gap, bool) {
	key := ""
	if g.story {
		key = subj
	}
	last, seen := g.last[key]
	if !seen {
		last = g.from
	}
	g.last[key] = seq
	gap := false
	if last > 0 {
		if g.story {
			gap = prev > last
		} else {
			gap = seq > last+1 && seq != last
		}
	}
	if !gap && !seen && last > 0 && seq != last && prev == last {
		// The block holding the cursor is gone (the read starts there) and
		// this one followed it in the story: whatever that block held after
		// the cursor went with it.
		_, pos := event.SplitSeq(g.after)
		gap = prevN > uint64(pos)
	}
	if !gap {
		return Gap{}, false
	}
	cursor := g.after
	if seen {
		cursor = event.MakeSeq(last, event.MaxBlockEvents)
	}
	return Gap{After: cursor, Next: event.MakeSeq(seq, 1)}, true
}

// LastBlock returns the stream sequence of a chronicle's newest block, 0
// when it has none, from the stream's state (no block is read): every
// event id up to event.MakeSeq(LastBlock, event.MaxBlockEvents) is taken,
// and every event appended later gets a larger one.
func (s *Store) LastBlock(ctx context.Context, chronicle string) (uint64, error) {
	str, err := s.js.Stream(ctx, streamName(chronicle))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, fmt.Errorf("chronicle %q: %w", chronicle, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	return str.CachedInfo().State.LastSeq, nil
}
