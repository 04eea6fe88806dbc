// Package cli is chronostream's command line: the subcommands and the wiring
// of flags, CHRONOSTREAM_* environment variables and the config file into
// the options of the components they start. cmd/chronostream only forwards
// signals and arguments here, so every command can be tested in-process.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
)

// Exit codes, following the flag package's convention that 2 means the
// command line (or its environment and config file) was wrong.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// Run runs the subcommand named by args[0] until it finishes or ctx is done,
// and returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return run(ctx, args, os.Environ(), stdout, stderr)
}

// run takes the environment as an argument so tests need not mutate the
// process environment.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return serve(ctx, rest, environ, stdout, stderr)
	case "agent":
		return runAgent(ctx, rest, environ, stdout, stderr)
	case "send":
		return runSend(ctx, rest, environ, os.Stdin, stdout, stderr)
	case "tail":
		return runTail(ctx, rest, environ, stdout, stderr)
	case "forward":
		return runForward(ctx, rest, environ, stdout, stderr)
	case "annotate":
		return runAnnotate(ctx, rest, environ, stdout, stderr)
	case "canary":
		return runCanary(ctx, rest, environ, stdout, stderr)
	case "token":
		return runToken(ctx, rest, environ, stdout, stderr)
	case "query":
		return runQuery(ctx, rest, environ, stdout, stderr)
	case "version", "--version", "-version":
		return version(stdout)
	case "help", "-h", "-help", "--help":
		return help(rest, environ, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "chronostream: unknown command %q\n\n", cmd)
		usage(stderr)
		return exitUsage
	}
}

func help(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stdout)
		return exitOK
	}
	switch args[0] {
	case "serve":
		return serve(context.Background(), []string{"--help"}, environ, stdout, stderr)
	case "agent":
		return runAgent(context.Background(), []string{"--help"}, environ, stdout, stderr)
	case "send":
		return runSend(context.Background(), []string{"--help"}, environ, nil, stdout, stderr)
	case "tail":
		return runTail(context.Background(), []string{"--help"}, environ, stdout, stderr)
	case "forward":
		return runForward(context.Background(), []string{"--help"}, environ, stdout, stderr)
	case "annotate":
		return runAnnotate(context.Background(), []string{"--help"}, environ, stdout, stderr)
	case "canary":
		return runCanary(context.Background(), []string{"--help"}, environ, stdout, stderr)
	case "token":
		return runToken(context.Background(), []string{"--help"}, environ, stdout, stderr)
	case "query":
		return runQuery(context.Background(), []string{"--help"}, environ, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "Usage: chronostream version\n\nPrints the version, the VCS revision it was built from and the Go version.")
		return exitOK
	default:
		fmt.Fprintf(stderr, "chronostream: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitUsage
	}
}

// usageError reports a wrong command line (or environment, or config file)
// of cmd, with where to read its usage, and returns the exit code for it.
func usageError(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "chronostream %s: %v\nRun 'chronostream %s --help' for usage.\n", cmd, err, cmd)
	return exitUsage
}

// printWarnings prints what parsing cmd's options found worth saying but
// not worth refusing, for the commands that have no logger.
func printWarnings(stderr io.Writer, cmd string, warnings []string) {
	for _, w := range warnings {
		fmt.Fprintf(stderr, "chronostream %s: warning: %s\n", cmd, w)
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `chronostream — a telemetry hub: one durable log of events, metrics and traces.

Usage:
  chronostream serve [flags]    run the server (see: chronostream serve --help)
  chronostream agent [flags]    send this host's metrics to a server
  chronostream send [FILE...]   send events from stdin or files (NDJSON, or --lines)
  chronostream tail [CHRONICLE [STORY]]  follow a story or a chronicle live
  chronostream forward -r CHRONICLE --influx-url URL  forward a chronicle to InfluxDB
  chronostream annotate -r CHRONICLE TEXT  record an annotation (--start/--end ID: a region)
  chronostream canary [flags]   write and read back test events, report losses
  chronostream token create|list|revoke  manage scoped tokens (admin API)
  chronostream query -d DB STATEMENT  run InfluxQL against a server and print the results
  chronostream version          print the version
  chronostream help [command]   show help for a command
`)
}
