package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/chronostream/chronostream/internal/agent"
)

type agentConfig struct {
	remote    remoteConfig
	chronicle string
	duration  seconds
	interval  seconds
	hostname  string
	tags      keyValues

	inclIf, exclIf, inclMount, exclMount, inclDev, exclDev stringList

	hostProc, hostSys, hostRoot string

	spool        string
	spoolMax     byteSize
	spoolSegment byteSize
	flushTimeout duration
	retryMax     duration
}

var agentGroups = []string{groupServer, groupAgent, groupSelect, groupHost, groupSpool, groupOps}

func newAgentFlags(c *agentConfig) (*flag.FlagSet, []option) {
	var opts []option
	fs, add := newClientFlags("agent", &c.remote, &opts)

	declare(fs, add, (*stringValue)(&c.chronicle), option{name: "chronicle", short: "r", metavar: "NAME", group: groupAgent,
		usage: "Chronicle the stories go to (default: the host name, as ChronoStream's client_writer)."})
	declare(fs, add, &c.duration, option{name: "duration", short: "d", metavar: "SECONDS", group: groupAgent,
		usage: "Stop after this long (seconds, or a Go duration such as 10m); 0 runs until SIGINT or SIGTERM."})
	c.interval = seconds(5 * time.Second)
	declare(fs, add, &c.interval, option{name: "interval", short: "i", metavar: "SECONDS", group: groupAgent,
		usage: "Sampling interval (seconds, fractions allowed, or a Go duration)."})
	declare(fs, add, (*stringValue)(&c.hostname), option{name: "hostname", metavar: "NAME", group: groupAgent,
		usage: "Value of the host tag of every event (default: the host name)."})
	declare(fs, add, &c.tags, option{name: "tag", metavar: "KEY=VALUE", group: groupAgent, list: true,
		usage: "Tag added to every event (repeatable), e.g. --tag dc=eu-1 --tag role=db."})

	declare(fs, add, &c.inclIf, option{name: "include-interface", metavar: "PATTERN", group: groupSelect, list: true,
		usage: "Sample only network interfaces matching this shell pattern (repeatable), e.g. eth*."})
	declare(fs, add, &c.exclIf, option{name: "exclude-interface", metavar: "PATTERN", group: groupSelect, list: true,
		usage: "Skip interfaces matching this pattern (repeatable). Default, when neither is given: lo."})
	declare(fs, add, &c.inclMount, option{name: "include-mount", metavar: "PATTERN", group: groupSelect, list: true,
		usage: "Report disk usage only of mount points matching this pattern (repeatable), e.g. /data*.\nDefault: every physical file system."})
	declare(fs, add, &c.exclMount, option{name: "exclude-mount", metavar: "PATTERN", group: groupSelect, list: true,
		usage: "Skip mount points matching this pattern (repeatable), e.g. /boot*."})
	declare(fs, add, &c.inclDev, option{name: "include-device", metavar: "PATTERN", group: groupSelect, list: true,
		usage: "Report disk I/O only of block devices matching this pattern (repeatable), e.g. nvme*."})
	declare(fs, add, &c.exclDev, option{name: "exclude-device", metavar: "PATTERN", group: groupSelect, list: true,
		usage: "Skip block devices matching this pattern (repeatable). Default, when neither is given:\nloop* and ram*."})

	declare(fs, add, (*stringValue)(&c.hostProc), option{name: "host-proc", metavar: "DIR", group: groupHost,
		usage: "The host's /proc when the agent runs in a container (e.g. /host/proc, with the host's\n/proc mounted there). Default: $HOST_PROC, else /proc (or HOST-ROOT/proc)."})
	declare(fs, add, (*stringValue)(&c.hostSys), option{name: "host-sys", metavar: "DIR", group: groupHost,
		usage: "The host's /sys (e.g. /host/sys). Default: $HOST_SYS, else /sys (or HOST-ROOT/sys)."})
	declare(fs, add, (*stringValue)(&c.hostRoot), option{name: "host-root", metavar: "DIR", group: groupHost,
		usage: "The host's / (e.g. /host, mounted read-only): disk usage is measured at DIR/MOUNTPOINT,\nand /proc and /sys default to DIR/proc and DIR/sys."})

	declare(fs, add, (*stringValue)(&c.spool), option{name: "spool", metavar: "DIR", group: groupSpool,
		usage: "Directory of the spool: samples wait there, on disk, until the server acknowledges them.\nIt also keeps the agent's stream id. One agent per directory. Default: the user cache\ndirectory's chronostream/agent/CHRONICLE (e.g. ~/.cache/chronostream/agent/web-1)."})
	c.spoolMax = 64 << 20
	declare(fs, add, &c.spoolMax, option{name: "spool-max-bytes", metavar: "SIZE", group: groupSpool,
		usage: "Bound of the spool. When the server is unreachable long enough to fill it, the oldest\nsamples are dropped (logged, and counted in the exit summary)."})
	declare(fs, add, &c.spoolSegment, option{name: "spool-segment-bytes", metavar: "SIZE", group: groupSpool,
		usage: "Size of the spool's segment files, the unit in which old samples are dropped (default an\neighth of --spool-max-bytes, at most 8MiB)."})
	c.flushTimeout = duration(5 * time.Second)
	declare(fs, add, &c.flushTimeout, option{name: "flush-timeout", metavar: "DURATION", group: groupSpool,
		usage: "On stop, how long to keep sending the spool; what is left is sent at the next start."})
	c.retryMax = duration(5 * time.Second)
	declare(fs, add, &c.retryMax, option{name: "retry-max", metavar: "DURATION", group: groupSpool,
		usage: "Longest wait between attempts to reach an unreachable server (exponential backoff with\njitter from 200ms)."})
	return fs, opts
}

