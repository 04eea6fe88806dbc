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
	if err := c.Open(&src).Gate(); err == nil {
		t.Fatal("gate passed though the record was not written")
	}
	src = clientSource("10.0.0.1:1", "Telegraf", "x")
	if err := c.Open(&src).Gate(); err != nil {
		t.Fatalf("second request: %v", err)
	}
	if _, err := l.GetSource(context.Background(), src.ID); err != nil {
		t.Fatal(err)
	}
	// Known now: the next request does not wait for a write.
	before := l.merges.Load()
	g := c.Open(&src)
	if err := g.Gate(); err != nil || l.merges.Load() != before {
		t.Errorf("a known client's request wrote its record again (%v)", err)
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
