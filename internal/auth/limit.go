package auth

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// ErrRateLimited is the error of a request refused because its token used
// up its rate; transports answer 429 with Retry-After (Status tells).
var ErrRateLimited = errors.New("rate limited")

// ErrTooManyTails refuses a tail beyond the token's MaxTails.
var ErrTooManyTails = errors.New("too many tails")

// Status is the HTTP status of a refusal: 429 for a limit, else 403.
func Status(err error) int {
	if errors.Is(err, ErrRateLimited) || errors.Is(err, ErrTooManyTails) {
		return 429
	}
	return 403
}

// Limits bound what one token may use; zero fields do not limit.
type Limits struct {
	// EventsPerSecond and BytesPerSecond bound the token's ingest (bytes
	// are event bodies as stored), with a burst of one second's worth.
	EventsPerSecond float64 `json:"events_per_second,omitempty"`
	BytesPerSecond  float64 `json:"bytes_per_second,omitempty"`
	// MaxTails bounds the token's concurrent live tails.
	MaxTails int `json:"max_tails,omitempty"`
}

// IsZero reports whether l limits nothing.
func (l Limits) IsZero() bool { return l == Limits{} }

// Limiter enforces a token's Limits. Ingest is admitted while the token
// is not in debt and charged after (in whole batches), so a request is
// never cut in the middle: nothing accepted is refused afterwards, and a
// large body may take the balance below zero, which the next requests wait
// out. It is shared by every request of the token (and is safe for
// concurrent use).
type Limiter struct {
	mu            sync.Mutex
	lim           Limits
	events, bytes float64 // balances, at most one second's worth
	last          time.Time
	tails         atomic.Int32
}

func newLimiter(l Limits) *Limiter {
	return &Limiter{lim: l, events: l.EventsPerSecond, bytes: l.BytesPerSecond, last: time.Now()}
}

func (l *Limiter) setLimits(lim Limits) {
	l.mu.Lock()
	l.lim = lim
	l.mu.Unlock()
}

// refill adds what the rates earned since last; l.mu is held.
func (l *Limiter) refill(now time.Time) {
	dt := now.Sub(l.last).Seconds()
	l.last = now
	if dt <= 0 {
		return
	}
	l.events = min(l.events+dt*l.lim.EventsPerSecond, l.lim.EventsPerSecond)
	l.bytes = min(l.bytes+dt*l.lim.BytesPerSecond, l.lim.BytesPerSecond)
}

// Admit reports whether an ingest request may start now, and if not, how
// long until it may.
func (l *Limiter) Admit(now time.Time) (time.Duration, bool) {
	if l == nil {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(now)
	wait := 0.0
	if l.lim.EventsPerSecond > 0 && l.events < 0 {
		wait = max(wait, -l.events/l.lim.EventsPerSecond)
	}
	if l.lim.BytesPerSecond > 0 && l.bytes < 0 {
		wait = max(wait, -l.bytes/l.lim.BytesPerSecond)
	}
	if wait == 0 {
		return 0, true
	}
	return time.Duration(math.Ceil(wait*1e3)) * time.Millisecond, false
}

// Spend charges events and bytes stored.
func (l *Limiter) Spend(events, bytes int) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.refill(time.Now())
	if l.lim.EventsPerSecond > 0 {
		l.events -= float64(events)
	}
	if l.lim.BytesPerSecond > 0 {
		l.bytes -= float64(bytes)
	}
	l.mu.Unlock()
}

// startTail counts a tail starting; it is false past MaxTails. The caller
// calls endTail when a true one ends.
func (l *Limiter) startTail() bool {
	if l == nil {
		return true
	}
	n := l.tails.Add(1)
	l.mu.Lock()
	max := l.lim.MaxTails
	l.mu.Unlock()
	if max > 0 && int(n) > max {
		l.tails.Add(-1)
		return false
	}
	return true
}

func (l *Limiter) endTail() {
	if l != nil {
		l.tails.Add(-1)
	}
}

// Spend charges p's token for events and bytes stored (nil p or a token
// without limits: nothing).
func (p *Principal) Spend(events, bytes int) {
	if p != nil {
		p.limiter.Spend(events, bytes)
	}
}

// Pace waits until p's token is out of ingest debt, or ctx ends (its
// error). A transport that admits a connection once and then takes
// messages for as long as it stays open (a WebSocket) calls it before each
// batch: the guard's Admit at the upgrade alone would let one connection
// ingest at any rate. While it waits the transport reads nothing more, so
// TCP slows the client down (that connection's back-pressure signal).
func (p *Principal) Pace(ctx context.Context) error {
	if p == nil || p.limiter == nil {
		return nil
	}
	for {
		wait, ok := p.limiter.Admit(time.Now())
		if ok {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// LimitedWriter is a write-only Principal held to l, for a client that
// authenticates outside tokens (a Fluent Forward host): its transport
// charges it with Spend and waits out its debt with Pace, as for a token.
func LimitedWriter(name string, l Limits) *Principal {
	return &Principal{Name: name, Scopes: ScopeWrite, limiter: newLimiter(l)}
}

// Admit reports whether p may ingest now and, if not, how long until it
// may (nil p or no limits: always).
func (p *Principal) Admit(now time.Time) (time.Duration, bool) {
	if p == nil {
		return 0, true
	}
	return p.limiter.Admit(now)
}

// Idle reports whether p's ingest balances are back at a full second's
// worth: a new LimitedWriter would admit no more, so one kept per client
// may be dropped without giving that client a second burst.
func (p *Principal) Idle(now time.Time) bool {
	if p == nil || p.limiter == nil {
		return true
	}
	l := p.limiter
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(now)
	return l.events >= l.lim.EventsPerSecond && l.bytes >= l.lim.BytesPerSecond
}
