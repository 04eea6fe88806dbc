package canary

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Counts is what a tracker has counted for one protocol.
type Counts struct {
	Sent        uint64 `json:"sent"`         // events written (first attempt)
	Acked       uint64 `json:"acked"`        // acknowledged by the server
	Resent      uint64 `json:"resent"`       // written again after a failure with an unknown outcome
	TailSeen    uint64 `json:"tail_seen"`    // distinct events the live tail delivered
	ReadSeen    uint64 `json:"read_seen"`    // distinct events the read sweep found
	Missing     uint64 `json:"missing"`      // acknowledged, not found by the sweep after the grace period
	DupAllowed  uint64 `json:"dup_allowed"`  // extra copies of events the canary resent
	DupUnwanted uint64 `json:"dup_unwanted"` // extra copies of events written once (a server bug)
	OutOfOrder  uint64 `json:"out_of_order"` // tail deliveries after a later event of the story
	TailMissed  uint64 `json:"tail_missed"`  // found by the sweep, never delivered by the tail
	Abandoned   uint64 `json:"abandoned"`    // refused for good, or unacknowledged at exit
}

// entry is the state of one canary event.
type entry struct {
	sent     time.Time
	acked    time.Time // zero until acknowledged
	attempts uint16    // writes that may have reached the server
	reads    uint16    // copies the read sweep found
	tail     bool
	missing  bool // counted in Counts.Missing
	gone     bool // abandoned: never acknowledged
}

// keepSeen is how long a fully accounted-for event is kept, so that a late
// duplicate is still told apart from an allowed one; older ones are pruned,
// which bounds the canary's memory for long runs.
const keepSeen = 2 * time.Minute

// tracker follows the events of one protocol by their canary sequence
// number, 1, 2, 3...; entries[i] is the event base+i.
type tracker struct {
	proto string
	grace time.Duration

	mu      sync.Mutex
	base    uint64
	entries []entry
	next    uint64
	tailMax uint64 // highest seq the tail delivered
	c       Counts

	sent, acked, resent, tailSeen, readSeen prometheus.Counter
	dupAllowed, dupUnwanted, outOfOrder     prometheus.Counter
	tailMissed, abandoned                   prometheus.Counter
	missing                                 prometheus.Gauge
	latency                                 prometheus.Observer
}

func newTracker(proto string, grace time.Duration, m *metrics) *tracker {
	return &tracker{
		proto: proto, grace: grace, base: 1, next: 1,
		sent:        m.sent.WithLabelValues(proto),
		acked:       m.acked.WithLabelValues(proto),
		resent:      m.resent.WithLabelValues(proto),
		tailSeen:    m.received.WithLabelValues(proto, "tail"),
		readSeen:    m.received.WithLabelValues(proto, "read"),
		dupAllowed:  m.duplicates.WithLabelValues(proto, "true"),
		dupUnwanted: m.duplicates.WithLabelValues(proto, "false"),
		outOfOrder:  m.outOfOrder.WithLabelValues(proto),
		tailMissed:  m.tailMissed.WithLabelValues(proto),
		abandoned:   m.abandoned.WithLabelValues(proto),
		missing:     m.missing.WithLabelValues(proto),
		latency:     m.latency.WithLabelValues(proto),
	}
}

// at returns the entry of seq, or nil when it was pruned or never sent.
func (t *tracker) at(seq uint64) *entry {
	if seq < t.base || seq >= t.next {
		return nil
	}
	return &t.entries[seq-t.base]
}

// newEvent numbers the next event, written now.
func (t *tracker) newEvent(now time.Time) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	seq := t.next
	t.next++
	t.entries = append(t.entries, entry{sent: now, attempts: 1})
	t.c.Sent++
	t.sent.Inc()
	return seq
}

