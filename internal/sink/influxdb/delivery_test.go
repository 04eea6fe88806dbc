package influxdb_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/sink"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// A field type conflict (InfluxDB's 400 partial write) and an event line
// protocol cannot carry are dead-lettered with the reason; the rest of the
// batch is delivered and the cursor moves past all of it.
func TestRefusedEventsAreDeadLettered(t *testing.T) {
	db := testutil.StartInfluxDB(t)
	createDB(t, db, "cs")
	// The series' field v is a float in InfluxDB before any event arrives.
	resp, err := http.Post(db.URL()+"/write?db=cs", "text/plain", strings.NewReader("m,chronicle=app,story=m v=0.5 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	srv := servertest.RunServer(t, server.Options{AutoCreate: true, Sinks: []sink.Config{
		influxSink("influx", "app", db.URL()+"/write?db=cs", nil),
	}})
	evs := make([]event.Event, 12)
	for i := range evs {
		evs[i] = event.Event{Time: int64(1000 + i), Fields: map[string]event.Value{"v": event.Float(float64(i))}}
	}
	evs[4].Fields["v"] = event.String("not a number") // type conflict
	evs[9].Fields["v"] = event.Float(math.NaN())      // not representable
	app, err := srv.Store().Append("app", "m", evs).Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// InfluxDB answers 204 to a line starting with # and stores nothing.
	hash, err := srv.Store().Append("app", "#m", evs[:1]).Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, func() bool {
		st, _ := srv.Sinks().Status(context.Background(), "influx")
		return st.DeadLettered == 3 && st.Delivered == 10
	}, "10 delivered, 3 dead-lettered")
	if n := count(t, db, "cs", `SELECT count(v) FROM m`); n != 11 {
		t.Errorf("InfluxDB holds %d points of m, want 11 (10 events and the float written first)", n)
	}
	type letter struct { // sink.DeadLetter's members this test checks
		Error string `json:"error"`
		Seq   uint64 `json:"seq"`
		Story string `json:"story"`
		Time  int64  `json:"event_time"`
	}
	var letters []letter
	_, err = srv.Store().Read(context.Background(), store.Query{Chronicle: "app", Story: sink.DeadLetterPrefix + "influx"}, func(e *event.Event) error {
		var dl letter
		if err := json.Unmarshal(e.Body, &dl); err != nil {
			return err
		}
		letters = append(letters, dl)
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 3 {
		t.Fatalf("dead letters: %+v", letters)
	}
	if !strings.Contains(letters[2].Error, "comment") || letters[2].Story != "#m" || letters[2].Seq != hash.First {
		t.Errorf("third dead letter: %+v", letters[2])
	}
	if !strings.Contains(letters[0].Error, "field type conflict") || letters[0].Time != 1004 || letters[0].Story != "m" || letters[0].Seq != app.First+4 {
		t.Errorf("first dead letter: %+v", letters[0])
	}
	if !strings.Contains(letters[1].Error, "NaN") || letters[1].Time != 1009 {
		t.Errorf("second dead letter: %+v", letters[1])
	}
	st, _ := srv.Sinks().Status(context.Background(), "influx")
	if st.Cursor < hash.Last {
		t.Errorf("cursor %d did not move past the batches (last seq %d)", st.Cursor, hash.Last)
	}
}

// Steady ingest while InfluxDB is down for a while: afterwards every event
// is in InfluxDB, once.
func TestInfluxDBOutage(t *testing.T) {
	db := testutil.StartInfluxDB(t)
	createDB(t, db, "cs")
	cfg := influxSink("influx", "app", db.URL()+"/write?db=cs", map[string]any{"timeout": "2s"})
	cfg.RetryMax = sink.Duration(300 * time.Millisecond)
	srv := servertest.RunServer(t, server.Options{AutoCreate: true, Sinks: []sink.Config{cfg}})
	var (
		mu   sync.Mutex
		sent int
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			e := []event.Event{{Time: time.Now().UnixNano(), Fields: map[string]event.Value{"n": event.Int(int64(i))}}}
			if _, err := srv.Store().Append("app", "steady", e).Wait(context.Background()); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			sent++
			mu.Unlock()
		}
	}()
	sentNow := func() int { mu.Lock(); defer mu.Unlock(); return sent }
	testutil.Eventually(t, 30*time.Second, func() bool { return count(t, db, "cs", `SELECT count(n) FROM steady`) > 20 }, "delivery before the outage")
	db.Stop()
	before := sentNow()
	testutil.Eventually(t, 30*time.Second, func() bool {
		st, _ := srv.Sinks().Status(context.Background(), "influx")
		return st.Retries > 0 && sentNow() > before+100
	}, "the sink retries while ingest goes on")
	db.Start()
	testutil.Eventually(t, 30*time.Second, func() bool { return sentNow() > before+200 }, "ingest after the outage")
	close(stop)
	<-done
	total := sentNow()
	testutil.Eventually(t, 60*time.Second, func() bool {
		return count(t, db, "cs", `SELECT count(n) FROM steady`) == int64(total)
	}, fmt.Sprintf("all %d events in InfluxDB", total))
	// InfluxDB holds a batch's points just before the sink counts them.
	testutil.Eventually(t, 10*time.Second, func() bool {
		st, _ := srv.Sinks().Status(context.Background(), "influx")
		return st.Delivered >= uint64(total)
	}, "the sink counts what it delivered")
	if st, _ := srv.Sinks().Status(context.Background(), "influx"); st.DeadLettered != 0 || st.Retries == 0 {
		t.Errorf("status %+v after %d events", st, total)
	}
}

