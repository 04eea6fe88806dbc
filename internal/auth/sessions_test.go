package auth

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/chronostream/chronostream/internal/natsd"
	"github.com/chronostream/chronostream/internal/testutil"
)

// TestSessions: two stores on one bucket (two nodes of a cluster): a
// session opened on one acts on the other, ends on both at logout, and
// an expired one does not act and is deleted at the next login.
func TestSessions(t *testing.T) {
	ns, err := natsd.Start(natsd.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	open := func() *Store {
		nc, err := ns.Connect() // in-process: the server listens on no port
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		s, err := OpenStore(context.Background(), js, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	ctx := context.Background()
	a, b := open(), open()
	ta, tb := New(nil), New(nil)
	ta.UseStore(a)
	tb.UseStore(b)
	_, secret, err := a.Create(ctx, Request{Name: "ui", Scopes: ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	id, err := a.CreateSession(ctx, secret, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if p := ta.LookupSession(id); p == nil || p.Name != "ui" {
		t.Fatalf("session on its node: %+v", p)
	}
	if ta.LookupSession(secret) != nil || ta.LookupSession("") != nil {
		t.Fatal("a token or nothing taken as a session id")
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return tb.LookupSession(id) != nil }, "the session on the other node")
	if err := b.EndSession(ctx, id); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return ta.LookupSession(id) == nil }, "the logout on the first node")

	old, err := a.CreateSession(ctx, secret, -time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ta.LookupSession(old) != nil {
		t.Fatal("an expired session acts")
	}
	if _, err := a.CreateSession(ctx, secret, time.Hour); err != nil {
		t.Fatal(err)
	}
	a.mu.RLock()
	_, kept := a.sessions[hashOf(old)]
	a.mu.RUnlock()
	if kept {
		t.Error("an expired session was not pruned at the next login")
	}
	if _, err := a.kv.Get(ctx, sessionPrefix+hashOf(old)); err == nil {
		t.Error("an expired session is still in the bucket")
	}
	// One token's logins end its oldest sessions beyond its share.
	first, err := a.CreateSession(ctx, secret, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for range MaxSessionsPerToken {
		if _, err := a.CreateSession(ctx, secret, 2*time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if ta.LookupSession(first) != nil {
		t.Error("the token's oldest session outlived its share of sessions")
	}
	a.mu.RLock()
	n := len(a.sessions)
	a.mu.RUnlock()
	if n != MaxSessionsPerToken {
		t.Errorf("%d sessions of one token, want %d", n, MaxSessionsPerToken)
	}
	if a.Len() != 1 || len(a.List()) != 1 {
		t.Errorf("sessions counted as tokens: Len %d, List %v", a.Len(), a.List())
	}
}