// retried records that the events were written again after an attempt that
// may have reached the server: a copy of them in the log is then allowed.
func (t *tracker) retried(seqs []uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range seqs {
		if e := t.at(s); e != nil {
			e.attempts++
			t.c.Resent++
			t.resent.Inc()
		}
	}
}

func (t *tracker) ack(seqs []uint64, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range seqs {
		if e := t.at(s); e != nil && e.acked.IsZero() && !e.gone {
			e.acked = now
			t.c.Acked++
			t.acked.Inc()
		}
	}
}

// abandon gives up on events never acknowledged (refused for good, or still
// unacknowledged at exit); they cannot be missing, whatever the log holds.
func (t *tracker) abandon(seqs []uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range seqs {
		if e := t.at(s); e != nil && e.acked.IsZero() && !e.gone {
			e.gone = true
			t.c.Abandoned++
			t.abandoned.Inc()
		}
	}
}

// seenTail records a delivery by the live tail of the event seq written at sent.
func (t *tracker) seenTail(seq uint64, sent, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.at(seq)
	if e == nil || e.tail {
		// Pruned, from the future, or delivered again: copies in the log are
		// counted by the sweep, which reads each log position once.
		return
	}
	e.tail = true
	t.c.TailSeen++
	t.tailSeen.Inc()
	if seq < t.tailMax {
		t.c.OutOfOrder++
		t.outOfOrder.Inc()
	} else {
		t.tailMax = seq
	}
	if !sent.IsZero() {
		t.latency.Observe(now.Sub(sent).Seconds())
	}
}

// seenRead records that the read sweep found a copy of seq. The sweep reads
// every log position once, so a second copy is a duplicate in the log.
func (t *tracker) seenRead(seq uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.at(seq)
	if e == nil {
		if seq > 0 && seq < t.base {
			// Its entry was pruned after it had been found: another copy.
			t.c.DupUnwanted++
			t.dupUnwanted.Inc()
		}
		return
	}
	e.reads++
	if e.reads == 1 {
		t.c.ReadSeen++
		t.readSeen.Inc()
		if e.missing {
			e.missing = false
			t.c.Missing--
			t.missing.Dec()
		}
		return
	}
	if e.attempts > 1 {
		t.c.DupAllowed++
		t.dupAllowed.Inc()
	} else {
		t.c.DupUnwanted++
		t.dupUnwanted.Inc()
	}
}

// check runs after a sweep that started at sweepStart and read to the end of
// the story: an event acknowledged a grace period before that and not found
// is missing. final declares every acknowledged event not found missing.
// It then prunes what is fully accounted for.
func (t *tracker) check(sweepStart time.Time, final bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.entries {
		e := &t.entries[i]
		if e.acked.IsZero() || e.reads > 0 || e.missing {
			continue
		}
		if final || !e.acked.Add(t.grace).After(sweepStart) {
			e.missing = true
			t.c.Missing++
			t.missing.Inc()
		}
	}
	n := 0
	for n < len(t.entries) {
		e := &t.entries[n]
		settled := (e.reads > 0 || e.gone) && sweepStart.Sub(e.sent) > keepSeen
		if !settled {
			break
		}
		if e.reads > 0 && !e.tail {
			t.c.TailMissed++
			t.tailMissed.Inc()
		}
		n++
	}
	if n > 0 {
		t.entries = append(t.entries[:0], t.entries[n:]...)
		t.base += uint64(n)
	}
}

// unsettled counts acknowledged events the sweep has not found yet.
func (t *tracker) unsettled() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for i := range t.entries {
		if e := &t.entries[i]; !e.acked.IsZero() && e.reads == 0 {
			n++
		}
	}
	return n
}

// counts returns the counts so far; final adds to TailMissed the events
// found by the sweep that the tail has not delivered.
func (t *tracker) counts(final bool) Counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.c
	if final {
		for i := range t.entries {
			if e := &t.entries[i]; e.reads > 0 && !e.tail {
				c.TailMissed++
			}
		}
	}
	return c
}
