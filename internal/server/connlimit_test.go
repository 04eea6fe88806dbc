package server_test

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/connlimit"
	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

// TestTCPConnectionCaps: the server's Graphite and Forward listeners apply
// the per-IP cap: a second connection from one address is closed at once
// (the reader sees EOF, not silence), the first stays open, and the
// refusal is counted per listener on /metrics.
func TestTCPConnectionCaps(t *testing.T) {
	s := servertest.RunServer(t, server.Options{GraphiteAddr: "127.0.0.1:0", ForwardAddr: "127.0.0.1:0",
		ConnLimits: connlimit.Limits{PerIP: 1}})
	graphite, _ := s.GraphiteAddr()
	// closed waits up to wait for c to be closed by the server; an open
	// connection (nothing to read) times out instead.
	closed := func(c net.Conn, wait time.Duration) bool {
		_ = c.SetReadDeadline(time.Now().Add(wait))
		_, err := c.Read(make([]byte, 1))
		return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(fmtErr(err), "reset")
	}
	for name, addr := range map[string]string{"graphite": graphite, "forward": s.ForwardAddr()} {
		first, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		second, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if !closed(second, 10*time.Second) {
			t.Errorf("%s: a second connection from one IP stayed open at PerIP 1", name)
		}
		if closed(first, 200*time.Millisecond) {
			t.Errorf("%s: the first connection was closed", name)
		}
		first.Close()
		second.Close()
	}
	_, metrics := scopeClient{t, "http://" + s.Addr()}.do("GET", "/metrics", "", nil, nil)
	for _, l := range []string{"forward", "graphite"} {
		want := `chronostream_tcp_connections_refused_total{listener="` + l + `",reason="max_connections_per_ip"} 1`
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
