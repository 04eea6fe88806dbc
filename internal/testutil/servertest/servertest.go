// Package servertest runs the whole server in-process for tests. It is apart
// from testutil because it imports the server, which imports every package
// whose tests use testutil.
package servertest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil"
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
		opts.Logger = testutil.Logger(t, slog.LevelWarn)
	}
	s, err := server.New(opts)
	if err != nil {
		t.Fatalf("servertest.RunServer: %v", err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("servertest.RunServer: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("servertest.RunServer: shutdown: %v", err)
		}
	})
	return s
}
