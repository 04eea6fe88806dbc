package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

// lockedWriter collects a command's output while it runs.
type lockedWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func influxCount(db *testutil.InfluxDB, q string) int64 {
	rs, err := db.Query(q, "fwd")
	if err != nil || len(rs) == 0 || len(rs[0].Series) == 0 {
		return 0
	}
	n, _ := rs[0].Series[0].Values[0][1].(json.Number).Int64()
	return n
}

// forward end to end: a chronicle of a running server to a real influxd;
// stopped and started again, it resumes from the cursor the server keeps,
// losing and repeating nothing; the token never shows.
func TestForwardResumesFromServerCursor(t *testing.T) {
	db := testutil.StartInfluxDB(t)
	db.MustQuery("CREATE DATABASE fwd", "")
	srv := servertest.RunServer(t, server.Options{AutoCreate: true})
	base := "http://" + srv.Addr()
	write := func(from, n int) {
		var b strings.Builder
		for i := from; i < from+n; i++ {
			story := []string{"cpu_usage", "memory_usage", "disk_usage"}[i%3]
			fmt.Fprintf(&b, "%s,host=h v=%di %d\n", story, i, 1_700_000_000_000_000_000+int64(i))
		}
		resp, err := apiClient.Post(base+"/write?db=host-1", "text/plain", strings.NewReader(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("write: %s", resp.Status)
		}
	}
	const secret = "s3cr3t-t0ken"
	run := func() (context.CancelFunc, chan int, *lockedWriter) {
		ctx, cancel := context.WithCancel(context.Background())
		out := &lockedWriter{}
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, []string{"forward", "-r", "host-1", "-s", "cpu_usage,memory_usage", "--name", "fwd-test",
				"--influx-url", db.URL() + "/write?db=fwd", "--batch-age", "10ms"},
				[]string{"CHRONOSTREAM_SERVER=" + base, "INFLUX_TOKEN=" + secret}, out, out)
		}()
		return cancel, done, out
	}
	write(0, 90)
	cancel, done, out := run()
	testutil.Eventually(t, 30*time.Second, func() bool {
		return influxCount(db, `SELECT count(v) FROM cpu_usage`)+influxCount(db, `SELECT count(v) FROM memory_usage`) == 60
	}, "the first run forwards the selected stories")
	// The cursor is committed right after InfluxDB accepted the batch.
	testutil.Eventually(t, 30*time.Second, func() bool { return serverCursor(t, base) == lastSeq(t, base) }, "the cursor is committed")
	cancel()
	if code := waitExit(t, done); code != 0 {
		t.Fatalf("forward exited %d: %s", code, out)
	}
	write(90, 90) // while forward is stopped
	cancel, done, out2 := run()
	stop := sync.OnceFunc(func() { cancel(); waitExit(t, done) })
	defer stop()
	testutil.Eventually(t, 30*time.Second, func() bool {
		return influxCount(db, `SELECT count(v) FROM cpu_usage`)+influxCount(db, `SELECT count(v) FROM memory_usage`) == 120
	}, "the second run forwards what came meanwhile")
	write(180, 30) // pushed to the running forward
	testutil.Eventually(t, 30*time.Second, func() bool {
		return influxCount(db, `SELECT count(v) FROM cpu_usage`)+influxCount(db, `SELECT count(v) FROM memory_usage`) == 140
	}, "new events are pushed to it")
	if n := influxCount(db, `SELECT count(v) FROM disk_usage`); n != 0 {
		t.Errorf("an unselected story reached InfluxDB: %d points", n)
	}
	// The second run delivered only what the first had not: the cursor
	// on the server said where to resume.
	resp, err := apiClient.Get(base + "/api/v1/sinks/fwd-test/cursor")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Seq       uint64 `json:"seq"`
		Chronicle string `json:"chronicle"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&c)
	resp.Body.Close()
	if c.Chronicle != "host-1" || c.Seq == 0 {
		t.Errorf("cursor on the server: %+v", c)
	}
	// Stopped only once the last batch is committed: a stop while
	// InfluxDB's answer is on its way leaves that batch to be delivered
	// again by the next run (allowed), and uncounted by this one.
	testutil.Eventually(t, 30*time.Second, func() bool { return serverCursor(t, base) == lastSeq(t, base) }, "the cursor is committed")
	stop()
	for _, o := range []string{out.String(), out2.String()} {
		if strings.Contains(o, secret) {
			t.Errorf("the token was printed:\n%s", o)
		}
	}
	if !strings.Contains(out2.String(), "delivered=80") {
		t.Errorf("the second run should have delivered 80 events:\n%s", out2)
	}
}

// waitExit waits for a command run in the background to return after its
// context was cancelled, within a bound: a command that does not stop fails
// the test with every goroutine's stack instead of hanging it.
func waitExit(t *testing.T, done <-chan int) int {
	t.Helper()
	select {
	case code := <-done:
		return code
	case <-time.After(30 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("the command did not stop within 30s of its context's end:\n%s", buf[:runtime.Stack(buf, true)])
		return -1
	}
}

var apiClient = &http.Client{Timeout: 10 * time.Second}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := apiClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(v)
}

func serverCursor(t *testing.T, base string) uint64 {
	var c struct{ Seq uint64 }
	getJSON(t, base+"/api/v1/sinks/fwd-test/cursor", &c)
	return c.Seq
}

func lastSeq(t *testing.T, base string) uint64 {
	var c struct {
		LastSeq uint64 `json:"last_seq"`
	}
	getJSON(t, base+"/api/v1/chronicles/host-1", &c)
	return c.LastSeq
}

func TestForwardUsage(t *testing.T) {
	for _, args := range [][]string{
		{"forward", "--influx-url", "http://127.0.0.1:1/write?db=x"}, // no chronicle
		{"forward", "-r", "c"}, // no URL
		{"forward", "-r", "c", "--influx-url", "http://127.0.0.1:1/query?db=x"},         // not a write API
		{"forward", "-r", "c", "--influx-url", "http://127.0.0.1:1/api/v2/write?org=o"}, // no bucket
		{"forward", "-r", "c", "--influx-url", "http://127.0.0.1:1/write?db=x", "--start", "later"},
	} {
		var out bytes.Buffer
		if code := run(context.Background(), args, nil, &out, &out); code != exitUsage {
			t.Errorf("%v: exit %d, want %d: %s", args, code, exitUsage, out.String())
		}
	}
}
