package influxdb

import (
	"fmt"
	"iter"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/sink"
)

const testWindow = 8

// numberingLog is a log exercising the numbering with a window of 8: a
// dense group of 40 events with one timestamp (longer than the window), a
// sparse group whose members are 6 events apart and one whose members are
// exactly 8 apart (their chains hold), one whose members are 18 apart (each
// starts again at 0), events whose series
// cannot be written, and unique points between them.
func numberingLog() []event.Event {
	var evs []event.Event
	add := func(story string, ts int64, tags map[string]string) {
		seq := event.MakeSeq(uint64(1+len(evs)/7), 1+len(evs)%7) // blocks of 7
		evs = append(evs, event.Event{Seq: seq, Story: story, Time: ts, Tags: tags,
			Fields: map[string]event.Value{"n": event.Int(int64(len(evs)))}})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 400; i++ {
		switch {
		case i >= 100 && i < 140:
			add("dense", 7, map[string]string{"host": "a"})
		case i > 200 && i%testWindow == 3:
			add("edge", 7, nil) // exactly a window apart: one chain
		case i%6 == 0:
			add("sparse", 7, nil)
		case i%9 == 0:
			add("apart", 7, nil)
		case i%31 == 0:
			add("#comment", 7, nil) // unencodable: dead-lettered, still counted
		case i%5 == 0:
			add("mixed", int64(rng.IntN(3)), map[string]string{"host": fmt.Sprint(rng.IntN(2))})
		default:
			add("unique", int64(i), nil)
		}
	}
	return evs
}

// lines delivers evs in batches of the sizes of sizes (cycled), refusing
// each batch once and then sending it again as two halves, as the runner
// does after a partial write; it returns each event's line ("" when it
// cannot be written) from the first time it was encoded.
func lines(t *testing.T, s *Sink, evs []event.Event, sizes []int) map[uint64]string {
	return linesAt(t, s, evs, nil, sizes)
}

// linesAt is lines with the events' positions in the chronicle (nil: the
// sink selects every event).
func linesAt(t *testing.T, s *Sink, evs []event.Event, at []uint64, sizes []int) map[uint64]string {
	t.Helper()
	out := map[uint64]string{}
	encode := func(b []event.Event) []string {
		batch := sinkBatch(b)
		if at != nil && len(b) > 0 {
			i := slices.IndexFunc(evs, func(e event.Event) bool { return e.Seq == b[0].Seq })
			batch.Positions = at[i : i+len(b)]
		}
		body, _ := s.encode(batch)
		ls := strings.SplitAfter(string(body), "\n")
		var got []string
		for _, e := range b {
			l := ""
			if !strings.HasPrefix(e.Story, "#") {
				l, ls = ls[0], ls[1:]
			}
			got = append(got, l)
		}
		return got
	}
	for i, k := 0, 0; i < len(evs); k++ {
		b := evs[i:min(i+sizes[k%len(sizes)], len(evs))]
		i += len(b)
		first := encode(b)
		for j, l := range first {
			out[b[j].Seq] = l
		}
		mid := len(b) / 2
		again := append(encode(b[:mid]), encode(b[mid:])...)
		if fmt.Sprint(again) != fmt.Sprint(first) {
			t.Fatalf("batch at %d sent again in halves:\n%q\nfirst:\n%q", b[0].Seq, again, first)
		}
	}
	return out
}

func testSink(t testing.TB, window int) *Sink {
	return testSinkSpan(t, window, 0)
}

func testSinkSpan(t testing.TB, window, span int) *Sink {
	s, err := NewSink(Config{URL: "http://127.0.0.1:1/write?db=x", SequenceWindow: window, SequenceSpan: span}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// back yields evs newest first, all selected, as the runner does, and
// counts how many the sink read.
func back(evs []event.Event, read *int) iter.Seq2[*event.Event, bool] {
	return backSel(evs, func(*event.Event) bool { return true }, read)
}

// backSel is back with a selection.
func backSel(evs []event.Event, sel func(*event.Event) bool, read *int) iter.Seq2[*event.Event, bool] {
	return func(yield func(*event.Event, bool) bool) {
		for i := len(evs) - 1; i >= 0; i-- {
			*read++
			if !yield(&evs[i], sel(&evs[i])) {
				return
			}
		}
	}
}

// The rule as docs/sinks.md states it, computed the slow way: an event's
// rank is its predecessor's + 1 when the latest earlier event of its series
// and timestamp is at most the window events before it, else 0.
func wantRanks(evs []event.Event, window int) map[uint64]int {
	return wantRanksSpan(evs, func(*event.Event) bool { return true }, window, len(evs))
}

// wantRanksSpan is wantRanks over a chronicle of which the sink selects
// some events: the predecessor is also at most span events of the
// chronicle before.
func wantRanksSpan(all []event.Event, sel func(*event.Event) bool, window, span int) map[uint64]int {
	ranks := map[uint64]int{}
	key := func(e event.Event) string { return fmt.Sprint(e.Story, e.Tags, e.Time) }
	for i := range all {
		if !sel(&all[i]) {
			continue
		}
		between := 0 // selected events from j to i, i included
		for j := i - 1; j >= 0; j-- {
			if !sel(&all[j]) {
				continue
			}
			between++
			if key(all[j]) == key(all[i]) {
				if between <= window && i-j <= span {
					ranks[all[i].Seq] = ranks[all[j].Seq] + 1
				}
				break
			}
		}
	}
	return ranks
}

func rankOf(line string) int {
	var n int
	if i := strings.Index(line, ",_seq="); i >= 0 {
		fmt.Sscanf(line[i+len(",_seq="):], "%d", &n)
	}
	return n
}

// A sink restarted anywhere in the log (primed with the events before the
// cursor) writes every later event exactly as the sink that never stopped,
// in the middle of the group longer than the window too; and both follow
// the documented rule, whatever the batch sizes.
func TestRestartAnywhereNumbersAlike(t *testing.T) {
	evs := numberingLog()
	live := lines(t, testSink(t, testWindow), evs, []int{5, 1, 7, 3})
	want := wantRanks(evs, testWindow)
	for _, e := range evs {
		if l := live[e.Seq]; l != "" && rankOf(l) != want[e.Seq] {
			t.Fatalf("event %d (%s): %q, want rank %d", e.Seq, e.Story, l, want[e.Seq])
		}
	}
	if rankOf(live[evs[139].Seq]) != 39 {
		t.Fatalf("the last of the dense group: %q, want _seq=39", live[evs[139].Seq])
	}
	for cut := 0; cut <= len(evs); cut++ {
		s := testSink(t, testWindow)
		read := 0
		s.Prime("c", back(evs[:cut], &read))
		got := lines(t, s, evs[cut:], []int{4, 2})
		for _, e := range evs[cut:] {
			if got[e.Seq] != live[e.Seq] {
				t.Fatalf("restart after %d events: event %d is\n%q, was\n%q", cut, e.Seq, got[e.Seq], live[e.Seq])
			}
		}
	}
}

const testSpan = 20

// sparseLog is numberingLog among events of a story the sink does not
// select ("other"): 0 to 4 of them after each selected event, and 25
// (more than testSpan) after every 37th, so that chains break on the span
// as well as on the window. It returns the chronicle and the selection.
func sparseLog() ([]event.Event, func(*event.Event) bool) {
	var all []event.Event
	for i, e := range numberingLog() {
		all = append(all, e)
		n := (i * 7) % 5
		if i%37 == 36 {
			n = 25
		}
		for range n {
			all = append(all, event.Event{Story: "other", Time: 7, Fields: map[string]event.Value{"n": event.Int(1)}})
		}
	}
	for i := range all {
		all[i].Seq = uint64(i + 1)
	}
	return all, func(e *event.Event) bool { return e.Story != "other" }
}

// selected returns the selected events of all[cut:] and their positions
// from 1 after the cut, as the runner hands them in batches.
func selected(all []event.Event, sel func(*event.Event) bool, cut int) ([]event.Event, []uint64) {
	var evs []event.Event
	var at []uint64
	for i := cut; i < len(all); i++ {
		if sel(&all[i]) {
			evs, at = append(evs, all[i]), append(at, uint64(i-cut+1))
		}
	}
	return evs, at
}

// A sink selecting some events of the chronicle, restarted anywhere,
// numbers every later event as the sink that never stopped, by the rule
// with the span: chains break where a predecessor is more than the span
// events of the chronicle back, though within the window of selected ones.
func TestRestartAnywhereNumbersAlikeWithSpan(t *testing.T) {
	all, sel := sparseLog()
	evs, at := selected(all, sel, 0)
	live := linesAt(t, testSinkSpan(t, testWindow, testSpan), evs, at, []int{5, 1, 7, 3})
	want := wantRanksSpan(all, sel, testWindow, testSpan)
	byWindowOnly := wantRanks(evs, testWindow)
	differ := 0
	for _, e := range evs {
		if l := live[e.Seq]; l != "" && rankOf(l) != want[e.Seq] {
			t.Fatalf("event %d (%s): %q, want rank %d", e.Seq, e.Story, l, want[e.Seq])
		}
		if want[e.Seq] != byWindowOnly[e.Seq] {
			differ++
		}
	}
	if differ == 0 {
		t.Fatal("the span changes no rank of this log: it tests nothing")
	}
	starts := chainStarts(all, sel, testWindow, testSpan)
	for cut := 0; cut <= len(all); cut++ {
		s := testSinkSpan(t, testWindow, testSpan)
		read := 0
		s.Prime("c", backSel(all[:cut], sel, &read))
		if max := 2*testSpan + spread(starts, cut, testSpan); read > max {
			t.Errorf("restart after %d events read %d back, more than 2×span + the groups' spread = %d", cut, read, max)
		}
		evs, at := selected(all, sel, cut)
		got := linesAt(t, s, evs, at, []int{4, 2})
		for _, e := range evs {
			if got[e.Seq] != live[e.Seq] {
				t.Fatalf("restart after %d events: event %d is\n%q, was\n%q", cut, e.Seq, got[e.Seq], live[e.Seq])
			}
		}
	}
}

// chainStarts gives each selected event of all the index where its
// group's count started (the event with rank 0 of its chain).
func chainStarts(all []event.Event, sel func(*event.Event) bool, window, span int) map[int]int {
	ranks := wantRanksSpan(all, sel, window, span)
	start, group := map[int]int{}, map[string]int{}
	for i := range all {
		if e := &all[i]; sel(e) {
			k := fmt.Sprint(e.Story, e.Tags, e.Time)
			if ranks[e.Seq] == 0 {
				group[k] = i
			}
			start[i] = group[k]
		}
	}
	return start
}

// spread is how far, in events of the chronicle, a group counting in the
// 2×span events before the cut reaches back to the start of its count:
// how much further than 2×span Prime may read.
func spread(starts map[int]int, cut, span int) int {
	most := 0
	for i := max(0, cut-2*span); i < cut; i++ {
		if s, ok := starts[i]; ok {
			most = max(most, i-s)
		}
	}
	return most
}

// A sink selecting one event in 500 of a chronicle of a million: Prime
// reads at most twice the span back (it would read 2×window selected
// events, 100,000 of the chronicle, without it), and the numbers after a
// restart are the live ones. The chronicle is made as it is read, so
// that the test holds no million events.
func TestPrimeOfASparseSelectionReadsTheSpan(t *testing.T) {
	const (
		n, every     = 1_000_000, 500
		window, span = 100, 10_000
	)
	at := func(i int, e *event.Event) bool { // the chronicle's i-th event (from 0)
		*e = event.Event{Seq: uint64(i + 1), Story: "other", Time: int64(i)}
		if i%every != 0 {
			return false
		}
		// Selected: groups of a few events of one timestamp, some
		// spread over more than the span.
		k := i / every
		*e = event.Event{Seq: uint64(i + 1), Story: "sel", Time: int64(k / 3), Tags: map[string]string{"h": fmt.Sprint(k % 2)},
			Fields: map[string]event.Value{"v": event.Int(int64(k))}}
		return true
	}
	var evs []event.Event
	var pos []uint64
	for i := range n {
		var e event.Event
		if at(i, &e) {
			evs, pos = append(evs, e), append(pos, uint64(i+1))
		}
	}
	live := linesAt(t, testSinkSpan(t, window, span), evs, pos, []int{50})
	if !strings.Contains(fmt.Sprint(live), "_seq=1 ") {
		t.Fatal("no event of the log is numbered: it tests nothing")
	}
	for _, cut := range []int{1, span, 3*span + 1, n/2 + 7, n - 1, n} {
		s := testSinkSpan(t, window, span)
		read := 0
		s.Prime("c", func(yield func(*event.Event, bool) bool) {
			var e event.Event
			for i := cut - 1; i >= 0; i-- {
				read++
				if !yield(&e, at(i, &e)) {
					return
				}
			}
		})
		// Groups reach two selected events back: up to 2×every further.
		if read > 2*span+2*every {
			t.Errorf("restart after %d events read %d back, more than 2×span + 2×every (%d)", cut, read, 2*span+2*every)
		}
		var after []event.Event
		var afterPos []uint64
		for i, e := range evs {
			if pos[i] > uint64(cut) {
				after, afterPos = append(after, e), append(afterPos, pos[i]-uint64(cut))
			}
		}
		got := linesAt(t, s, after, afterPos, []int{30})
		for _, e := range after {
			if got[e.Seq] != live[e.Seq] {
				t.Fatalf("restart after %d events: event %d is\n%q, was\n%q", cut, e.Seq, got[e.Seq], live[e.Seq])
			}
		}
	}
}

// Prime reads two windows back when no group is longer, and back to the
// start of a group that is.
func TestPrimeReadsAsFarAsTheGroups(t *testing.T) {
	var evs []event.Event
	for i := range 200 {
		ts := int64(i / 2) // pairs
		if i >= 100 && i < 150 {
			ts = -1 // a group of 50
		}
		evs = append(evs, event.Event{Seq: uint64(i + 1), Story: "m", Time: ts, Fields: map[string]event.Value{"v": event.Int(1)}})
	}
	for _, c := range []struct{ cut, min, max int }{
		{cut: 90, min: 2 * testWindow, max: 2*testWindow + 1},
		{cut: 145, min: 45, max: 45 + testWindow + 1},
		{cut: 200, min: 2 * testWindow, max: 2*testWindow + 1},
	} {
		read := 0
		testSink(t, testWindow).Prime("c", back(evs[:c.cut], &read))
		if read < c.min || read > c.max {
			t.Errorf("restart after %d events read %d back, want %d to %d", c.cut, read, c.min, c.max)
		}
	}
}

// Prime replaces the state: a sink primed at an earlier cursor (a cursor
// moved back) numbers the events after it as the first time.
func TestPrimeReplacesState(t *testing.T) {
	evs := numberingLog()
	s := testSink(t, testWindow)
	live := lines(t, s, evs, []int{6})
	for _, cut := range []int{0, 120, 300} {
		read := 0
		s.Prime("c", back(evs[:cut], &read))
		got := lines(t, s, evs[cut:], []int{3})
		for _, e := range evs[cut:] {
			if got[e.Seq] != live[e.Seq] {
				t.Fatalf("cursor moved back to %d: event %d is %q, was %q", cut, e.Seq, got[e.Seq], live[e.Seq])
			}
		}
	}
}

// An event sent again outside the last batch (which the runner never does)
// is refused rather than given a rank that could overwrite another point.
func TestRedeliveryOutsideTheLastBatchIsRefused(t *testing.T) {
	evs := numberingLog()[:20]
	s := testSink(t, testWindow)
	lines(t, s, evs, []int{10})
	if _, err := s.encode(sinkBatch(evs[:1])); err == nil || !strings.Contains(err.Error(), "unknown") {
		t.Fatalf("event of an older batch: err = %v", err)
	}
}

// The numbering holds at most a window of keys however long the traffic
// (here 50 windows of points that share nothing, and of groups).
func TestNumberingMemoryIsBounded(t *testing.T) {
	const window = 1000
	s := testSink(t, window)
	evs := make([]event.Event, 500)
	for i := 0; i < 100; i++ {
		for j := range evs {
			n := i*len(evs) + j
			evs[j] = event.Event{Seq: uint64(n + 1), Story: "m", Time: int64(n / (1 + i%3)),
				Fields: map[string]event.Value{"v": event.Int(1)}}
		}
		if _, err := s.encode(sinkBatch(evs)); err != nil {
			t.Fatal(err)
		}
		if n := len(s.num.latest); n > window {
			t.Fatalf("after %d events the numbering holds %d keys, more than the window (%d)", (i+1)*len(evs), n, window)
		}
	}
	if len(s.num.ring) != window || cap(s.num.batch) > 2*len(evs) {
		t.Errorf("ring %d, batch capacity %d", len(s.num.ring), cap(s.num.batch))
	}
}

// BenchmarkNumberingMemory reports the heap the numbering of the default
// window holds (bytes, after a GC) once it has seen 1, 10 and 100 windows
// of distinct points (the worst case: every point a key of its own), in
// batches of 5,000: it is full after one window and stays so.
func BenchmarkNumberingMemory(b *testing.B) {
	for range b.N {
		var ms runtime.MemStats
		heap := func() uint64 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			return ms.HeapAlloc
		}
		evs := make([]event.Event, 5000)
		for j := range evs {
			evs[j] = event.Event{Story: "cpu", Tags: map[string]string{"hostname": "host_1", "region": "eu-west-1"},
				Fields: map[string]event.Value{"usage": event.Float(1)}}
		}
		base := heap()
		s := testSink(b, 0)
		seq := uint64(0)
		for _, windows := range []int{1, 10, 100} {
			for seq < uint64(windows*DefaultSequenceWindow) {
				for j := range evs {
					seq++
					evs[j].Seq, evs[j].Time = seq, int64(seq)
				}
				if _, err := s.encode(sink.Batch{Chronicle: "c", Events: evs}); err != nil {
					b.Fatal(err)
				}
			}
			runtime.KeepAlive(evs)
			b.ReportMetric(float64(heap()-base), fmt.Sprintf("B-after-%d-windows", windows))
		}
		runtime.KeepAlive(s)
	}
}
