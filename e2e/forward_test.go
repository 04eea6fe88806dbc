package e2e

import (
	"bufio"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"

	"github.com/chronostream/chronostream/internal/testutil"
)

// TestForwardKill9 sends records with fluent-logger-golang, each awaiting
// its ack (chunk/ack), while the server is killed with SIGKILL and
// restarted on the same data directory and port. A Forward ack means
// durable: every record the client saw acknowledged must be stored. A
// record whose Post failed is sent again, so it may be stored twice; none
// other may.
func TestForwardKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the server; skipped with -short")
	}
	bin := testutil.BuildBinary(t)
	data := t.TempDir()
	port := testutil.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	start := func() *testutil.Proc {
		return testutil.StartBinary(t, bin, "--data", data, "--forward", addr)
	}

	var (
		acked    atomic.Int64 // records 0..acked-1 are acknowledged
		mu       sync.Mutex
		retried  = map[int64]bool{} // records whose Post failed at least once
		stop     = make(chan struct{})
		finished = make(chan struct{})
	)
	go func() {
		defer close(finished)
		var l *fluent.Fluent
		for i := int64(0); ; {
			select {
			case <-stop:
				if l != nil {
					l.Close()
				}
				return
			default:
			}
			if l == nil {
				var err error
				l, err = fluent.New(fluent.Config{FluentHost: "127.0.0.1", FluentPort: port, RequestAck: true,
					MaxRetry: 1, RetryWait: 20, Timeout: 2 * time.Second, ReadTimeout: 5 * time.Second})
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
			}
			if err := l.Post("crash.fw", map[string]any{"i": i}); err != nil {
				mu.Lock()
				retried[i] = true
				mu.Unlock()
				l.Close()
				l = nil
				time.Sleep(20 * time.Millisecond)
				continue
			}
			i++
			acked.Store(i)
		}
	}()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	waitMore := func(from int64) {
		testutil.Eventually(t, 60*time.Second, func() bool { return acked.Load() > from+20 }, "records acknowledged after a restart")
	}
	for k := 0; k < 5; k++ {
		p := start()
		waitMore(acked.Load())
		time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond)
		p.Kill9()
		t.Logf("kill %d: %d records acknowledged", k+1, acked.Load())
	}
	p := start()
	waitMore(acked.Load())
	close(stop)
	<-finished
	n := acked.Load()

	seen := map[int64]int{}
	resp, err := http.Get(p.URL() + "/api/v1/chronicles/logs/stories/crash.fw/events?format=ndjson")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			Body struct {
				I *int64 `json:"i"`
			} `json:"body"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Body.I == nil {
			t.Fatalf("unexpected line %s (%v)", sc.Text(), err)
		}
		seen[*ev.Body.I]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	dups := 0
	for i := int64(0); i < n; i++ {
		switch c := seen[i]; {
		case c == 0:
			t.Fatalf("record %d was acknowledged but is not stored (%d acknowledged)", i, n)
		case c > 1 && !retried[i]:
			t.Fatalf("record %d is stored %d times although its one Post was acknowledged", i, c)
		case c > 1:
			dups += c - 1
		}
	}
	t.Logf("%d records acknowledged across 5 kills; %d resent after a failed Post stored twice", n, dups)
	if code := p.Stop(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}
