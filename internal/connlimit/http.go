package connlimit

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// DefaultHTTPLimits leave room for thousands of agents (Telegraf,
// OpenTelemetry exporters, InfluxDB clients) each holding a few keep-alive
// connections, plus browsers' SSE and WebSocket tails, and for a client
// pool or a reverse proxy whose connections all come from one address.
var DefaultHTTPLimits = Limits{Max: 8192, PerIP: 1024}

// Answering a connection over a cap costs a goroutine, reading one
// request (and over TLS, a handshake): answerBudget bounds how many are
// answered at once, answerTimeout how long each may take. Beyond the
// budget, connections over a cap are closed on accept, as Wrap does.
const (
	answerBudget  = 64
	answerTimeout = 5 * time.Second
	// retryAfter is the Retry-After of the answer, in seconds: slots free
	// as other connections end, and agents retry within seconds.
	retryAfter = 5
)

// WrapHTTP caps the listener of srv as Wrap does, except that a connection
// over a cap is not closed at once but served one answer: srv reads its
// request and answers 503 Service Unavailable with Retry-After and
// Connection: close, as nginx's limit_conn does. HTTP clients read a 503
// as "retry later" (OpenTelemetry exporters, InfluxDB clients, Telegraf
// log it as such), where a bare close looks like a broken network. The
// refusal is counted when the connection is accepted, whether it is
// answered or closed.
//
// WrapHTTP sets srv's ConnContext and wraps its Handler: call it before
// srv serves.
func WrapHTTP(ln net.Listener, l Limits, m *Metrics, name string, srv *http.Server) net.Listener {
	if l.Max <= 0 && l.PerIP <= 0 {
		return ln
	}
	prev := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if prev != nil {
			ctx = prev(ctx, c)
		}
		if r := refusedConn(c); r != nil {
			ctx = context.WithValue(ctx, refusalKey{}, r.reason)
		}
		return ctx
	}
	srv.Handler = answerRefused(srv.Handler)
	return &listener{Listener: ln, lim: l, m: m, name: name, perIP: map[string]int{}, answers: answerBudget}
}

type refusalKey struct{}

// answerRefused answers every request on a connection accepted over a cap.
func answerRefused(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reason, ok := r.Context().Value(refusalKey{}).(string)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Connection", "close")
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		http.Error(w, "too many connections ("+reason+"); retry later", http.StatusServiceUnavailable)
	})
}

// takeAnswer reserves one of the answer budget's slots.
func (l *listener) takeAnswer() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.answering >= l.answers {
		return false
	}
	l.answering++
	return true
}

func (l *listener) releaseAnswer() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.answering--
}

// refused is a connection over a cap, kept only to be answered: it
// holds no slot of the caps, and lives answerTimeout at most whatever
// deadlines its server sets.
type refused struct {
	net.Conn
	reason  string
	end     time.Time
	release func()
}

func newRefused(c net.Conn, reason string, release func()) *refused {
	r := &refused{Conn: c, reason: reason, end: time.Now().Add(answerTimeout), release: sync.OnceFunc(release)}
	_ = c.SetDeadline(r.end)
	return r
}

func (r *refused) Close() error {
	err := r.Conn.Close()
	r.release()
	return err
}

func (r *refused) SetDeadline(t time.Time) error { return r.Conn.SetDeadline(r.bound(t)) }

func (r *refused) SetReadDeadline(t time.Time) error { return r.Conn.SetReadDeadline(r.bound(t)) }

func (r *refused) SetWriteDeadline(t time.Time) error { return r.Conn.SetWriteDeadline(r.bound(t)) }

// bound is t, or the connection's end if t is later or none.
func (r *refused) bound(t time.Time) time.Time {
	if t.IsZero() || t.After(r.end) {
		return r.end
	}
	return t
}

// refusedConn finds a refused connection under c's wrappers (TLS).
func refusedConn(c net.Conn) *refused {
	for {
		switch v := c.(type) {
		case *refused:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
}
