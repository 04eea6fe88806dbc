package ingest_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
)

func clientSource(remote, agent, trace string) store.Source {
	h := http.Header{}
	h.Set("User-Agent", agent)
	h.Set("Traceparent", trace)
	h.Set("Content-Length", "123")
	h.Set("Authorization", "Token secret")
	return store.Source{Protocol: "influx-v1", Remote: remote, Headers: ingest.SourceHeaders(h), Chronicle: "m", Start: time.Now().UTC()}
}

// TestClientIdentity: a client is its protocol, target, host and
// identifying headers; ports and per-request headers do not tell clients
// apart, and are not kept.
func TestClientIdentity(t *testing.T) {
	c := ingest.NewClients(testutil.OpenStore(t, store.Options{}), nil)
	defer c.Close(context.Background())
	id := func(src store.Source) string {
		g := c.Open(&src)
		if err := g.Gate(); err != nil {
			t.Fatal(err)
		}
		if src.Headers["Traceparent"] != nil || src.Headers["Content-Length"] != nil || strings.Contains(src.Remote, ":") {
			t.Errorf("per-request details kept: %+v", src)
		}
		return src.ID
	}
	a := id(clientSource("10.0.0.1:1000", "Telegraf", "00-1"))
	if b := id(clientSource("10.0.0.1:2000", "Telegraf", "00-2")); b != a {
		t.Errorf("another port and trace id: %s, want %s", b, a)
	}
	other := clientSource("10.0.0.1:1000", "Telegraf", "00-1")
	other.Chronicle = "n"
	for name, src := range map[string]store.Source{
		"host":      clientSource("10.0.0.2:1000", "Telegraf", "00-1"),
		"agent":     clientSource("10.0.0.1:1000", "Vector", "00-1"),
		"chronicle": other,
	} {
		if b := id(src); b == a {
			t.Errorf("another %s: same client %s", name, b)
		}
	}
	if !strings.HasPrefix(a, "c=") || len(a) != 24 {
		t.Errorf("client id %q", a)
	}
}

// TestClientsAcrossNodes: two nodes' Clients on one log keep one record
// per client, whose counts add up what both saw.
func TestClientsAcrossNodes(t *testing.T) {
	st := testutil.OpenStore(t, store.Options{})
	nodes := []*ingest.Clients{ingest.NewClients(st, nil), ingest.NewClients(st, nil)}
	var wg sync.WaitGroup
	var id atomic.Value
	for _, c := range nodes {
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 25 {
					src := clientSource("10.0.0.1:1", "Telegraf", "x")
					g := c.Open(&src)
					if err := g.Gate(); err != nil {
						t.Error(err)
						return
					}
					id.Store(src.ID)
					if err := g.Finish(3, nil); err != nil {
						t.Error(err)
					}
				}
			}()
		}
	}
	wg.Wait()
	for _, c := range nodes {
		c.Close(context.Background())
	}
	src, err := st.GetSource(context.Background(), id.Load().(string))
	if err != nil {
		t.Fatal(err)
	}
	if src.Requests != 200 || src.Count != 600 {
		t.Errorf("record %+v: want 200 requests, 600 events", src)
	}
	all, err := st.Sources(context.Background(), "m", 0)
	if err != nil || len(all) != 1 {
		t.Errorf("%d records (%v), want 1", len(all), err)
	}
}

// flakyLog fails the next n record writes.
type flakyLog struct {
	*store.Store
	fail   atomic.Int32
	merges atomic.Int32
}

func (l *flakyLog) MergeSource(ctx context.Context, id string, merge func(store.Source, bool) store.Source) error {
	l.merges.Add(1)
	if l.fail.Add(-1) >= 0 {
		return errors.New("sources unavailable")
	}
	return l.Store.MergeSource(ctx, id, merge)
}

// TestClientRecordFails: a record the log did not take fails the gate (no
// event may name it), and the client's next request writes it again
// rather than trusting it.
func TestClientRecordFails(t *testing.T) {
	l := &flakyLog{Store: testutil.OpenStore(t, store.Options{})}
	l.fail.Store(1)
	c := ingest.NewClients(l, nil)
	defer c.Close(context.Background())
	src := clientSource("10.0.0.1:1", "Telegraf", "x")
	g := c.Open(&src)
	if err := g.Gate(); err == nil {
		t.Fatal("gate passed though the record was not written")
	}
	// Gated again (a Graphite connection's next window), it writes again.
	if err := g.Gate(); err != nil {
		t.Fatalf("the failed gate, gated again: %v", err)
	}
	first := g
	src = clientSource("10.0.0.1:1", "Telegraf", "x")
	if err := c.Open(&src).Gate(); err != nil {
		t.Fatalf("second request: %v", err)
	}
	if _, err := l.GetSource(context.Background(), src.ID); err != nil {
		t.Fatal(err)
	}
	// Known now: the next request does not wait for a write.
	before := l.merges.Load()
	g = c.Open(&src)
	if err := g.Gate(); err != nil || l.merges.Load() != before {
		t.Errorf("a known client's request wrote its record again (%v)", err)
	}
	// Finished last: its count could be written by the sweeper meanwhile.
	if err := first.Finish(0, nil); err != nil {
		t.Errorf("finished after its gate passed: %v", err)
	}
}

