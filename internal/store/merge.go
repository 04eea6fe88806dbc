package store

import (
	"cmp"
	"container/heap"
	"context"
	"errors"

	"github.com/chronostream/chronostream/event"
)

// TimeCursor is a position in time order: the events after (Time, Seq).
// Seq breaks ties, since events share timestamps.
type TimeCursor struct {
	Time int64
	Seq  uint64
}

// MergedQuery selects the events of several stories of a chronicle, merged
// by event time.
type MergedQuery struct {
	Chronicle string
	Stories   []string   // empty: every story of the chronicle
	After     TimeCursor // exclusive; zero: from the start (or the end, if Desc)
	From, To  int64      // inclusive event-time bounds (0: none)
	Desc      bool
	Limit     int
	Match     func(*event.Event) bool
}

// mergePage is how many events a story's reader fetches at a time.
const mergePage = 512

// ReadMerged calls fn for the selected events in (time, seq) order, or
// reverse, and returns the cursor of the last one. Each story is read in
// its own log order and the stories are merged, in constant memory per
// story, so the result is in time order when each story's events are; a
// story whose events arrived out of time order keeps its log order.
func (s *Store) ReadMerged(ctx context.Context, q MergedQuery, fn func(*event.Event) error) (TimeCursor, error) {
	stories := q.Stories
	if len(stories) == 0 {
		infos, err := s.Stories(ctx, q.Chronicle)
		if err != nil {
			return TimeCursor{}, err
		}
		for _, st := range infos {
			stories = append(stories, st.Name)
		}
	}
	h := &mergeHeap{desc: q.Desc}
	for _, name := range stories {
		it := &storyIter{s: s, q: q, story: name}
		e, err := it.peek(ctx)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return TimeCursor{}, err
		}
		if e != nil {
			h.its = append(h.its, it)
		}
	}
	heap.Init(h)
	var last TimeCursor
	for n := 0; h.Len() > 0 && (q.Limit <= 0 || n < q.Limit); n++ {
		it := h.its[0]
		e, _ := it.peek(ctx)
		if err := fn(e); err != nil {
			return last, err
		}
		last = TimeCursor{Time: e.Time, Seq: e.Seq}
		it.pos++
		next, err := it.peek(ctx)
		if err != nil {
			return last, err
		}
		if next == nil {
			heap.Pop(h)
		} else {
			heap.Fix(h, 0)
		}
	}
	return last, nil
}

// storyIter reads one story page by page for the merge.
type storyIter struct {
	s      *Store
	q      MergedQuery
	story  string
	buf    []event.Event
	pos    int
	cursor uint64 // seq of the last event fetched
	done   bool
}

// peek returns the iterator's current event, or nil at its end.
func (it *storyIter) peek(ctx context.Context) (*event.Event, error) {
	for it.pos >= len(it.buf) {
		if it.done {
			return nil, nil
		}
		if err := it.fetch(ctx); err != nil {
			return nil, err
		}
	}
	return &it.buf[it.pos], nil
}

func (it *storyIter) fetch(ctx context.Context) error {
	q := Query{Chronicle: it.q.Chronicle, Story: it.story, From: it.q.From, To: it.q.To, Desc: it.q.Desc, Limit: mergePage}
	after := it.q.After
	if it.q.Desc {
		q.Before = it.cursor
		if after != (TimeCursor{}) && (q.To == 0 || after.Time < q.To) {
			q.To = after.Time // later events come before the cursor
		}
	} else {
		q.After = it.cursor
		q.From = max(q.From, after.Time) // earlier events come before the cursor
	}
	q.Match = func(e *event.Event) bool {
		if after != (TimeCursor{}) {
			c := cmp.Or(cmp.Compare(e.Time, after.Time), cmp.Compare(e.Seq, after.Seq))
			if it.q.Desc && c >= 0 || !it.q.Desc && c <= 0 {
				return false
			}
		}
		return it.q.Match == nil || it.q.Match(e)
	}
	it.buf, it.pos = it.buf[:0], 0
	last, err := it.s.Read(ctx, q, func(e *event.Event) error {
		it.buf = append(it.buf, *e)
		return nil
	}, nil)
	if err != nil {
		return err
	}
	if len(it.buf) < mergePage {
		it.done = true
	}
	it.cursor = last
	return nil
}

// mergeHeap orders story iterators by their current event.
type mergeHeap struct {
	its  []*storyIter
	desc bool
}

func (h *mergeHeap) Len() int { return len(h.its) }
func (h *mergeHeap) Less(i, j int) bool {
	a, b := &h.its[i].buf[h.its[i].pos], &h.its[j].buf[h.its[j].pos]
	c := cmp.Or(cmp.Compare(a.Time, b.Time), cmp.Compare(a.Seq, b.Seq))
	if h.desc {
		return c > 0
	}
	return c < 0
}
func (h *mergeHeap) Swap(i, j int) { h.its[i], h.its[j] = h.its[j], h.its[i] }
func (h *mergeHeap) Push(x any)    { h.its = append(h.its, x.(*storyIter)) }
func (h *mergeHeap) Pop() any {
	x := h.its[len(h.its)-1]
	h.its = h.its[:len(h.its)-1]
	return x
}
