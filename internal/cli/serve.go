package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/chronostream/chronostream/internal/server"
)

// shutdownTimeout bounds the graceful drain: in-flight ingest is finished
// and acknowledged, tails are ended; after this, the process exits anyway.
const shutdownTimeout = 30 * time.Second

func serve(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	c, err := parseServe(args, environ)
	if errors.Is(err, flag.ErrHelp) {
		printServeHelp(stdout)
		return exitOK
	}
	if err != nil {
		return usageError(stderr, "serve", err)
	}
	log := newLogger(stderr, c)
	for _, w := range c.warnings {
		log.Warn(w)
	}
	if c.server.RelaxedSync {
		if c.server.NATSURL != "" {
			log.Warn("--sync relaxed has no effect with --nats: the NATS server's own sync_interval decides when writes are fsynced")
		} else {
			log.Warn("--sync relaxed: events are acknowledged before they are fsynced; an OS crash or power loss can lose acknowledged events")
		}
	}

	opts := c.server
	opts.Logger = log
	opts.Version = releaseVersion()
	srv, err := server.New(opts)
	if err != nil {
		log.Error("invalid configuration", "err", err)
		return exitUsage
	}
	if err := srv.Start(ctx); err != nil {
		log.Error("cannot start", "err", err)
		return exitFailure
	}

	code := exitOK
	select {
	case <-ctx.Done():
		log.Info("shutting down: draining in-flight requests", "timeout", shutdownTimeout)
	case err := <-srv.Err():
		log.Error("listener failed; shutting down", "err", err)
		code = exitFailure
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("shutdown did not complete", "err", err)
		code = exitFailure
	}
	return code
}

func newLogger(w io.Writer, c *serveConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.logLevel.value)) // validated by its choice
	ho := &slog.HandlerOptions{Level: level}
	if c.logFormat.value == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

func printServeHelp(w io.Writer) {
	c := &serveConfig{}
	fs, opts := newServeFlags(c)
	fmt.Fprintf(w, `Usage: chronostream serve [flags]

Runs chronostream: the durable log (embedded NATS JetStream, or --nats) and every
listener, until SIGINT or SIGTERM, then drains in-flight requests and exits.

Every flag can also be set by its environment variable (shown below) or by a key
of the same name in the --config file, e.g. in YAML:

    data: /var/lib/chronostream
    http: 0.0.0.0:4318
    token: [secret-1, secret-2]

Precedence: flag, then environment variable, then config file, then default.
Sizes take units (32MiB, 1GB); durations take Go units or days (90m, 30d).
`)
	printOptions(w, fs, opts, groupOrder)
}

// printOptions documents a command's options, group by group, with each
// one's default and environment variable.
func printOptions(w io.Writer, fs *flag.FlagSet, opts []option, groups []string) {
	for _, g := range groups {
		fmt.Fprintf(w, "\n%s:\n", g)
		for _, o := range opts {
			if o.group != g {
				continue
			}
			if o.short != "" {
				fmt.Fprintf(w, "  -%s, --%s %s\n", o.short, o.name, o.metavar)
			} else {
				fmt.Fprintf(w, "  --%s %s\n", o.name, o.metavar)
			}
			for _, line := range strings.Split(o.usage, "\n") {
				fmt.Fprintf(w, "        %s\n", line)
			}
			var extra []string
			if def := fs.Lookup(o.name).DefValue; def != "" {
				if o.metavar == "DIR" || o.metavar == "ADDR" || o.metavar == "NAME" {
					def = strconv.Quote(def) // so that default "default" reads as a value
				}
				extra = append(extra, "default "+def)
			}
			extra = append(extra, "env "+envName(o.name))
			fmt.Fprintf(w, "        (%s)\n", strings.Join(extra, "; "))
		}
	}
}