// TestClientRewrite: a record written longer ago than ingest.Rewrite is
// written again before a request names it, so that the bucket's TTL
// cannot remove it under new events.
func TestClientRewrite(t *testing.T) {
	l := &flakyLog{Store: testutil.OpenStore(t, store.Options{})}
	c := ingest.NewClients(l, nil)
	defer c.Close(context.Background())
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	c.SetClock(func() time.Time { return time.Unix(0, now.Load()) })
	src := clientSource("10.0.0.1:1", "Telegraf", "x")
	if err := c.Open(&src).Gate(); err != nil {
		t.Fatal(err)
	}
	before := l.merges.Load()
	now.Add(int64(ingest.Rewrite + time.Minute))
	l.fail.Store(1)
	if err := c.Open(&src).Gate(); err == nil || l.merges.Load() != before+1 {
		t.Errorf("a day-old record was not written again before use (err %v, %d writes)", err, l.merges.Load()-before)
	}
}

// TestClientIdentityBounded: only identifying headers tell clients apart.
// A header that changes with each request and is on no list (a proxy's
// request id such as Cloudflare's Cf-Ray, Heroku's X-Request-Start, or any
// X-Foo a client makes up) must not make a record per request: the server
// keeps every record in memory for 30 days.
func TestClientIdentityBounded(t *testing.T) {
	c := ingest.NewClients(testutil.OpenStore(t, store.Options{}), nil)
	defer c.Close(context.Background())
	id := func(set map[string]string) string {
		src := clientSource("10.0.0.1:1000", "Telegraf/1.30", "00-1")
		for k, v := range set {
			src.Headers[k] = []string{v}
		}
		g := c.Open(&src)
		if err := g.Gate(); err != nil {
			t.Fatal(err)
		}
		_ = g.Finish(0, nil)
		return src.ID
	}
	base := id(nil)
	for i, h := range []map[string]string{
		{"X-Foo": "1"}, {"X-Foo": "2"}, {"Cf-Ray": "8a1b2c3d4e5f-FRA"}, {"X-Request-Start": "t=1700000000123"},
		{"Content-Encoding": "gzip"}, {"Accept-Encoding": "gzip"},
	} {
		if got := id(h); got != base {
			t.Errorf("request %d with %v: client %s, want %s", i, h, got, base)
		}
	}
	// Who sent it: behind a proxy, the forwarded address (its port, which
	// some proxies add, changes per connection); a name the operator sets.
	proxied := id(map[string]string{"X-Forwarded-For": "192.0.2.7:5501"})
	if proxied == base || id(map[string]string{"X-Forwarded-For": "192.0.2.7:6602"}) != proxied {
		t.Errorf("X-Forwarded-For: %s, want one client per forwarded host, not per port", proxied)
	}
	if id(map[string]string{"X-Forwarded-For": "192.0.2.8"}) == proxied {
		t.Error("two forwarded hosts are one client")
	}
	named := id(map[string]string{"X-Chronostream-Client": "rack12"})
	if named == base || id(map[string]string{"X-Chronostream-Client": "rack13"}) == named {
		t.Error("X-Chronostream-Client does not tell clients apart")
	}
}

// TestClientRecordKeptWhileInUse: a request (or Graphite connection) can
// outlast IdleAfter and even Rewrite; while it runs, its client is not
// forgotten and its record is written again before it is Rewrite old, so
// the bucket's TTL cannot remove it under the events the request appends.
func TestClientRecordKeptWhileInUse(t *testing.T) {
	l := &flakyLog{Store: testutil.OpenStore(t, store.Options{})}
	c := ingest.NewClients(l, nil)
	defer c.Close(context.Background())
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	c.SetClock(func() time.Time { return time.Unix(0, now.Load()) })
	src := clientSource("10.0.0.1:1", "Telegraf", "x")
	long := c.Open(&src)
	if err := long.Gate(); err != nil {
		t.Fatal(err)
	}
	before := l.merges.Load()
	now.Add(int64(ingest.IdleAfter + time.Minute))
	c.Sweep()
	if c.Len() != 1 {
		t.Fatal("a client was forgotten while its request runs")
	}
	now.Add(int64(ingest.Rewrite))
	c.Sweep()
	c.Wait()
	if l.merges.Load() == before {
		t.Fatal("the record of a running request was not written again before it could expire")
	}
	if err := long.Finish(5, nil); err != nil {
		t.Fatal(err)
	}
	// Done: the client goes once idle.
	c.Wait()
	now.Add(int64(ingest.IdleAfter + time.Minute))
	c.Sweep()
	c.Wait()
	c.Sweep()
	if c.Len() != 0 {
		t.Errorf("%d clients kept after their last request ended and went idle", c.Len())
	}
}

// TestClientsCloseRacesRequests: requests that outlive the server's HTTP
// shutdown may open, gate and finish while Clients closes: nothing races,
// and a gate that passes still means a record in the log.
func TestClientsCloseRacesRequests(t *testing.T) {
	st := testutil.OpenStore(t, store.Options{})
	c := ingest.NewClients(st, nil)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 30 {
				src := clientSource("10.0.0.1:1", "Telegraf", "x")
				src.Headers["X-Chronostream-Client"] = []string{strings.Repeat("n", i*30+j)}
				g := c.Open(&src)
				if err := g.Gate(); err == nil {
					if _, err := st.GetSource(context.Background(), src.ID); err != nil {
						t.Errorf("gate passed, record %s: %v", src.ID, err)
					}
				}
				_ = g.Finish(1, nil)
			}
		}()
	}
	c.Close(context.Background())
	wg.Wait()
	c.Close(context.Background()) // twice is harmless
}
