// Package testutil starts real things for tests: the server in-process, the
// built chronostream binary as a child process, and a separate nats-server.
// Every helper picks random ports and temporary directories and cleans up
// after the test, so tests can run in parallel next to a production server.
package testutil

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/server"
)

// RunServer starts a server on a random loopback port with its data in a
// temporary directory (unless opts set them), and shuts it down when the
// test ends. Its logs go to the test log.
func RunServer(t testing.TB, opts server.Options) *server.Server {
	t.Helper()
	if opts.HTTPAddr == "" {
		opts.HTTPAddr = "127.0.0.1:0"
	}
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(tLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	s, err := server.New(opts)
	if err != nil {
		t.Fatalf("testutil.RunServer: %v", err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("testutil.RunServer: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("testutil.RunServer: shutdown: %v", err)
		}
	})
	return s
}

// tLogWriter sends a component's logs to the test's log, so they show only
// for failing (or -v) tests.
type tLogWriter struct{ t testing.TB }

func (w tLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Eventually polls fn until it returns true, failing the test with msg if
// it has not after timeout. The timeout is a bound against hangs, not an
// assertion about speed: choose it generously.
func Eventually(t testing.TB, timeout time.Duration, fn func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		if fn() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %v: %s", timeout, msg)
		}
		time.Sleep(wait)
		if wait < 100*time.Millisecond {
			wait *= 2
		}
	}
}

// FreePort returns a loopback TCP port that was free a moment ago. Prefer
// listening on port 0 where the program allows it: another process can take
// the port before it is used.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testutil.FreePort: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
