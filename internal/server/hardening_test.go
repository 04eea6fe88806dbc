package server_test

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

// TestExposureOptOutsAreLoud: every opt-out of the loopback rule is a
// warning in the log of each start (New runs at every start), and
// without it, listening beyond loopback is refused: HTTP without tokens,
// Graphite (no authentication at all), Forward without a shared key.
func TestExposureOptOutsAreLoud(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts server.Options
		want string // in the error if refused, else in the warning
		ok   bool
	}{
		{"http", server.Options{HTTPAddr: "0.0.0.0:0"}, "--insecure-no-auth", false},
		{"http opted out", server.Options{HTTPAddr: "0.0.0.0:0", InsecureNoAuth: true}, "INSECURE: listening beyond loopback with no authentication", true},
		{"graphite", server.Options{GraphiteAddr: "0.0.0.0:0"}, "--graphite-allow-remote", false},
		{"graphite opted in", server.Options{GraphiteAddr: "0.0.0.0:0", GraphiteAllowRemote: true}, "Graphite plaintext listens beyond loopback with no authentication", true},
		{"graphite with tokens", server.Options{GraphiteAddr: "0.0.0.0:0", Tokens: []string{"t"}}, "--graphite-allow-remote", false},
		{"forward", server.Options{ForwardAddr: "0.0.0.0:0"}, "--forward-shared-key", false},
		{"forward opted out", server.Options{ForwardAddr: "0.0.0.0:0", InsecureNoAuth: true}, "INSECURE: Fluent Forward listens beyond loopback", true},
		{"vivo", server.Options{VivoAddr: "0.0.0.0:0"}, "Vivo", false},
	} {
		var log testutil.LockedBuffer
		o := tc.opts
		if o.HTTPAddr == "" {
			o.HTTPAddr = "127.0.0.1:0"
		}
		o.DataDir = t.TempDir()
		o.Logger = slog.New(slog.NewTextHandler(&log, nil))
		_, err := server.New(o)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.ok && !strings.Contains(log.String(), "level=WARN") || tc.ok && !strings.Contains(log.String(), tc.want):
			t.Errorf("%s: the log lacks a warning %q:\n%s", tc.name, tc.want, log.String())
		case !tc.ok && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err = %v, want a refusal naming %q", tc.name, err, tc.want)
		}
	}
}

// TestSlowHeadersCut: a client that never finishes its request headers
// (slowloris) is disconnected by the HTTP and Vivo listeners, instead of
// holding a connection for ever. The wait is the servers' header timeout
// (10 s); the test fails if the connection is still open after 60 s.
func TestSlowHeadersCut(t *testing.T) {
	s := servertest.RunServer(t, server.Options{VivoAddr: "127.0.0.1:0"})
	var wg sync.WaitGroup
	for name, addr := range map[string]string{"http": s.Addr(), "vivo": s.VivoAddr()} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			if _, err := io.WriteString(c, "GET /health HTTP/1.1\r\nHost: chronostream\r\nX-Slow: "); err != nil {
				t.Error(err)
				return
			}
			_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
			if _, err := io.ReadAll(c); errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("%s: a request whose headers never end still holds its connection after 60 s", name)
			}
		}()
	}
	wg.Wait()
}
