package influxdb

import (
	"cmp"
	"iter"
	"slices"
)

// DefaultSequenceWindow is how far apart, in selected events, two events of
// one series and timestamp may be and still be numbered apart (see
// numbering): twice the default batch_events, about 1 MB of memory.
const DefaultSequenceWindow = 10_000

// DefaultSequenceSpan is how far apart, in events of the chronicle
// (selected or not), two events of one series and timestamp may be and
// still be numbered apart (see numbering). Prime reads about twice that
// back at most, about 2 s at ~1 µs an event, however few events the sink
// selects; a second of a chronicle taking a million events a second.
const DefaultSequenceSpan = 1_000_000

// numbering gives each event its rank among the events sharing its series
// and timestamp (its key), by a rule that depends on the log alone, so that
// a restarted sink (Prime) and a redelivery number exactly as before:
//
// Count the selected events in log order (those refused or unencodable
// included), and all the events of the chronicle. An event's rank is its
// predecessor's rank + 1, where the predecessor is the latest earlier
// event with the same key, if it is among the window previous selected
// events and among the span previous events of the chronicle; otherwise
// (no such event, or further back) the rank is 0.
//
// The span bounds how far back Prime reads when the sink selects few
// events of a busy chronicle: without it, finding the window's selected
// events could take the whole log.
//
// A group longer than the window keeps counting as long as its members are
// never more than window (and span) apart; only the last window events are
// kept: a ring of their keys and, per key, where its latest member was and
// its rank. Memory is O(window), allocated whole at the start, whatever
// the traffic.
//
// Keys are 64-bit FNV-1a hashes of the series and timestamp: two keys that
// collide are numbered as one group, which only puts a needless sequence
// tag on a point that would not have overwritten anything.
type numbering struct {
	window int
	span   int64          // in events of the chronicle
	pos    uint64         // events numbered so far; the latest is at pos
	at     int64          // the chronicle position of the latest (see keyed)
	ring   []uint64       // ring[p%window]: the key of the event at position p
	latest map[uint64]mem // key → its latest member, while in the window
	last   uint64         // the highest seq numbered

	// batch is the ranks of the last Deliver that brought events never
	// numbered: a retry or a split after a refusal sends a part of it again.
	batch, next []ranked
	fresh       bool // next has an event never numbered
}

type mem struct {
	pos  uint64
	at   int64
	rank int
}

type ranked struct {
	seq  uint64
	rank int
}

func newNumbering(window, span int) *numbering {
	// Room for twice the window from the start: the deletions of a full
	// window leave tombstones that make the map grow once, to about that,
	// after some millions of events; sized so, it never grows.
	return &numbering{window: window, span: int64(span), ring: make([]uint64, window), latest: make(map[uint64]mem, 2*window)}
}

// begin starts numbering a Deliver's batch.
func (n *numbering) begin() {
	n.next, n.fresh = n.next[:0], false
}

// end finishes a Deliver's batch: if it brought new events, it is the batch
// a redelivery repeats.
func (n *numbering) end() {
	if n.fresh {
		n.batch, n.next = n.next, n.batch
	}
}

// rank numbers an event of the batch begun. ok is false for an event
// numbered before that is not in the last batch: the runner never sends one.
func (n *numbering) rank(k keyed) (rank int, ok bool) {
	if k.seq <= n.last {
		i, found := slices.BinarySearchFunc(n.batch, k.seq, func(r ranked, s uint64) int {
			return cmp.Compare(r.seq, s)
		})
		if !found {
			return 0, false
		}
		rank = n.batch[i].rank
	} else {
		rank = n.add(k)
		n.last, n.fresh = k.seq, true
	}
	n.next = append(n.next, ranked{k.seq, rank})
	return rank, true
}

// add takes the next position for a new event and returns its rank.
func (n *numbering) add(k keyed) int {
	n.pos++
	if k.at == 0 {
		k.at = n.at + 1
	}
	n.at = k.at
	rank := 0
	if m, found := n.latest[k.key]; k.ok && found && k.at-m.at <= n.span {
		rank = m.rank + 1 // m.pos ≥ pos − window: older ones are evicted
	}
	n.evict(n.pos - uint64(n.window))
	n.ring[n.pos%uint64(n.window)] = k.key
	if k.ok {
		n.latest[k.key] = mem{pos: n.pos, at: k.at, rank: rank}
	}
	return rank
}

// evict forgets the key of position p if p was its latest member.
func (n *numbering) evict(p uint64) {
	if p == 0 || p > n.pos {
		return // before the first position (or the subtraction wrapped)
	}
	k := n.ring[p%uint64(n.window)]
	if m, ok := n.latest[k]; ok && m.pos == p {
		delete(n.latest, k)
	}
}

// keyed is an event as the numbering sees it.
type keyed struct {
	seq, key uint64
	ok       bool // false: its series cannot be written
	// at is the event's position in the chronicle (sink.Batch.Positions,
	// from 1 after the session's cursor); 0 when unknown: the next one,
	// as if the sink selected every event.
	at int64
}

// prime replaces the state with the one numbering the log up to the
// cursor would have left: back yields the events of the chronicle before
// the cursor, newest first, with whether they are selected. It reads the
// window's events, then, for each key among them, walks its chain back
// (members never more than window, nor span, apart) to count its rank,
// and stops once no chain can reach further: after 2×window selected
// events or 2×span events of the chronicle, whichever comes first, unless
// a group is that long.
func (n *numbering) prime(back iter.Seq2[keyed, bool]) {
	type chain struct {
		first, earliest, count int   // in selected events back from the cursor, from 1
		firstAt, earliestAt    int64 // in events of the chronicle back, from 0
		closed                 bool
	}
	chains := map[uint64]*chain{}
	win := make([]keyed, 0, n.window) // newest first
	q, d := 0, int64(-1)
	// The next event read can matter while it may start a chain (among
	// the window's selected events and within span of the cursor's next
	// event) or extend one: reachQ and reachD bound both.
	reachQ, reachD := n.window, n.span-1
	for ev, selected := range back {
		d++
		if selected {
			q++
			if q <= n.window {
				win = append(win, ev)
			}
			c := chains[ev.key]
			switch {
			case !ev.ok:
			case c == nil && q <= n.window && d < n.span:
				chains[ev.key] = &chain{first: q, earliest: q, count: 1, firstAt: d, earliestAt: d}
				reachQ, reachD = max(reachQ, q+n.window), max(reachD, d+n.span)
			case c == nil || c.closed: // not in reach of the cursor, or its chain ended
			case q-c.earliest <= n.window && d-c.earliestAt <= n.span:
				c.earliest, c.earliestAt, c.count = q, d, c.count+1
				reachQ, reachD = max(reachQ, q+n.window), max(reachD, d+n.span)
			default:
				c.closed = true
			}
		}
		if q+1 > reachQ || d+1 > reachD {
			break
		}
	}
	n.reset()
	n.pos = uint64(len(win))
	for i, ev := range win {
		n.ring[(n.pos-uint64(i))%uint64(n.window)] = ev.key
	}
	if len(win) > 0 {
		n.last = win[0].seq
	}
	for k, c := range chains {
		n.latest[k] = mem{pos: n.pos - uint64(c.first) + 1, at: -c.firstAt, rank: c.count - 1}
	}
}

func (n *numbering) reset() {
	clear(n.ring)
	clear(n.latest)
	n.pos, n.at, n.last, n.batch, n.next = 0, 0, 0, n.batch[:0], n.next[:0]
}
