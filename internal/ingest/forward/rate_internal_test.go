package forward

import (
	"context"
	"net"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/tinylib/msgp/msgp"

	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/obs"
	"github.com/chronostream/chronostream/internal/store"
	tu "github.com/chronostream/chronostream/internal/testutil"
)

// TestClientsKeepDebt: a client's rate is shared by its connections and
// outlives them while it is in debt (a reconnect does not reset it); once
// no connection holds it and its balances are full, it is dropped.
func TestClientsKeepDebt(t *testing.T) {
	if newClients(auth.Limits{MaxTails: 3}) != nil {
		t.Fatal("no rate: want no clients set")
	}
	cs := newClients(auth.Limits{EventsPerSecond: 1})
	a := cs.acquire("10.0.0.1")
	if b := cs.acquire("10.0.0.1"); b != a {
		t.Fatal("two connections of one address: two budgets")
	}
	if cs.acquire("10.0.0.2") == a {
		t.Fatal("two addresses share a budget")
	}
	a.Spend(1000, 0)
	cs.release("10.0.0.1")
	cs.release("10.0.0.1")
	if again := cs.acquire("10.0.0.1"); again != a {
		t.Fatal("an address in debt got a fresh budget on reconnecting")
	}
	cs.release("10.0.0.1")
	cs.release("10.0.0.2") // idle: dropped at once
	cs.mu.Lock()
	_, kept := cs.m["10.0.0.2"]
	cs.mu.Unlock()
	if kept {
		t.Fatal("an idle address without connections is kept")
	}
	// A sweep keeps the address still in debt (for 1,000 s).
	cs.swept = time.Now().Add(-2 * sweepEvery)
	cs.acquire("10.0.0.3")
	if cs.m["10.0.0.1"] == nil {
		t.Fatal("an address in debt was swept")
	}
	if k := clientKey(&net.TCPAddr{IP: net.ParseIP("::1"), Port: 24224}); k != "::1" {
		t.Fatalf("key %q, want the IP without the port", k)
	}
}

// TestRateWaitEndsAtShutdown: a chunk held for its client's rate when the
// server shuts down is stored and acknowledged, as every whole message
// received is, instead of holding the shutdown for the rest of its debt.
func TestRateWaitEndsAtShutdown(t *testing.T) {
	st := tu.OpenStore(t, store.Options{})
	m := obs.New()
	s, err := New(Config{Config: ingest.Config{Log: st, Metrics: m, Logger: tu.Logger(t, 0)},
		Rate: auth.Limits{EventsPerSecond: 0.1}, RateWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rd := msgp.NewReader(c)
	ack := func(chunk string) {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		v, err := rd.ReadIntf()
		if m, _ := v.(map[string]any); err != nil || m["ack"] != chunk {
			t.Fatalf("ack of %q: %#v, %v", chunk, v, err)
		}
	}
	send := func(chunk string) {
		t.Helper()
		if _, err := c.Write(benchChunk(10, chunk)); err != nil {
			t.Fatal(err)
		}
	}
	send("first") // admitted: 99 s of debt at 0.1 event/s
	ack("first")
	send("held")
	paused := m.IngestErrors.WithLabelValues(Protocol, ReasonRatePaused)
	tu.Eventually(t, 10*time.Second, func() bool {
		var v dto.Metric
		return paused.Write(&v) == nil && v.GetCounter().GetValue() >= 1
	}, "the second chunk held")
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	ack("held")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
