package canary

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chronostream/chronostream/internal/server"
	tu "github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

func runCanary(t *testing.T, cfg Config) (*Canary, Summary) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = tu.Logger(t, 0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

// TestEveryProtocolAgainstARealServer runs the canary through all five
// protocols with their real clients against an in-process server: every
// event written is acknowledged, read back by the tail and by the sweep,
// once, in order.
func TestEveryProtocolAgainstARealServer(t *testing.T) {
	s := servertest.RunServer(t, server.Options{AutoCreate: true, ForwardAddr: "127.0.0.1:0"})
	reg := prometheus.NewRegistry()
	_, sum := runCanary(t, Config{Server: "http://" + s.Addr(), Protocols: Protocols, Rate: 40,
		Duration: 2 * time.Second, Sweep: 500 * time.Millisecond, ForwardAddr: s.ForwardAddr(), Registry: reg,
		TLS: &tls.Config{MinVersion: tls.VersionTLS12}}) // as the command passes, whatever the scheme
	for _, p := range Protocols {
		n := sum.Protocols[p]
		t.Logf("%s: %+v p50=%v p99=%v", p, n, sum.P50[p], sum.P99[p])
		if n.Sent < 40 {
			t.Errorf("%s: sent %d events in 2 s at 40/s", p, n.Sent)
		}
		if n.Acked != n.Sent || n.Abandoned != 0 {
			t.Errorf("%s: %d sent, %d acknowledged, %d abandoned", p, n.Sent, n.Acked, n.Abandoned)
		}
		if n.ReadSeen != n.Acked || n.TailSeen != n.Acked || n.Missing != 0 {
			t.Errorf("%s: %d acknowledged, %d read back, %d in the tail, %d missing", p, n.Acked, n.ReadSeen, n.TailSeen, n.Missing)
		}
		if n.DupAllowed+n.DupUnwanted+n.OutOfOrder != 0 {
			t.Errorf("%s: duplicates %d+%d, out of order %d on a healthy server", p, n.DupAllowed, n.DupUnwanted, n.OutOfOrder)
		}
		if got := counterValue(t, reg, "chronostream_canary_acked_total", p); got != float64(n.Acked) {
			t.Errorf("%s: metric acked = %v, summary %d", p, got, n.Acked)
		}
		if sum.P99[p] <= 0 {
			t.Errorf("%s: no tail latency measured", p)
		}
	}
	if sum.Missing() != 0 {
		t.Errorf("missing %d", sum.Missing())
	}
}

func counterValue(t *testing.T, reg *prometheus.Registry, name, proto string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if mf.GetName() == name && l.GetName() == "protocol" && l.GetValue() == proto {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("metric %s{protocol=%q} not gathered", name, proto)
	return 0
}

// TestCountsWhatTheServerLost removes acknowledged events with the
// chronicle's retention, a real loss as far as the canary can tell: it
// reports them missing.
func TestCountsWhatTheServerLost(t *testing.T) {
	s := servertest.RunServer(t, server.Options{AutoCreate: true})
	base := "http://" + s.Addr()
	// Keep only the newest events: whatever the sweep has not read when
	// retention runs (about every second) is gone.
	req, _ := http.NewRequest(http.MethodPut, base+"/api/v1/chronicles/canary", strings.NewReader(`{"retention":{"max_events":5}}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("PUT retention: %s", resp.Status)
	}
	_, sum := runCanary(t, Config{Server: base, Protocols: []string{"lineproto"}, Rate: 50, Duration: 3 * time.Second,
		Sweep: 2 * time.Second, Grace: time.Second, Drain: 3 * time.Second})
	n := sum.Protocols["lineproto"]
	t.Logf("%+v", n)
	if n.Missing == 0 || sum.Missing() != n.Missing {
		t.Errorf("retention removed acknowledged events, but the canary reports %d missing", n.Missing)
	}
	if n.Missing+n.ReadSeen != n.Acked {
		t.Errorf("%d missing + %d read back != %d acknowledged", n.Missing, n.ReadSeen, n.Acked)
	}
}

// TestCountsACopy stores a second copy of an event the canary wrote once:
// an unwanted duplicate, counted once.
func TestCountsACopy(t *testing.T) {
	s := servertest.RunServer(t, server.Options{AutoCreate: true})
	base := "http://" + s.Addr()
	const run = "copyrun"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := New(ctx, Config{Server: base, Protocols: []string{"ndjson"}, Rate: 20, Duration: 3 * time.Second,
		Sweep: 500 * time.Millisecond, RunID: run, Logger: tu.Logger(t, 0)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan Summary)
	go func() {
		sum, err := c.Run(ctx)
		if err != nil {
			t.Error(err)
		}
		done <- sum
	}()
	tu.Eventually(t, 30*time.Second, func() bool { return c.Counts()["ndjson"].Acked > 0 }, "no event acknowledged")
	resp, err := http.Post(base+"/?chronicle=canary&story=ndjson", "application/x-ndjson",
		strings.NewReader(fmt.Sprintf(`{"canary":%q,"proto":"ndjson","seq":1,"sent":1}`+"\n", run)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /: %s", resp.Status)
	}
	sum := <-done
	n := sum.Protocols["ndjson"]
	t.Logf("%+v", n)
	if n.DupUnwanted != 1 || n.DupAllowed != 0 {
		t.Errorf("one copy stored, duplicates counted: %d unwanted, %d allowed", n.DupUnwanted, n.DupAllowed)
	}
	if n.Missing != 0 || n.ReadSeen != n.Acked {
		t.Errorf("%d missing, %d read back of %d acknowledged", n.Missing, n.ReadSeen, n.Acked)
	}
}

// TestSurvivesARestart stops the server under the canary and starts it
// again on the same address and data: writes are retried, the tail resumes
// after its cursor, and nothing acknowledged is missing. (The soak test
// does the same with kill -9 of the binary.)
func TestSurvivesARestart(t *testing.T) {
	opts := server.Options{AutoCreate: true, DataDir: t.TempDir(),
		HTTPAddr:    fmt.Sprintf("127.0.0.1:%d", tu.FreePort(t)),
		ForwardAddr: fmt.Sprintf("127.0.0.1:%d", tu.FreePort(t)), Logger: tu.Logger(t, 0)}
	start := func() *server.Server {
		s, err := server.New(opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := start()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := New(ctx, Config{Server: "http://" + opts.HTTPAddr, Protocols: Protocols, Rate: 30, Duration: 6 * time.Second,
		Sweep: 500 * time.Millisecond, ForwardAddr: opts.ForwardAddr, Logger: tu.Logger(t, 0)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan Summary, 1)
	go func() {
		sum, err := c.Run(ctx)
		if err != nil {
			t.Error(err)
		}
		done <- sum
	}()
	tu.Eventually(t, 30*time.Second, func() bool {
		for _, n := range c.Counts() {
			if n.TailSeen == 0 {
				return false
			}
		}
		return true
	}, "every protocol's events in the tail before the restart")
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	if err := s.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	scancel()
	s = start()
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		s.Shutdown(sctx)
	}()
	sum := <-done
	for _, p := range Protocols {
		n := sum.Protocols[p]
		t.Logf("%s: %+v", p, n)
		if n.Acked != n.Sent || n.ReadSeen != n.Acked || n.Missing != 0 || n.DupUnwanted != 0 {
			t.Errorf("%s across a restart: %+v", p, n)
		}
		if n.TailSeen != n.Sent {
			t.Errorf("%s: the tail delivered %d of %d events across the restart", p, n.TailSeen, n.Sent)
		}
	}
}
