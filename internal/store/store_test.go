package store

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/natsd"
)

// openStore opens a store on an embedded NATS server.
func openStore(t testing.TB, opts Options) *Store {
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
	opts.Exclusive = true // as the server runs it embedded
	return openOn(t, nc, opts)
}

// openExternal opens a store on a separately started nats-server process
// (Debian's, the oldest version we support), skipping outside CI when
// nats-server is not installed.
func openExternal(t testing.TB, opts Options) *Store {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("nats-server is required in CI: ", err)
		}
		t.Skip("nats-server not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "-js", "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-sd", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var nc *nats.Conn
	deadline := time.Now().Add(20 * time.Second)
	for {
		nc, err = nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", port))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nats-server did not accept connections: ", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return openOn(t, nc, opts)
}

func openOn(t testing.TB, nc *nats.Conn, opts Options) *Store {
	t.Helper()
	t.Cleanup(nc.Close)
	opts.Conn = nc
	opts.AutoCreate = true
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func appendN(t testing.TB, s *Store, chronicle, story string, from, n int) Appended {
	t.Helper()
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{Time: int64(from + i + 1), Kind: event.KindMetric,
			Fields: map[string]event.Value{"i": event.Int(int64(from + i))},
			Body:   fmt.Appendf(nil, `{"i":%d}`, from+i), Format: event.FormatJSON}
	}
	a, err := s.Append(chronicle, story, evs).Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a.N != n {
		t.Fatalf("appended %d, want %d", a.N, n)
	}
	return a
}

func readAll(t testing.TB, s *Store, q Query) ([]event.Event, []Gap) {
	t.Helper()
	var evs []event.Event
	var gaps []Gap
	_, err := s.Read(context.Background(), q, func(e *event.Event) error {
		evs = append(evs, *e)
		return nil
	}, func(g Gap) error { gaps = append(gaps, g); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return evs, gaps
}

func fieldI(e event.Event) int64 { return e.Fields["i"].IntValue() }

func TestAppendReadOrder(t *testing.T) { forEachBackend(t, testAppendReadOrder) }

func testAppendReadOrder(t *testing.T, open opener) {
	s := open(t, Options{})
	const story = "cpu.usage / host=a*>"
	appendN(t, s, "main", story, 0, 10)
	appendN(t, s, "main", "other", 0, 3)
	appendN(t, s, "main", story, 10, 5)

	evs, _ := readAll(t, s, Query{Chronicle: "main", Story: story})
	if len(evs) != 15 {
		t.Fatalf("read %d events, want 15", len(evs))
	}
	for i, e := range evs {
		if fieldI(e) != int64(i) || e.Story != story {
			t.Fatalf("event %d: i=%d story=%q", i, fieldI(e), e.Story)
		}
		if i > 0 && e.Seq <= evs[i-1].Seq {
			t.Fatalf("seq not increasing at %d: %d after %d", i, e.Seq, evs[i-1].Seq)
		}
	}
	// Cursor: after the 7th event.
	rest, _ := readAll(t, s, Query{Chronicle: "main", Story: story, After: evs[6].Seq, Limit: 4})
	if len(rest) != 4 || fieldI(rest[0]) != 7 || fieldI(rest[3]) != 10 {
		t.Fatalf("after cursor: got %v", rest)
	}
	desc, _ := readAll(t, s, Query{Chronicle: "main", Story: story, Desc: true, Limit: 6})
	if len(desc) != 6 || fieldI(desc[0]) != 14 || fieldI(desc[5]) != 9 {
		t.Fatalf("desc: got %d events starting %d", len(desc), fieldI(desc[0]))
	}
	before, _ := readAll(t, s, Query{Chronicle: "main", Story: story, Desc: true, Before: evs[12].Seq, Limit: 3})
	if len(before) != 3 || fieldI(before[0]) != 11 || fieldI(before[2]) != 9 {
		t.Fatalf("desc before: got %v", before)
	}
	all, _ := readAll(t, s, Query{Chronicle: "main"})
	if len(all) != 18 {
		t.Fatalf("chronicle read %d events, want 18", len(all))
	}
	alldesc, _ := readAll(t, s, Query{Chronicle: "main", Desc: true})
	if len(alldesc) != 18 || alldesc[0].Seq != all[17].Seq {
		t.Fatalf("chronicle desc read %d events", len(alldesc))
	}
	timed, _ := readAll(t, s, Query{Chronicle: "main", Story: story, From: 3, To: 5})
	if len(timed) != 3 || fieldI(timed[0]) != 2 {
		t.Fatalf("time range: got %v", timed)
	}

	stories, err := s.Stories(context.Background(), "main")
	if err != nil {
		t.Fatal(err)
	}
	if len(stories) != 2 || stories[0].Name != story || stories[0].Events != 15 || stories[1].Events != 3 {
		t.Fatalf("stories: %+v", stories)
	}
	if stories[0].LastSeq != evs[14].Seq || stories[0].FirstSeq != evs[0].Seq {
		t.Fatalf("story seqs %d..%d, want %d..%d", stories[0].FirstSeq, stories[0].LastSeq, evs[0].Seq, evs[14].Seq)
	}
}

func TestGroupCommitConcurrent(t *testing.T) { forEachBackend(t, testGroupCommitConcurrent) }

func testGroupCommitConcurrent(t *testing.T, open opener) {
	s := open(t, Options{})
	const writers, per = 8, 200
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		go func() {
			for i := 0; i < per; i++ {
				e := []event.Event{{Body: []byte("x")}}
				if _, err := s.Append("c", "s", e).Wait(context.Background()); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for w := 0; w < writers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	evs, _ := readAll(t, s, Query{Chronicle: "c", Story: "s"})
	if len(evs) != writers*per {
		t.Fatalf("read %d, want %d", len(evs), writers*per)
	}
	st, _ := s.Stories(context.Background(), "c")
	if st[0].Events != writers*per {
		t.Fatalf("story count %d", st[0].Events)
	}
}

func TestMaxEventsAndGap(t *testing.T) { forEachBackend(t, testMaxEventsAndGap) }

func testMaxEventsAndGap(t *testing.T, open opener) {
	s := open(t, Options{})
	ctx := context.Background()
	if err := s.CreateChronicle(ctx, "r", Retention{}); err != nil {
		t.Fatal(err)
	}
	first := appendN(t, s, "r", "s", 0, 10)
	for i := 1; i < 10; i++ {
		appendN(t, s, "r", "s", i*10, 10)
	}
	if err := s.SetRetention(ctx, "r", Retention{MaxEvents: 35}); err != nil {
		t.Fatal(err)
	}
	evs, gaps := readAll(t, s, Query{Chronicle: "r", Story: "s"})
	if len(evs) != 30 || fieldI(evs[0]) != 70 {
		t.Fatalf("after eviction read %d events from %d", len(evs), fieldI(evs[0]))
	}
	if len(gaps) != 0 {
		t.Fatalf("a read from the start must not report a gap: %v", gaps)
	}
	_, gaps = readAll(t, s, Query{Chronicle: "r", Story: "s", After: first.Last})
	if len(gaps) != 1 || gaps[0].Next != evs[0].Seq {
		t.Fatalf("gap = %+v, want one ending at %d", gaps, evs[0].Seq)
	}
	_, gaps = readAll(t, s, Query{Chronicle: "r", After: first.Last})
	if len(gaps) != 1 {
		t.Fatalf("chronicle gap = %+v", gaps)
	}
}

// TestGapInsideEvictedBlock resumes from a cursor inside the last evicted
// block, whose story successor survives: the rest of that block is gone and
// must be reported, by reads and tails, of the story and of the chronicle. A
// cursor at the end of that block lost nothing and gets no gap.
func TestGapInsideEvictedBlock(t *testing.T) { forEachBackend(t, testGapInsideEvictedBlock) }

func testGapInsideEvictedBlock(t *testing.T, open opener) {
	s := open(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.CreateChronicle(ctx, "r", Retention{}); err != nil {
		t.Fatal(err)
	}
	evicted := appendN(t, s, "r", "s", 0, 10)
	kept := appendN(t, s, "r", "s", 10, 10)
	if err := s.SetRetention(ctx, "r", Retention{MaxEvents: 10}); err != nil {
		t.Fatal(err)
	}
	if evs, _ := readAll(t, s, Query{Chronicle: "r", Story: "s"}); len(evs) != 10 || evs[0].Seq != kept.First {
		t.Fatalf("after eviction %d events remain, want the second block's 10", len(evs))
	}
	for _, story := range []string{"s", ""} {
		for _, tc := range []struct {
			after uint64
			gap   bool
		}{{evicted.First + 2, true}, {evicted.Last, false}} {
			want := []Gap(nil)
			if tc.gap {
				want = []Gap{{After: tc.after, Next: kept.First}}
			}
			evs, gaps := readAll(t, s, Query{Chronicle: "r", Story: story, After: tc.after})
			if len(evs) != 10 || !slices.Equal(gaps, want) {
				t.Errorf("story %q: read after %d: %d events, gaps %v, want 10 and %v", story, tc.after, len(evs), gaps, want)
			}
			tl, err := s.Tail(ctx, TailQuery{Chronicle: "r", Story: story, After: tc.after})
			if err != nil {
				t.Fatal(err)
			}
			it, err := tl.Next(ctx)
			tl.Close()
			if err != nil {
				t.Fatal(err)
			}
			var got []Gap
			if it.Gap != nil {
				got = []Gap{*it.Gap}
			}
			if !slices.Equal(got, want) || len(it.Events) != 10 || it.Events[0].Seq != kept.First {
				t.Errorf("story %q: tail after %d: gap %v and %d events, want %v and 10", story, tc.after, got, len(it.Events), want)
			}
		}
	}
}

func TestTail(t *testing.T) { forEachBackend(t, testTail) }

func testTail(t *testing.T, open opener) {
	s := open(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := appendN(t, s, "t", "s", 0, 5)
	tl, err := s.Tail(ctx, TailQuery{Chronicle: "t", Story: "s", After: a.First + 1})
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	appendN(t, s, "t", "s", 5, 5)
	var got []int64
	for len(got) < 8 {
		it, err := tl.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range it.Events {
			got = append(got, fieldI(e))
		}
	}
	for i, v := range got {
		if v != int64(i+2) {
			t.Fatalf("tail got %v", got)
		}
	}
	// From now: only new events.
	now, err := s.Tail(ctx, TailQuery{Chronicle: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer now.Close()
	appendN(t, s, "t", "s2", 100, 1)
	it, err := now.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(it.Events) != 1 || fieldI(it.Events[0]) != 100 || it.Events[0].Story != "s2" {
		t.Fatalf("tail from now got %+v", it)
	}
}

type opener func(testing.TB, Options) *Store

// forEachBackend runs a test on the embedded server and on an external one:
// the store must behave the same on both.
func forEachBackend(t *testing.T, test func(*testing.T, opener)) {
	t.Run("embedded", func(t *testing.T) { test(t, openStore) })
	t.Run("nats-server", func(t *testing.T) { test(t, openExternal) })
}
