package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/natsd"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
)

// recorder is a destination in memory: it keeps what it accepted and
// refuses as told. (The runner's contract with a sink is this interface;
// real destinations are tested in the sinks' own packages.)
type recorder struct {
	mu       sync.Mutex
	batches  [][]event.Event
	attempts int
	// refuse returns the error for a batch (nil accepts it).
	refuse func(attempt int, evs []event.Event) error
}

func (r *recorder) Deliver(ctx context.Context, b Batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	if r.refuse != nil {
		if err := r.refuse(r.attempts, b.Events); err != nil {
			return err
		}
	}
	r.batches = append(r.batches, append([]event.Event(nil), b.Events...))
	return nil
}

func (r *recorder) Close() error { return nil }

func (r *recorder) delivered() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event.Event
	for _, b := range r.batches {
		out = append(out, b...)
	}
	return out
}

type env struct {
	store *store.Store
	state *State
	js    jetstream.JetStream
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ns, err := natsd.Start(natsd.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	st, err := store.Open(context.Background(), store.Options{Conn: nc, AutoCreate: true, Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	js, _ := jetstream.New(nc)
	state, err := OpenState(context.Background(), js, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	return &env{store: st, state: state, js: js}
}

func (e *env) append(t *testing.T, chronicle, story string, evs ...event.Event) store.Appended {
	t.Helper()
	a, err := e.store.Append(chronicle, story, evs).Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// run starts a runner for cfg delivering to rec until the test ends.
func (e *env) run(t *testing.T, cfg Config, rec *recorder) *Runner {
	t.Helper()
	r, err := NewRunner(cfg, rec, LocalSource{Store: e.store}, e.state, nil, "test/"+cfg.Name, testutil.Logger(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	r.retryBase = time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func metric(n int) event.Event {
	return event.Event{Time: int64(1000 + n), Kind: event.KindMetric, Fields: map[string]event.Value{"n": event.Int(int64(n))}}
}

func seqs(evs []event.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i := range evs {
		out[i] = evs[i].Seq
	}
	return out
}

func TestBackoff(t *testing.T) {
	r := &Runner{cfg: Config{RetryMax: Duration(time.Second)}, retryBase: 100 * time.Millisecond}
	for n, want := range []time.Duration{100, 200, 400, 800, 1000, 1000, 1000} {
		want *= time.Millisecond
		if n >= 4 {
			want = time.Second
		}
		for i := 0; i < 50; i++ {
			if d := r.backoff(n, 0); d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, d, want/2, want)
			}
		}
	}
	if d := r.backoff(0, 5*time.Second); d != 5*time.Second {
		t.Errorf("Retry-After 5s: backoff %v", d)
	}
}

// A permanent refusal splits the batch until the refused events are
// alone; they are dead-lettered with the reason, everything else is
// delivered in order, and the cursor passes them all.
func TestSplitDeadLettersOnlyRefusedEvents(t *testing.T) {
	e := newEnv(t)
	var evs []event.Event
	for i := 0; i < 20; i++ {
		evs = append(evs, metric(i))
	}
	bad := map[int64]bool{1003: true, 1011: true, 1012: true}
	rec := &recorder{refuse: func(_ int, b []event.Event) error {
		for _, ev := range b {
			if bad[ev.Time] {
				return Permanent(fmt.Errorf("400: event at %d is bad", ev.Time))
			}
		}
		return nil
	}}
	a := e.append(t, "c", "s", evs...)
	r := e.run(t, Config{Name: "x", Type: "t", Chronicle: "c", BatchAge: Duration(time.Millisecond)}, rec)
	testutil.Eventually(t, 10*time.Second, func() bool { return r.Status().Cursor == a.Last }, "cursor past the batch")
	got := rec.delivered()
	if len(got) != 17 {
		t.Fatalf("delivered %d events, want 17", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq || bad[got[i].Time] {
			t.Fatalf("delivered out of order or a refused event: %v", seqs(got))
		}
	}
	var letters []DeadLetter
	if _, err := e.store.Read(context.Background(), store.Query{Chronicle: "c", Story: DeadLetterPrefix + "x"}, func(ev *event.Event) error {
		var dl struct {
			DeadLetter
			Fields json.RawMessage `json:"event_fields"`
		}
		if err := json.Unmarshal(ev.Body, &dl); err != nil {
			return err
		}
		letters = append(letters, dl.DeadLetter)
		return nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	if len(letters) != 3 {
		t.Fatalf("dead letters: %+v", letters)
	}
	for _, dl := range letters {
		if !bad[dl.Time] || !strings.Contains(dl.Error, "is bad") || dl.Sink != "x" || dl.Story != "s" {
			t.Errorf("dead letter %+v", dl)
		}
	}
	if st := r.Status(); st.DeadLettered != 3 || st.Delivered != 17 {
		t.Errorf("status %+v", st)
	}
}

// Transient errors are retried (the same events, in order) until accepted.
func TestTransientErrorsAreRetried(t *testing.T) {
	e := newEnv(t)
	rec := &recorder{refuse: func(attempt int, _ []event.Event) error {
		if attempt <= 3 {
			return &RetryLaterError{Err: errors.New("503")}
		}
		return nil
	}}
	a := e.append(t, "c", "s", metric(1), metric(2), metric(3))
	r := e.run(t, Config{Name: "x", Type: "t", Chronicle: "c"}, rec)
	testutil.Eventually(t, 10*time.Second, func() bool { return r.Status().Cursor == a.Last }, "delivered after retries")
	if got := seqs(rec.delivered()); len(got) != 3 || got[0] != a.First {
		t.Errorf("delivered %v", got)
	}
	if st := r.Status(); st.Retries != 3 || st.LastError == "" {
		t.Errorf("status %+v", st)
	}
}

// Batches hold at most BatchEvents events; the rest go when BatchAge passes.
func TestBatchingByCountAndAge(t *testing.T) {
	e := newEnv(t)
	var evs []event.Event
	for i := 0; i < 25; i++ {
		evs = append(evs, metric(i))
	}
	rec := &recorder{}
	a := e.append(t, "c", "s", evs...)
	r := e.run(t, Config{Name: "x", Type: "t", Chronicle: "c", BatchEvents: 10, BatchAge: Duration(50 * time.Millisecond)}, rec)
	testutil.Eventually(t, 10*time.Second, func() bool { return r.Status().Cursor == a.Last }, "all delivered")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	total := 0
	for _, b := range rec.batches {
		if len(b) > 10 {
			t.Errorf("a batch of %d events", len(b))
		}
		total += len(b)
	}
	if total != 25 || len(rec.batches) < 3 {
		t.Errorf("%d events in %d batches", total, len(rec.batches))
	}
}

// Unselected events are not delivered but move the cursor.
func TestSelection(t *testing.T) {
	e := newEnv(t)
	tagged := func(n int, k event.Kind, tags map[string]string) event.Event {
		ev := metric(n)
		ev.Kind, ev.Tags = k, tags
		return ev
	}
	e.append(t, "c", "cpu_usage", tagged(1, event.KindMetric, map[string]string{"dc": "eu"}), tagged(2, event.KindLog, map[string]string{"dc": "eu"}))
	e.append(t, "c", "cpu_other", tagged(3, event.KindMetric, map[string]string{"dc": "us"}))
	e.append(t, "c", "disk", tagged(4, event.KindMetric, map[string]string{"dc": "eu"}))
	// A JSON body's tags count too (bodies are expanded before selection).
	a := e.append(t, "c", "cpu_json", event.Event{Time: 1005, Kind: event.KindMetric, Format: event.FormatJSON, Body: []byte(`{"tags":{"dc":"eu"},"v":1}`)})
	rec := &recorder{}
	r := e.run(t, Config{Name: "x", Type: "t", Chronicle: "c", Stories: []string{"cpu_*"}, Kinds: []string{"metric"}, Tags: map[string]string{"dc": "eu"}}, rec)
	testutil.Eventually(t, 10*time.Second, func() bool { return r.Status().Cursor == a.Last }, "cursor at the end")
	var times []int64
	for _, ev := range rec.delivered() {
		times = append(times, ev.Time)
	}
	if fmt.Sprint(times) != "[1001 1005]" {
		t.Errorf("delivered events at %v, want [1001 1005]", times)
	}
}

// A restarted runner resumes after its cursor; events appended while it
// runs wake it (no poll interval to wait for).
func TestResumeFromCursor(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Name: "x", Type: "t", Chronicle: "c", BatchAge: Duration(time.Millisecond)}
	first := &recorder{}
	a := e.append(t, "c", "s", metric(1), metric(2))
	r, err := NewRunner(cfg, first, LocalSource{Store: e.store}, e.state, nil, "one", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	testutil.Eventually(t, 10*time.Second, func() bool { return r.Status().Cursor == a.Last }, "first run delivers")
	b := e.append(t, "c", "s", metric(3)) // pushed to the running sink
	testutil.Eventually(t, 10*time.Second, func() bool { return r.Status().Cursor == b.Last }, "woken by the append")
	cancel()
	<-done
	c := e.append(t, "c", "s", metric(4))
	second := &recorder{}
	r2 := e.run(t, cfg, second)
	testutil.Eventually(t, 10*time.Second, func() bool { return r2.Status().Cursor == c.Last }, "second run delivers")
	if got := seqs(second.delivered()); len(got) != 1 || got[0] != c.First {
		t.Errorf("the restarted sink delivered %v, want only %d", got, c.First)
	}
	// Caught up and idle: no lag.
	testutil.Eventually(t, 10*time.Second, func() bool {
		st := r2.Status()
		return st.LagEvents == 0 && st.LagSeconds == 0 && st.State == "running"
	}, "no lag once caught up")
}

// Start "now" skips what is already in the log; a window starts at the
// first event at or after now − window.
func TestStartPositions(t *testing.T) {
	e := newEnv(t)
	old := metric(1)
	old.Time = time.Now().Add(-time.Hour).UnixNano()
	recent := metric(2)
	recent.Time = time.Now().Add(-time.Minute).UnixNano()
	e.append(t, "c", "s", old)
	a := e.append(t, "c", "s", recent)
	now, win := &recorder{}, &recorder{}
	rn := e.run(t, Config{Name: "now", Type: "t", Chronicle: "c", Start: "now"}, now)
	rw := e.run(t, Config{Name: "win", Type: "t", Chronicle: "c", WindowSec: 600}, win)
	testutil.Eventually(t, 10*time.Second, func() bool { return rw.Status().Cursor == a.Last && rn.Status().Cursor >= a.Last }, "both at the end")
	b := e.append(t, "c", "s", metric(3))
	testutil.Eventually(t, 10*time.Second, func() bool { return rn.Status().Cursor == b.Last && rw.Status().Cursor == b.Last }, "both deliver new events")
	if got := seqs(now.delivered()); fmt.Sprint(got) != fmt.Sprint([]uint64{b.First}) {
		t.Errorf("start now delivered %v", got)
	}
	if got := seqs(win.delivered()); fmt.Sprint(got) != fmt.Sprint([]uint64{a.First, b.First}) {
		t.Errorf("window delivered %v, want %v", got, []uint64{a.First, b.First})
	}
}

// Events retention removed before the sink delivered them are counted as a
// gap, and the sink moves on to what is left.
func TestGapsAreCountedAndSkipped(t *testing.T) {
	e := newEnv(t)
	if err := e.store.CreateChronicle(context.Background(), "g", store.Retention{MaxBytes: 4000}); err != nil {
		t.Fatal(err)
	}
	first := e.append(t, "g", "s", metric(0))
	if _, err := e.state.SetCursor(context.Background(), "x", Cursor{Seq: first.Last, Chronicle: "g"}, 0); err != nil {
		t.Fatal(err)
	}
	var last store.Appended
	for i := 1; i <= 40; i++ { // one block each; the oldest are evicted
		ev := metric(i)
		ev.Body = []byte(strings.Repeat("x", 300))
		last = e.append(t, "g", "s", ev)
	}
	rec := &recorder{}
	r := e.run(t, Config{Name: "x", Type: "t", Chronicle: "g"}, rec)
	testutil.Eventually(t, 10*time.Second, func() bool { return r.Status().Cursor == last.Last }, "cursor at the end")
	got := rec.delivered()
	if st := r.Status(); st.Gaps == 0 || len(got) == 0 || len(got) >= 40 {
		t.Fatalf("gaps %d, delivered %d of 40 (some were evicted)", st.Gaps, len(got))
	}
	if got[len(got)-1].Seq != last.Last {
		t.Errorf("last delivered %d, want %d", got[len(got)-1].Seq, last.Last)
	}
}

// A sink slower than the log: its tail overflows (more blocks than the
// tail buffers), it falls back to reading, and still delivers every event
// once, in log order.
func TestSlowSinkFallsBackToReading(t *testing.T) {
	e := newEnv(t)
	gate, started := make(chan struct{}), make(chan struct{})
	rec := &recorder{refuse: func(attempt int, _ []event.Event) error {
		if attempt == 1 {
			close(started)
			<-gate // hold the first batch while the log grows
		}
		return nil
	}}
	e.append(t, "c", "s0", metric(0))
	r := e.run(t, Config{Name: "x", Type: "t", Chronicle: "c", BatchEvents: 50, BatchAge: Duration(time.Millisecond)}, rec)
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the first delivery did not start")
	}
	const n = 1500 // blocks: beyond the tail's 1024 buffered items
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if _, err := e.store.Append("c", fmt.Sprintf("s%d", i+1), []event.Event{metric(i + 1)}).Wait(context.Background()); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(gate)
	head, _ := LocalSource{Store: e.store}.Head(context.Background(), "c")
	testutil.Eventually(t, 60*time.Second, func() bool { return len(rec.delivered()) == n+1 }, "every event delivered")
	got := rec.delivered()
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Fatalf("out of order or twice at %d: %d after %d", i, got[i].Seq, got[i-1].Seq)
		}
	}
	if got[len(got)-1].Seq > head {
		t.Errorf("last seq %d beyond head %d", got[len(got)-1].Seq, head)
	}
	_ = r
}

// filterer accepts every batch and sends its log events nowhere, as the
// grafana sink does with events that are not annotations.
type filterer struct {
	recorder
	filtered uint64
}

func (f *filterer) Deliver(ctx context.Context, b Batch) error {
	if err := f.recorder.Deliver(ctx, b); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range b.Events {
		if e.Kind == event.KindLog {
			f.filtered++
		}
	}
	return nil
}

func (f *filterer) Filtered() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.filtered
}

// Events a sink accepted and sent nowhere are counted as skipped, in the
// status and on /metrics, never as delivered.
func TestSkippedEventsAreNotCountedDelivered(t *testing.T) {
	e := newEnv(t)
	var evs []event.Event
	for i := 0; i < 10; i++ {
		ev := metric(i)
		if i%3 == 0 {
			ev.Kind = event.KindLog
		}
		evs = append(evs, ev)
	}
	a := e.append(t, "c", "s", evs...)
	f := &filterer{}
	reg := prometheus.NewRegistry()
	r, err := NewRunner(Config{Name: "x", Type: "t", Chronicle: "c", BatchAge: Duration(time.Millisecond)}, f,
		LocalSource{Store: e.store}, e.state, NewMetrics(reg), "test/x", testutil.Logger(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	testutil.Eventually(t, 10*time.Second, func() bool { return r.Status().Cursor == a.Last }, "cursor past the batch")
	if st := r.Status(); st.Delivered != 6 || st.Skipped != 4 {
		t.Errorf("status: delivered %d, skipped %d; want 6 and 4", st.Delivered, st.Skipped)
	}
	counters := gathered(t, reg)
	if d, s := counters["chronostream_sink_delivered_events_total"], counters["chronostream_sink_skipped_events_total"]; d != 6 || s != 4 {
		t.Errorf("/metrics: delivered %v, skipped %v; want 6 and 4", d, s)
	}
}

// gathered is what /metrics would show of reg: each series' counter or
// gauge value, summed by name.
func gathered(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			out[mf.GetName()] += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return out
}

// While a destination is down, the lag on /metrics keeps growing and
// counts the batch being retried: the runner's loop is blocked in the
// retries, and the gauges were set only by that loop (they showed 0 for
// a whole outage).
func TestLagGrowsDuringAnOutage(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	down := &recorder{refuse: func(int, []event.Event) error { return errors.New("connection refused") }}
	r, err := NewRunner(Config{Name: "x", Type: "t", Chronicle: "c", BatchAge: Duration(time.Millisecond)}, down,
		LocalSource{Store: e.store}, e.state, NewMetrics(reg), "test/x", testutil.Logger(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	r.retryBase = time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	var evs []event.Event
	for i := 0; i < 10; i++ {
		evs = append(evs, metric(i))
	}
	e.append(t, "c", "s", evs...)
	testutil.Eventually(t, 20*time.Second, func() bool {
		m := gathered(t, reg)
		return m["chronostream_sink_lag_events"] == 10 && m["chronostream_sink_lag_seconds"] >= 2
	}, "lag_events is 10 and lag_seconds passes 2 s while every delivery fails")
	if st := r.Status(); st.LagEvents != 10 || st.Delivered != 0 {
		t.Errorf("status: %+v", st)
	}
}

// A pause that lands while a batch is in the destination's hands: the
// runner's commit loses the compare-and-set to the pause, so the sink is
// paused (not un-paused by its own commit), and after resuming, the batch
// is delivered again: nothing is skipped.
func TestPauseDuringDeliveryLosesNothing(t *testing.T) {
	e := newEnv(t)
	entered, release := make(chan struct{}), make(chan struct{})
	rec := &recorder{refuse: func(attempt int, _ []event.Event) error {
		if attempt == 1 {
			close(entered)
			<-release // the destination answers only after the pause
		}
		return nil
	}}
	var evs []event.Event
	for i := 0; i < 5; i++ {
		evs = append(evs, metric(i))
	}
	a := e.append(t, "c", "s", evs...)
	r := e.run(t, Config{Name: "x", Type: "t", Chronicle: "c", BatchAge: Duration(time.Millisecond)}, rec)
	ctx := context.Background()
	<-entered
	setPaused := func(paused bool) {
		t.Helper()
		c, rev, err := e.state.Cursor(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		c.Paused, c.By = paused, "api"
		if _, err := e.state.SetCursor(ctx, "x", c, int64(rev)); err != nil {
			t.Fatal(err)
		}
	}
	setPaused(true)
	close(release)
	testutil.Eventually(t, 10*time.Second, func() bool { return r.Status().State == "paused" }, "paused")
	if c, _, err := e.state.Cursor(ctx, "x"); err != nil || !c.Paused || c.Seq >= a.Last {
		t.Fatalf("cursor after the pause: %+v %v (want paused, before %d)", c, err, a.Last)
	}
	setPaused(false)
	testutil.Eventually(t, 10*time.Second, func() bool { return r.Status().Cursor == a.Last }, "resumed and delivered")
	got := map[uint64]int{}
	for _, ev := range rec.delivered() {
		got[ev.Seq]++
	}
	for seq := a.First; seq <= a.Last; seq++ {
		if got[seq] == 0 {
			t.Errorf("event %d never delivered (deliveries %v)", seq, seqs(rec.delivered()))
		}
	}
}

// primer records what the runner hands a Primer: the positions of the
// delivered events in the chronicle and what Prime was given.
type primer struct {
	recorder
	at     map[uint64]uint64 // seq → Positions
	primed []string          // "seq:selected", newest first
}

func (p *primer) Deliver(ctx context.Context, b Batch) error {
	err := p.recorder.Deliver(ctx, b)
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, e := range b.Events {
		if p.at == nil {
			p.at = map[uint64]uint64{}
		}
		p.at[e.Seq] = b.Positions[i]
	}
	return err
}

func (p *primer) Prime(chronicle string, back iter.Seq2[*event.Event, bool]) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.primed = nil
	for e, selected := range back {
		p.primed = append(p.primed, fmt.Sprintf("%d:%v", e.Seq, selected))
	}
}

// A Primer sink gets each selected event's place among all the events of
// the chronicle (those not selected counted), through the halves of a
// refused batch too; and, at a restart, every event before the cursor,
// newest first, with whether it is selected.
func TestPrimerSeesTheChronicle(t *testing.T) {
	e := newEnv(t)
	var all []event.Event
	for i, story := range []string{"a", "a", "b", "b", "a", "b", "b", "b", "a", "a"} {
		a := e.append(t, "c", story, metric(i))
		all = append(all, event.Event{Seq: a.First, Story: story})
	}
	cfg := Config{Name: "x", Type: "t", Chronicle: "c", Stories: []string{"a"}, BatchEvents: 100, BatchAge: Duration(50 * time.Millisecond)}
	p := &primer{}
	p.refuse = func(attempt int, evs []event.Event) error {
		if len(evs) > 1 {
			return Permanent(errors.New("split me"))
		}
		return nil
	}
	r, err := NewRunner(cfg, p, LocalSource{Store: e.store}, e.state, nil, "one", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	testutil.Eventually(t, 10*time.Second, func() bool { return r.Status().Cursor == all[len(all)-1].Seq }, "delivered")
	cancel()
	<-done
	var want, got []string
	for i, ev := range all {
		if ev.Story == "a" {
			want = append(want, fmt.Sprintf("%d@%d", ev.Seq, i+1))
			got = append(got, fmt.Sprintf("%d@%d", ev.Seq, p.at[ev.Seq]))
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("positions %v, want %v", got, want)
	}
	again := &primer{}
	r2, err := NewRunner(cfg, again, LocalSource{Store: e.store}, e.state, nil, "two", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan struct{})
	go func() { defer close(done2); r2.Run(ctx2) }()
	defer func() { cancel2(); <-done2 }()
	want = nil
	for i := len(all) - 1; i >= 0; i-- {
		want = append(want, fmt.Sprintf("%d:%v", all[i].Seq, all[i].Story == "a"))
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		again.mu.Lock()
		defer again.mu.Unlock()
		return fmt.Sprint(again.primed) == fmt.Sprint(want)
	}, "primed with the whole chronicle, newest first")
}
