// Package connlimit caps the connections a TCP listener (Fluent Forward,
// Graphite, HTTP) holds: in all, and from one IP address. A connection over
// a cap is closed as soon as it is accepted, before anything is read from
// it (on HTTP listeners, answered 503 first: WrapHTTP), and counted; the
// ones already open are not disturbed. Without caps, one misbehaving
// client could exhaust the server's file descriptors and lock out every
// other protocol.
package connlimit

import (
	"net"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Limits are the caps; zero fields do not cap.
type Limits struct {
	Max   int // connections open at once on the listener
	PerIP int // connections open at once from one IP address
}

// DefaultLimits leave room for many Fluent Bit and collectd senders while
// bounding what one address can hold.
var DefaultLimits = Limits{Max: 4096, PerIP: 512}

// Metrics counts refused connections by listener and reason (max_connections,
// max_connections_per_ip).
type Metrics struct{ refused *prometheus.CounterVec }

// NewMetrics registers the counter on reg (nil: not exported).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{refused: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chronostream_tcp_connections_refused_total",
		Help: "TCP connections refused on accept because a cap was reached (closed, or on HTTP listeners answered 503), by listener (forward, graphite, http, vivo) and reason (max_connections, max_connections_per_ip).",
	}, []string{"listener", "reason"})}
	if reg != nil {
		reg.MustRegister(m.refused)
	}
	return m
}

// Wrap returns ln with the caps of l applied; name labels its refusals.
func Wrap(ln net.Listener, l Limits, m *Metrics, name string) net.Listener {
	if l.Max <= 0 && l.PerIP <= 0 {
		return ln
	}
	return &listener{Listener: ln, lim: l, m: m, name: name, perIP: map[string]int{}}
}

type listener struct {
	net.Listener
	lim  Limits
	m    *Metrics
	name string

	mu    sync.Mutex
	open  int
	perIP map[string]int
	// answers is how many connections over a cap may be open at once to
	// be answered (WrapHTTP; 0: none, they are closed on accept);
	// answering is how many are.
	answers   int
	answering int
}

// Accept returns the next connection within the caps, closing those over.
func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := hostOf(c.RemoteAddr())
		if reason := l.take(ip); reason != "" {
			if l.m != nil {
				l.m.refused.WithLabelValues(l.name, reason).Inc()
			}
			if l.takeAnswer() {
				return newRefused(c, reason, l.releaseAnswer), nil
			}
			c.Close()
			continue
		}
		return &conn{Conn: c, release: sync.OnceFunc(func() { l.release(ip) })}, nil
	}
}

func (l *listener) take(ip string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.lim.Max > 0 && l.open >= l.lim.Max:
		return "max_connections"
	case l.lim.PerIP > 0 && l.perIP[ip] >= l.lim.PerIP:
		return "max_connections_per_ip"
	}
	l.open++
	l.perIP[ip]++
	return ""
}

func (l *listener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
}

func hostOf(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// conn gives its slot back when closed (once, however often Close is called).
type conn struct {
	net.Conn
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
