package auth

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestLimiterDebt: requests are admitted while the token is not in debt;
// a large one may go below zero, and the next waits until the rate has
// paid the debt back.
func TestLimiterDebt(t *testing.T) {
	l := newLimiter(Limits{EventsPerSecond: 10, BytesPerSecond: 1000})
	now := l.last
	if _, ok := l.Admit(now); !ok {
		t.Fatal("a fresh limiter refused")
	}
	l.Spend(30, 100) // 20 events into debt: 2 s at 10/s
	wait, ok := l.Admit(l.last)
	if ok || wait < 1900*time.Millisecond || wait > 2100*time.Millisecond {
		t.Fatalf("in debt: wait %v, ok %v; want about 2s", wait, ok)
	}
	if _, ok := l.Admit(l.last.Add(2100 * time.Millisecond)); !ok {
		t.Fatal("still refused after the debt is paid")
	}
	l.Spend(0, 3000) // bytes: 2 s of debt
	if _, ok := l.Admit(l.last.Add(time.Second)); ok {
		t.Fatal("bytes debt admitted")
	}
	// The balance never grows past a second's worth (the burst).
	l2 := newLimiter(Limits{EventsPerSecond: 10})
	l2.refill(l2.last.Add(time.Hour))
	if l2.events != 10 {
		t.Fatalf("burst %v, want 10", l2.events)
	}
}

func TestLimiterTails(t *testing.T) {
	l := newLimiter(Limits{MaxTails: 2})
	if !l.startTail() || !l.startTail() || l.startTail() {
		t.Fatal("MaxTails 2: want two tails, not a third")
	}
	l.endTail()
	if !l.startTail() {
		t.Fatal("a tail ended: another may start")
	}
	var none *Limiter
	if _, ok := none.Admit(time.Now()); !ok || !none.startTail() {
		t.Fatal("no limiter limits nothing")
	}
	none.Spend(1, 1)
	none.endTail()
}

// TestPace: a token out of debt passes at once; one in debt waits, and the
// wait ends with its context (a server shutting down, a closed connection).
func TestPace(t *testing.T) {
	p := &Principal{Name: "t", limiter: newLimiter(Limits{EventsPerSecond: 1})}
	if err := p.Pace(context.Background()); err != nil {
		t.Fatalf("out of debt: %v", err)
	}
	p.Spend(1000, 0) // about 1,000 s of debt
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Pace(ctx) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("in debt, canceled: %v, want context.Canceled", err)
	}
	if err := (*Principal)(nil).Pace(context.Background()); err != nil {
		t.Fatalf("nil principal: %v", err)
	}
}

// TestIdle: a writer is idle only once its balances are full again, so
// dropping and recreating it gives no extra burst.
func TestIdle(t *testing.T) {
	p := LimitedWriter("host", Limits{EventsPerSecond: 10, BytesPerSecond: 100})
	start := p.limiter.last
	if !p.Idle(start) {
		t.Fatal("a fresh writer is not idle")
	}
	p.Spend(5, 0) // half the burst: not in debt, not idle either
	if _, ok := p.Admit(start); !ok || p.Idle(start) {
		t.Fatal("half the burst spent: want admitted and not idle")
	}
	if !p.Idle(start.Add(600 * time.Millisecond)) {
		t.Fatal("not idle once the burst refilled")
	}
	if (*Principal)(nil).Idle(start) != true {
		t.Fatal("nil principal not idle")
	}
}
