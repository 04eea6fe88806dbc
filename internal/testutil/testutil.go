// Package testutil starts real things for tests: the log on an embedded NATS
// server, the built chronostream binary as a child process, and a separate
// nats-server. The in-process server is in servertest: testutil must not
// import the server, so that the packages the server is built from can use
// testutil in their own tests (internal/store excepted: testutil imports it).
// Every helper picks random ports and temporary directories and cleans up
// after the test, so tests can run in parallel next to a production server.
package testutil

import (
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// Logger returns a logger that writes records at level and above to the
// test's log, so they show only for failing (or -v) tests.
func Logger(t testing.TB, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(tLogWriter{t}, &slog.HandlerOptions{Level: level}))
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

// ServeEach serves every connection ln accepts with fn, in a goroutine of
// its own, closing the connection when fn returns, until ln is closed
// (at the test's end).
func ServeEach(t testing.TB, ln net.Listener, fn func(net.Conn)) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fn(c)
			}()
		}
	}()
}
