// Command chronostream is the telemetry hub: see internal/cli for its
// subcommands and README.md for how to run it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/chronostream/chronostream/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		// After the first signal starts a graceful shutdown, restore the
		// default handlers so that a second Ctrl-C kills a stuck process.
		<-ctx.Done()
		stop()
	}()
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
