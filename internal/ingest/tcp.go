package ingest

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/store"
)

// What the TCP transports (Graphite, Fluent Forward) share: an accept loop
// that rides out resource exhaustion, a set of live connections that
// shutdown can stop and wait for, and the stop signal each connection reads
// its deadlines from.

// StopSignal tells a connection when shutdown wants it gone. The zero
// value is not stopping.
type StopSignal struct {
	// at (Unix ns) is set before stopping, so a reader that sees stopping
	// sees at.
	at       atomic.Int64
	stopping atomic.Bool
}

// Stop asks for the connection to be gone by at.
func (s *StopSignal) Stop(at time.Time) {
	s.at.Store(at.UnixNano())
	s.stopping.Store(true)
}

// Stopping reports whether Stop was called.
func (s *StopSignal) Stopping() bool { return s.stopping.Load() }

// Deadline returns the earlier of dl (zero: none) and the stop time.
func (s *StopSignal) Deadline(dl time.Time) time.Time {
	if s.stopping.Load() {
		at := time.Unix(0, s.at.Load())
		if dl.IsZero() || at.Before(dl) {
			dl = at
		}
	}
	return dl
}

// Arm sets a read deadline with set from deadline(). Stop may run
// concurrently: if it did so between our reading of the signal and our
// setting of the deadline, ours would overwrite its deadline, so look again
// after setting it.
func (s *StopSignal) Arm(set func(time.Time) error, deadline func() time.Time) {
	before := s.stopping.Load()
	_ = set(deadline())
	if !before && s.stopping.Load() {
		_ = set(deadline())
	}
}

// Stopper is a live connection: Stop asks it to finish by at (reading
// what its sender already sent, storing it, then closing).
type Stopper interface{ Stop(at time.Time) }

// ConnSet tracks the live connections of a listener.
type ConnSet struct {
	mu      sync.Mutex
	conns   map[Stopper]struct{}
	closing bool
	wg      sync.WaitGroup
}

// Go runs serve for c in its own goroutine, tracked until it returns. It
// returns false, without running serve, once Close has begun.
func (s *ConnSet) Go(c Stopper, serve func()) bool {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return false
	}
	if s.conns == nil {
		s.conns = map[Stopper]struct{}{}
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		serve()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	return true
}

// Add tracks a goroutine that is not a connection (an accept loop, a UDP
// reader) so that Wait waits for it too.
func (s *ConnSet) Add(run func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		run()
	}()
}

// Close refuses new connections and asks every live one to stop by at.
func (s *ConnSet) Close(at time.Time) {
	s.mu.Lock()
	s.closing = true
	live := make([]Stopper, 0, len(s.conns))
	for c := range s.conns {
		live = append(live, c)
	}
	s.mu.Unlock()
	for _, c := range live {
		c.Stop(at)
	}
}

// Wait waits until every tracked goroutine has returned, or ctx ends; then
// it calls giveUp (which must make them return soon, e.g. by canceling the
// context their durability waits use) and waits for them anyway.
func (s *ConnSet) Wait(ctx context.Context, giveUp func()) error {
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		giveUp()
		<-done
		return ctx.Err()
	}
}

// AcceptLoop accepts connections on ln until it is closed, handing each to
// handle. A listener deadline also ends it (closing ln): only shutdown sets
// one, to take what is in the backlog before it stops. Other accept errors
// (out of file descriptors and the like) are logged through warn and
// retried with a backoff rather than in a spin.
func AcceptLoop(ln net.Listener, warn *ThrottledLogger, what string, handle func(net.Conn)) {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if IsTimeout(err) {
				ln.Close()
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			warn.Warn(what+": accept failed", "err", err)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		handle(c)
	}
}

// IsTimeout reports whether err is a deadline's.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// StoreReason labels a failed append for metrics.
func StoreReason(err error) string {
	switch {
	case errors.Is(err, store.ErrNoChronicle):
		return "no_chronicle"
	case errors.Is(err, store.ErrInvalidName):
		return "invalid_name"
	case errors.Is(err, auth.ErrForbidden):
		return "forbidden"
	case errors.Is(err, store.ErrTooLarge):
		return "event_too_large"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "store_unavailable"
}