// kill -9 of chronostream during delivery: after a restart every event is
// in InfluxDB, none twice (count of points == count of events; redelivered
// points overwrite themselves).
func TestKill9DuringDelivery(t *testing.T) {
	db := testutil.StartInfluxDB(t)
	createDB(t, db, "cs")
	bin := testutil.BuildBinary(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "chronostream.yaml")
	yaml := fmt.Sprintf(`auto-create: true
sinks:
  - name: influx
    type: influxdb
    chronicle: app
    batch-events: 50
    batch_age: 10ms
    retry_max: 200ms
    settings:
      url: %q
`, db.URL()+"/write?db=cs")
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	p := testutil.StartBinary(t, bin, "--data", data, "--config", conf)
	const perRound, rounds = 300, 2
	post := func(p *testutil.Proc, round int) {
		var b strings.Builder
		for i := 0; i < perRound; i++ {
			// Two events per timestamp: the _seq rule keeps both.
			fmt.Fprintf(&b, "k,round=%d v=%di %d\n", round, i, 1_700_000_000_000_000_000+int64(round*perRound+i/2))
		}
		resp, err := http.Post(p.URL()+"/write?db=app", "text/plain", strings.NewReader(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("write: %s", resp.Status)
		}
	}
	for r := 0; r < rounds; r++ {
		post(p, r)
	}
	// Kill once delivery is under way, not finished.
	testutil.Eventually(t, 30*time.Second, func() bool { return count(t, db, "cs", `SELECT count(v) FROM k`) > 0 }, "delivery started")
	p.Kill9()
	p = testutil.StartBinary(t, bin, "--data", data, "--config", conf)
	post(p, rounds) // and more after the restart
	want := int64((rounds + 1) * perRound)
	testutil.Eventually(t, 60*time.Second, func() bool { return count(t, db, "cs", `SELECT count(v) FROM k`) >= want }, "every event delivered")
	if n := count(t, db, "cs", `SELECT count(v) FROM k`); n != want {
		t.Fatalf("InfluxDB holds %d points, want %d", n, want)
	}
	resp, err := http.Get(p.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := make([]byte, 1<<20)
	n, _ := readAll(resp, b)
	if !strings.Contains(string(b[:n]), `chronostream_sink_delivered_events_total{sink="influx"}`) {
		t.Errorf("no sink metrics on /metrics")
	}
}

func readAll(resp *http.Response, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := resp.Body.Read(b[n:])
		n += k
		if err != nil {
			return n, nil
		}
	}
	return n, nil
}

// Events sharing a series and a timestamp, split by a restart: the
// restarted sink numbers the later ones after those delivered before (it
// is primed with the events before its cursor), so none overwrites another.
func TestSameTimestampAcrossRestart(t *testing.T) {
	db := testutil.StartInfluxDB(t)
	createDB(t, db, "cs")
	dir := t.TempDir()
	start := func() *server.Server {
		s, err := server.New(server.Options{HTTPAddr: "127.0.0.1:0", DataDir: dir, AutoCreate: true, Logger: testutil.Logger(t, slog.LevelWarn),
			Sinks: []sink.Config{influxSink("influx", "app", db.URL()+"/write?db=cs", nil)}})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	same := func(n int) []event.Event {
		evs := make([]event.Event, n)
		for i := range evs {
			evs[i] = event.Event{Time: 42, Fields: map[string]event.Value{"v": event.Int(int64(i))}}
		}
		return evs
	}
	srv := start()
	first, err := srv.Store().Append("app", "dup", same(3)).Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, func() bool {
		st, _ := srv.Sinks().Status(context.Background(), "influx")
		return st.Cursor == first.Last
	}, "the first three delivered and the cursor committed")
	if n := count(t, db, "cs", `SELECT count(v) FROM dup`); n != 3 {
		t.Fatalf("InfluxDB holds %d points, want 3", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	srv = start()
	defer srv.Shutdown(ctx)
	second, err := srv.Store().Append("app", "dup", same(2)).Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, func() bool {
		st, _ := srv.Sinks().Status(context.Background(), "influx")
		return st.Delivered >= 2 && st.Cursor == second.Last
	}, "the restarted sink delivers the next two")
	if n := count(t, db, "cs", `SELECT count(v) FROM dup`); n != 5 {
		t.Errorf("InfluxDB holds %d points of the 5 events sharing a timestamp", n)
	}
}

// kill -9 of `chronostream forward` during delivery: started again, it
// resumes from the cursor the server keeps; InfluxDB ends up with every
// event once.
func TestForwardKill9(t *testing.T) {
	db := testutil.StartInfluxDB(t)
	createDB(t, db, "cs")
	bin := testutil.BuildBinary(t)
	srv := servertest.RunServer(t, server.Options{AutoCreate: true})
	const n = 2000
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "fw,host=h%d v=%di %d\n", i%10, i, 1_700_000_000_000_000_000+int64(i))
	}
	resp, err := http.Post("http://"+srv.Addr()+"/write?db=app", "text/plain", strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	forward := func() *testutil.Proc {
		return testutil.StartProc(t, bin, testutil.ProcOptions{NoWaitReady: true,
			Args: []string{"forward", "-r", "app", "--name", "fw", "--batch-events", "100", "--batch-age", "5ms",
				"--server", "http://" + srv.Addr(), "--influx-url", db.URL() + "/write?db=cs"}})
	}
	p := forward()
	testutil.Eventually(t, 60*time.Second, func() bool { return count(t, db, "cs", `SELECT count(v) FROM fw`) > 0 }, "forward started delivering")
	p.Kill9()
	if at := count(t, db, "cs", `SELECT count(v) FROM fw`); at >= n {
		t.Logf("forward had delivered all %d events before the kill; the restart only resumes at the end", at)
	} else {
		t.Logf("killed with %d of %d events delivered", at, n)
	}
	forward()
	testutil.Eventually(t, 60*time.Second, func() bool { return count(t, db, "cs", `SELECT count(v) FROM fw`) >= n }, "every event forwarded")
	if got := count(t, db, "cs", `SELECT count(v) FROM fw`); got != n {
		t.Errorf("InfluxDB holds %d points, want %d", got, n)
	}
}

// A group of events sharing a series and a timestamp much longer than the
// numbering window (160 events, window 20, batches of 10), split by a
// restart and then delivered again from a cursor moved into its middle:
// InfluxDB ends up with every event once. A restarted sink that numbered
// the group afresh would overwrite points; one that numbered a redelivered
// event differently would store it twice.
func TestLongGroupAcrossRestartAndCursorMove(t *testing.T) {
	db := testutil.StartInfluxDB(t)
	createDB(t, db, "cs")
	dir := t.TempDir()
	cfg := influxSink("influx", "app", db.URL()+"/write?db=cs", map[string]any{"sequence_window": 20})
	cfg.BatchEvents = 10
	start := func() *server.Server {
		s, err := server.New(server.Options{HTTPAddr: "127.0.0.1:0", DataDir: dir, AutoCreate: true, Logger: testutil.Logger(t, slog.LevelWarn),
			Sinks: []sink.Config{cfg}})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var groupSeqs []uint64
	// appends rounds of 20 group events, each round followed by 3 events
	// of another story, and waits until the sink delivered them all.
	appendGroup := func(srv *server.Server, rounds int) {
		var last uint64
		for range rounds {
			g := make([]event.Event, 20)
			for i := range g {
				g[i] = event.Event{Time: 42, Fields: map[string]event.Value{"v": event.Int(int64(len(groupSeqs) + i))}}
			}
			r, err := srv.Store().Append("app", "g", g).Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for s := r.First; s <= r.Last; s++ {
				groupSeqs = append(groupSeqs, s)
			}
			o := []event.Event{{Time: 1}, {Time: 2}, {Time: 3}}
			if r, err = srv.Store().Append("app", "other", o).Wait(ctx); err != nil {
				t.Fatal(err)
			}
			last = r.Last
		}
		testutil.Eventually(t, 30*time.Second, func() bool {
			st, _ := srv.Sinks().Status(ctx, "influx")
			return st.Cursor == last
		}, "every event delivered")
	}
	srv := start()
	appendGroup(srv, 5)
	if n := count(t, db, "cs", `SELECT count(v) FROM g`); n != 100 {
		t.Fatalf("InfluxDB holds %d points of the group's first 100 events", n)
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	srv = start()
	defer srv.Shutdown(ctx)
	appendGroup(srv, 3)
	if n := count(t, db, "cs", `SELECT count(v) FROM g`); n != 160 {
		t.Fatalf("after a restart in the group, InfluxDB holds %d points of its 160 events", n)
	}
	head, _ := srv.Sinks().Status(ctx, "influx")
	// The 70th event of the group: 50 after the window's reach.
	if _, err := srv.Sinks().SetCursor(ctx, "influx", fmt.Sprint(groupSeqs[69]), ""); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, func() bool {
		st, _ := srv.Sinks().Status(ctx, "influx")
		return st.Cursor == head.Cursor && st.Delivered >= head.Delivered+90
	}, "the events after the moved cursor delivered again")
	if n := count(t, db, "cs", `SELECT count(v) FROM g`); n != 160 {
		t.Errorf("after delivering again from the middle of the group, InfluxDB holds %d points of its 160 events", n)
	}
	if n := count(t, db, "cs", `SELECT max(v) FROM g WHERE "_seq" = '159'`); n != 159 {
		t.Errorf("the group's last event has _seq=159? max(v) there = %d", n)
	}
}
