package canary

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func newTestTracker(t *testing.T) *tracker {
	t.Helper()
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return newTracker("x", time.Second, m)
}

func TestTrackerBooks(t *testing.T) {
	tr := newTestTracker(t)
	t0 := time.Unix(1000, 0)
	for range 5 {
		tr.newEvent(t0)
	}
	tr.retried([]uint64{2})          // 2 was resent after an unknown outcome
	tr.ack([]uint64{1, 2, 3, 4}, t0) // 5 is never acknowledged
	tr.seenTail(1, t0, t0.Add(time.Second))
	tr.seenTail(3, t0, t0.Add(time.Second))
	tr.seenTail(2, t0, t0.Add(time.Second)) // after 3: out of order
	tr.seenTail(2, t0, t0.Add(time.Second)) // delivered again: not a log copy
	for _, s := range []uint64{1, 2, 2, 3, 3, 5} {
		tr.seenRead(s)
	}
	// A sweep that started within the grace period of the acks declares
	// nothing; one after it declares 4 missing.
	tr.check(t0.Add(500*time.Millisecond), false)
	if c := tr.counts(false); c.Missing != 0 {
		t.Fatalf("missing %d within the grace period", c.Missing)
	}
	tr.check(t0.Add(2*time.Second), false)
	c := tr.counts(false)
	want := Counts{Sent: 5, Acked: 4, Resent: 1, TailSeen: 3, ReadSeen: 4, Missing: 1, DupAllowed: 1, DupUnwanted: 1, OutOfOrder: 1}
	if c != want {
		t.Fatalf("counts\n got %+v\nwant %+v", c, want)
	}
	// 4 found late: no longer missing.
	tr.seenRead(4)
	if c := tr.counts(false); c.Missing != 0 || c.ReadSeen != 5 {
		t.Fatalf("after a late read: %+v", c)
	}
	// Final: 4 and 5 were read but never tailed.
	if c := tr.counts(true); c.TailMissed != 2 {
		t.Fatalf("tail missed %d, want 2", c.TailMissed)
	}
}

// TestTrackerPrunes keeps memory bounded on long runs: settled events are
// dropped, and a copy of a dropped event still counts as a duplicate.
func TestTrackerPrunes(t *testing.T) {
	tr := newTestTracker(t)
	t0 := time.Unix(1000, 0)
	var seqs []uint64
	for range 1000 {
		seqs = append(seqs, tr.newEvent(t0))
	}
	tr.ack(seqs, t0)
	for _, s := range seqs {
		tr.seenTail(s, t0, t0)
		tr.seenRead(s)
	}
	tr.newEvent(t0.Add(keepSeen)) // unsettled: stays
	tr.check(t0.Add(keepSeen+time.Second), false)
	if len(tr.entries) != 1 || tr.base != 1001 {
		t.Fatalf("after pruning: %d entries from %d", len(tr.entries), tr.base)
	}
	tr.seenRead(7)
	if c := tr.counts(false); c.DupUnwanted != 1 || c.Sent != 1001 || c.ReadSeen != 1000 {
		t.Fatalf("counts after pruning %+v", c)
	}
}

func TestParseEvent(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     marker
		ok       bool
	}{
		{"json body fields", `{"seq":9,"tags":{},"fields":{"canary":"r1","proto":"ndjson","seq":3,"sent":1700000000123456789},"body":{}}`,
			marker{"r1", 3, time.Unix(0, 1700000000123456789)}, true},
		{"line protocol tag", `{"tags":{"canary":"r2"},"fields":{"seq":4,"sent":5},"body":"m,canary=r2 seq=4i"}`,
			marker{"r2", 4, time.Unix(0, 5)}, true},
		{"otlp attributes", `{"tags":{"service.name":"canary.otlp"},"fields":{"body":"canary"},"body":{"attributes":{"canary":"r3","seq":5,"sent":6}}}`,
			marker{"r3", 5, time.Unix(0, 6)}, true},
		{"someone else's event", `{"tags":{},"fields":{"msg":"hi"},"body":{"msg":"hi"}}`, marker{}, false},
		{"seq not an integer", `{"fields":{"canary":"r","seq":1.5}}`, marker{}, false},
		{"seq zero", `{"fields":{"canary":"r","seq":0}}`, marker{}, false},
		{"not json", `{"fields":`, marker{}, false},
	} {
		got, err := parseEvent([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v ok=%v", tc.name, got, err, tc.want, tc.ok)
		}
	}
}

func FuzzParseEvent(f *testing.F) {
	for _, s := range []string{
		`{"fields":{"canary":"r1","seq":3,"sent":17}}`,
		`{"tags":{"canary":"r2"},"fields":{"seq":4}}`,
		`{"body":{"attributes":{"canary":"r3","seq":5,"sent":6}}}`,
		`{"body":"x"}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseEvent(b)
		if err == nil && (m.run == "" || m.seq == 0) {
			t.Fatalf("accepted %q as %+v", b, m)
		}
	})
}

func TestSSEReader(t *testing.T) {
	in := ": comment\n\nid: 7\nevent: heartbeat\ndata: {\"cursor\":7}\n\nid: 9\r\nevent: event\r\ndata: a\r\ndata: b\r\n\r\nevent: gap\ndata: x"
	r := newSSEReader(strings.NewReader(in))
	m, err := r.next()
	if err != nil || m.id != "7" || m.event != "heartbeat" || string(m.data) != `{"cursor":7}` {
		t.Fatalf("first: %+v %v", m, err)
	}
	m, err = r.next()
	if err != nil || m.id != "9" || m.event != "event" || string(m.data) != "a\nb" {
		t.Fatalf("second: %+v %q %v", m, m.data, err)
	}
	if _, err := r.next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("a message cut off: %v, want io.ErrUnexpectedEOF", err)
	}
	long := "data: " + strings.Repeat("x", maxSSELine) + "\n\n"
	if _, err := newSSEReader(strings.NewReader(long)).next(); err != errSSELine {
		t.Fatalf("a line over the bound: %v", err)
	}
}

func FuzzSSEReader(f *testing.F) {
	f.Add([]byte("id: 1\nevent: event\ndata: {}\n\n"))
	f.Add([]byte("data: a\r\ndata: b\r\n\r\n:c\n\n"))
	f.Add([]byte("event"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := newSSEReader(strings.NewReader(string(b)))
		for range len(b) + 1 {
			m, err := r.next()
			if err != nil {
				return
			}
			if len(m.data) > len(b) {
				t.Fatalf("data %d bytes from %d bytes of input", len(m.data), len(b))
			}
		}
		t.Fatalf("more messages than bytes in %q", b)
	})
}
