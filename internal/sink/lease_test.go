package sink

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/testutil"
)

// recorders are the destinations of sinks of type "recorder", by the id in
// their settings.
var (
	recordersMu sync.Mutex
	recorders   = map[string]*recorder{}
)

func init() {
	Register("recorder", func(settings json.RawMessage, _ *slog.Logger) (Sink, error) {
		var s struct{ ID string }
		if err := json.Unmarshal(settings, &s); err != nil {
			return nil, err
		}
		recordersMu.Lock()
		defer recordersMu.Unlock()
		if recorders[s.ID] == nil {
			recorders[s.ID] = &recorder{}
		}
		return recorders[s.ID], nil
	})
}

func recorderConfig(name, id string) Config {
	return Config{Name: name, Type: "recorder", Chronicle: "c", BatchAge: Duration(time.Millisecond), Settings: json.RawMessage(`{"id":"` + id + `"}`)}
}

func (e *env) manager(t *testing.T, node, id string) *Manager {
	t.Helper()
	m, err := NewManager(ManagerConfig{State: e.state, Source: LocalSource{Store: e.store}, Node: node,
		LeaseTTL: 600 * time.Millisecond, Logger: testutil.Logger(t, slog.LevelWarn)}, []Config{recorderConfig("shared", id)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Two nodes configured with the same sink: only the lease holder delivers;
// when it stops, the other takes over from the committed cursor.
func TestLeaseOneNodeDelivers(t *testing.T) {
	e := newEnv(t)
	a := e.manager(t, "node-a", t.Name()+"a")
	a.Start(context.Background())
	first := e.append(t, "c", "s", metric(1), metric(2))
	testutil.Eventually(t, 10*time.Second, func() bool {
		st, _ := a.Status(context.Background(), "shared")
		return st.Cursor == first.Last
	}, "node a delivers")
	b := e.manager(t, "node-b", t.Name()+"b")
	b.Start(context.Background())
	t.Cleanup(func() { b.Close() })
	second := e.append(t, "c", "s", metric(3))
	testutil.Eventually(t, 10*time.Second, func() bool {
		st, _ := a.Status(context.Background(), "shared")
		return st.Cursor == second.Last
	}, "node a goes on delivering")
	if st, _ := b.Status(context.Background(), "shared"); st.State != "standby" || st.Node != "node-a" {
		t.Errorf("node b: %+v, want standby with node-a holding the lease", st)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	third := e.append(t, "c", "s", metric(4))
	testutil.Eventually(t, 10*time.Second, func() bool {
		st, _ := b.Status(context.Background(), "shared")
		return st.Cursor == third.Last && st.State == "running"
	}, "node b takes over")
	gotA, gotB := seqs(recorders[t.Name()+"a"].delivered()), seqs(recorders[t.Name()+"b"].delivered())
	want := []uint64{first.First, first.Last, second.First}
	if len(gotA) != 3 || gotA[0] != want[0] || gotA[2] != want[2] {
		t.Errorf("node a delivered %v, want %v", gotA, want)
	}
	if len(gotB) != 1 || gotB[0] != third.First {
		t.Errorf("node b delivered %v, want only %d (resumed from a's cursor)", gotB, third.First)
	}
}

// A holder that dies without releasing (kill -9) loses the lease when it
// expires.
func TestLeaseExpires(t *testing.T) {
	e := newEnv(t)
	dead := e.state.NewLease("x", "dead", time.Hour, slog.New(slog.DiscardHandler))
	dead.ttl = 300 * time.Millisecond
	if ok, err := dead.acquire(context.Background()); !ok || err != nil {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	alive := e.state.NewLease("x", "alive", 300*time.Millisecond, slog.New(slog.DiscardHandler))
	if ok, _ := alive.acquire(context.Background()); ok {
		t.Fatal("a live lease was taken over")
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		ok, _ := alive.acquire(context.Background())
		return ok
	}, "the expired lease is taken over")
	if ok, _ := dead.acquire(context.Background()); ok {
		t.Error("the old holder renewed a lease taken from it")
	}
	if h, _ := e.state.Holder(context.Background(), "x"); h != "alive" {
		t.Errorf("holder %q", h)
	}
}

// Pause, resume and a cursor reset go through the state bucket, so they
// reach the runner on whichever node holds the lease.
func TestPauseResumeAndReset(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t, "n", t.Name())
	m.Start(context.Background())
	t.Cleanup(func() { m.Close() })
	ctx := context.Background()
	status := func() Status { st, _ := m.Status(ctx, "shared"); return st }
	a := e.append(t, "c", "s", metric(1))
	testutil.Eventually(t, 10*time.Second, func() bool { return status().Cursor == a.Last }, "delivered")
	if _, err := m.SetPaused(ctx, "shared", true); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return status().State == "paused" }, "paused")
	b := e.append(t, "c", "s", metric(2))
	rec := recorders[t.Name()]
	if _, err := m.SetPaused(ctx, "shared", false); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return status().Cursor == b.Last }, "resumed")
	if c, err := m.SetCursor(ctx, "shared", "beginning", ""); err != nil || c.Seq != 0 {
		t.Fatalf("reset: %+v %v", c, err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return len(rec.delivered()) == 4 && status().Cursor == b.Last }, "redelivered from the beginning")
	got := seqs(rec.delivered())
	if got[0] != a.First || got[1] != b.First || got[2] != a.First || got[3] != b.First {
		t.Errorf("deliveries %v", got)
	}
	if _, err := m.SetCursor(ctx, "shared", "yesterday", ""); err == nil {
		t.Error("a bad position was accepted")
	}
	if _, err := m.SetPaused(ctx, "nope", true); err == nil {
		t.Error("pausing an unknown sink succeeded")
	}
	// A cursor kept for `chronostream forward`: no sink configured here.
	c, err := m.SetCursor(ctx, "remote-1", "now", "c")
	if err != nil || c.Chronicle != "c" || c.Seq < b.Last {
		t.Fatalf("forward's cursor: %+v %v", c, err)
	}
}