func runAgent(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	c := &agentConfig{}
	fs, opts := newAgentFlags(c)
	pos, warnings, err := parseCommand("agent", fs, opts, &c.remote, args, environ)
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(stdout, `Usage: chronostream agent [flags]

Samples this host's CPU (per core and total), memory, network, disk usage, disk
I/O and load every --interval and writes them to a chronostream server as metric
events in the stories cpu_usage, memory_usage, network_usage, disk_usage, disk_io
and load of one chronicle. Samples are spooled on disk until acknowledged, so a
server outage or restart loses nothing (up to --spool-max-bytes). Stops on
SIGINT or SIGTERM (or after --duration), sending what is spooled first.

ChronoStream's client_writer flags work as they did:
    chronostream agent -c agent.yaml -r grafana_chronicle -d 120 -i 5
`, fs, opts, agentGroups)
		return exitOK
	}
	if err == nil && len(pos) > 0 {
		err = fmt.Errorf("unexpected argument %q (agent takes only flags)", pos[0])
	}
	if err != nil {
		return usageError(stderr, "agent", err)
	}
	log := c.remote.logger(stderr)
	for _, w := range warnings {
		log.Warn(w)
	}
	o := agent.Options{
		Servers:           c.remote.servers,
		Token:             c.remote.token,
		HTTPClient:        c.remote.httpClient(nil),
		Chronicle:         c.chronicle,
		Interval:          time.Duration(c.interval),
		Duration:          time.Duration(c.duration),
		Hostname:          c.hostname,
		Tags:              c.tags,
		Interfaces:        agent.Filter{Include: c.inclIf, Exclude: c.exclIf},
		Mounts:            agent.Filter{Include: c.inclMount, Exclude: c.exclMount},
		Devices:           agent.Filter{Include: c.inclDev, Exclude: c.exclDev},
		HostProc:          c.hostProc,
		HostSys:           c.hostSys,
		HostRoot:          c.hostRoot,
		SpoolDir:          c.spool,
		SpoolMaxBytes:     int64(c.spoolMax),
		SpoolSegmentBytes: int64(c.spoolSegment),
		FlushTimeout:      time.Duration(c.flushTimeout),
		MaxBackoff:        time.Duration(c.retryMax),
		Logger:            log,
	}
	if o.Interval <= 0 {
		fmt.Fprintln(stderr, "chronostream agent: --interval must be positive")
		return exitUsage
	}
	if o.SpoolDir == "" {
		name := o.Chronicle
		if name == "" {
			if name, err = os.Hostname(); err != nil {
				fmt.Fprintf(stderr, "chronostream agent: %v\n", err)
				return exitFailure
			}
		}
		cache, err := os.UserCacheDir()
		if err != nil {
			fmt.Fprintf(stderr, "chronostream agent: no --spool and no cache directory: %v\n", err)
			return exitUsage
		}
		o.SpoolDir = filepath.Join(cache, "chronostream", "agent", filepath.Base(filepath.Clean("/"+name)))
	}
	a, err := agent.New(o)
	if err != nil {
		fmt.Fprintf(stderr, "chronostream agent: %v\n", err)
		return exitUsage
	}
	if err := a.Run(ctx); err != nil {
		log.Error("agent failed", "err", err)
		return exitFailure
	}
	return exitOK
}
