package connlimit

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	tu "github.com/chronostream/chronostream/internal/testutil"
)

// server accepts on a capped listener and answers each connection it
// keeps with "ok\n", then holds it open until the client closes it.
func server(t *testing.T, l Limits, m *Metrics) string {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tu.ServeEach(t, Wrap(raw, l, m, "test"), func(c net.Conn) {
		_, _ = c.Write([]byte("ok\n"))
		_, _ = io.Copy(io.Discard, c)
	})
	return raw.Addr().String()
}

// dial connects from the loopback address from and reports whether the
// server kept the connection (answered "ok") or closed it.
func dial(t *testing.T, addr, from string) (net.Conn, bool) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 3)
	_, err = io.ReadFull(c, b)
	return c, err == nil && string(b) == "ok\n"
}

func TestCaps(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	addr := server(t, Limits{Max: 2, PerIP: 1}, m)
	a, ok := dial(t, addr, "127.0.0.1")
	if !ok {
		t.Fatal("first connection refused")
	}
	if c, ok := dial(t, addr, "127.0.0.1"); ok {
		t.Error("a second connection from one IP kept at PerIP 1")
	} else {
		c.Close()
	}
	b, ok := dial(t, addr, "127.0.0.2")
	if !ok {
		t.Fatal("another IP's connection refused")
	}
	defer b.Close()
	if c, ok := dial(t, addr, "127.0.0.3"); ok {
		t.Error("a third connection kept at Max 2")
	} else {
		c.Close()
	}
	// Counted before the slot is freed: the redials below may be refused
	// (and counted) until the server has seen the close.
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == "reason" {
					got[lp.GetValue()] = mt.GetCounter().GetValue()
				}
			}
		}
	}
	if got["max_connections"] != 1 || got["max_connections_per_ip"] != 1 {
		t.Errorf("refusals counted %v, want one of each", got)
	}
	a.Close()
	tu.Eventually(t, 10*time.Second, func() bool {
		c, ok := dial(t, addr, "127.0.0.1")
		c.Close()
		return ok
	}, "a slot freed by a closed connection is taken again")
}

func TestNoCaps(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if Wrap(raw, Limits{}, nil, "x") != raw {
		t.Error("zero limits wrapped the listener")
	}
}
