package forward

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/chronostream/chronostream/internal/auth"
)

// DefaultRateWait is how long a message that asks for an ack may wait for
// its client's rate (Config.RateWait): well under the ack timeouts of
// Fluent Bit (its net.io_timeout, 60 s), Fluentd (ack_response_timeout,
// 190 s) and fluent-logger-golang (none by default), so a client rarely
// resends a chunk that is still waiting.
const DefaultRateWait = 5 * time.Second

// clients holds one limited writer per client address. A client's rate
// is one budget for all its connections, and outlives them: a client
// refused and disconnected while in debt gets the same debt back when it
// reconnects. An entry without connections is dropped once its balances
// are full again (a new one would admit no more), so the map holds the
// connected clients and those that paid their debt less than a sweep ago.
type clients struct {
	lim   auth.Limits
	mu    sync.Mutex
	m     map[string]*client
	swept time.Time
}

type client struct {
	who   *auth.Principal
	conns int
}

// sweepEvery bounds how often acquire looks for idle entries.
const sweepEvery = time.Second

func newClients(l auth.Limits) *clients {
	if l.EventsPerSecond <= 0 && l.BytesPerSecond <= 0 {
		return nil // no rate: no writer, nothing charged
	}
	l.MaxTails = 0
	return &clients{lim: l, m: make(map[string]*client)}
}

// acquire returns the writer of key for a new connection; the caller
// calls release(key) when that connection ends. A nil set limits nothing.
func (cs *clients) acquire(key string) *auth.Principal {
	if cs == nil {
		return nil
	}
	now := time.Now()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if now.Sub(cs.swept) >= sweepEvery {
		cs.swept = now
		for k, c := range cs.m {
			if c.conns == 0 && c.who.Idle(now) {
				delete(cs.m, k)
			}
		}
	}
	c := cs.m[key]
	if c == nil {
		c = &client{who: auth.LimitedWriter("forward client "+key, cs.lim)}
		cs.m[key] = c
	}
	c.conns++
	return c.who
}

func (cs *clients) release(key string) {
	if cs == nil {
		return
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if c := cs.m[key]; c != nil {
		c.conns--
		if c.conns == 0 && c.who.Idle(time.Now()) {
			delete(cs.m, key)
		}
	}
}

// clientKey is the address a client's rate is kept by: its IP, not its
// port (every connection of a host shares one budget). Forward has one
// username for all clients (--forward-username, like the shared key), so
// the user names no tenant; keyed by it, the rate would be one budget for
// every host, which one noisy host could use up for all.
func clientKey(a net.Addr) string {
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// pace holds a message of a client in debt until its rate admits it,
// reading nothing meanwhile: TCP slows the client down. A message that
// asks for an ack waits at most RateWait and is then refused — neither
// stored nor acknowledged, its connection closed — so that the client
// sends it again later (Fluent Bit and fluent-logger-golang resend a
// chunk without ack; Fluentd too). One without the chunk option waits for
// as long as the debt lasts: closing its connection would lose it without
// the client knowing. At shutdown the wait ends and the message is stored,
// as every whole message received is.
func (c *conn) pace(ack bool) error {
	if _, ok := c.who.Admit(time.Now()); ok {
		return nil
	}
	c.count(ReasonRatePaused, 1)
	// What the window holds was admitted: it does not wait for this one.
	if err := c.flush(); err != nil {
		return err
	}
	ctx := c.s.stopping
	if ack {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.s.cfg.RateWait)
		defer cancel()
	}
	if err := c.who.Pace(ctx); err != nil && c.s.stopping.Err() == nil {
		return fail(ReasonRateLimited, "the client's ingest rate is used up for longer than %v; the message is neither stored nor acknowledged", c.s.cfg.RateWait)
	}
	return nil
}
