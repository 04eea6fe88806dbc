package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/chronostream/chronostream/internal/sink"
	"github.com/chronostream/chronostream/internal/sink/remote"
)

// forward runs one InfluxDB sink in this process, reading a chronicle from
// a running server (ChronoStream's client_reader_stream_influx): the
// server keeps the cursor under the sink's name, so a restarted forward
// resumes exactly where it stopped.

const groupForward = "Forward"

type forwardConfig struct {
	remote      remoteConfig
	chronicle   string
	stories     stringList
	kinds       stringList
	tags        keyValues
	name        string
	start       choice
	windowSec   int64
	influxURL   string
	influxToken string
	batchEvents int
	batchAge    duration
}

var forwardGroups = []string{groupServer, groupForward, groupOps}

func newForwardFlags(c *forwardConfig) (*flag.FlagSet, []option) {
	var opts []option
	fs, add := newClientFlags("forward", &c.remote, &opts)
	declare(fs, add, (*stringValue)(&c.chronicle), option{name: "chronicle", short: "r", metavar: "NAME", group: groupForward,
		usage: "Chronicle to forward (required)."})
	declare(fs, add, &c.stories, option{name: "stories", short: "s", metavar: "NAME", group: groupForward, list: true,
		usage: "Stories to forward: names or patterns such as cpu_* (repeatable or comma-separated).\nDefault: every story."})
	declare(fs, add, &c.kinds, option{name: "kind", metavar: "KIND", group: groupForward, list: true,
		usage: "Only events of this kind (repeatable: any of them)."})
	declare(fs, add, &c.tags, option{name: "tag", metavar: "KEY=VALUE", group: groupForward, list: true,
		usage: "Only events with this tag (repeatable: all of them)."})
	declare(fs, add, (*stringValue)(&c.name), option{name: "name", metavar: "NAME", group: groupForward,
		usage: "The sink's name: the server keeps its cursor under it (default forward-CHRONICLE).\nTwo forwards with one name would share, and fight over, one cursor."})
	c.start = choice{value: "beginning", choices: []string{"beginning", "now"}}
	declare(fs, add, &c.start, option{name: "start", metavar: "beginning|now", group: groupForward,
		usage: "Where a sink without a cursor starts."})
	fs.Int64Var(&c.windowSec, "window-sec", 0, "")
	add(option{name: "window-sec", metavar: "SECONDS", group: groupForward,
		usage: "On first start (no cursor yet), begin at the first event at or after now - SECONDS."})
	declare(fs, add, (*stringValue)(&c.influxURL), option{name: "influx-url", metavar: "URL", group: groupForward,
		usage: "InfluxDB write URL; its path picks the API: http://HOST:8086/write?db=DB[&rp=RP]\n(1.x; user:password@ in the URL for basic auth) or\nhttp://HOST:8086/api/v2/write?org=ORG&bucket=BUCKET (2.x)."})
	declare(fs, add, (*stringValue)(&c.influxToken), option{name: "influx-token", metavar: "TOKEN", group: groupForward, secret: true,
		usage: "InfluxDB token (Authorization: Token). Also read from INFLUX_TOKEN. Never printed."})
	c.batchEvents = sink.DefaultBatchEvents
	fs.IntVar(&c.batchEvents, "batch-events", c.batchEvents, "")
	add(option{name: "batch-events", metavar: "N", group: groupForward,
		usage: "Events per write, at most."})
	c.batchAge = duration(sink.DefaultBatchAge)
	declare(fs, add, &c.batchAge, option{name: "batch-age", metavar: "DURATION", group: groupForward,
		usage: "How long a batch waits for more events before it is written."})
	return fs, opts
}

func runForward(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	c := &forwardConfig{}
	fs, opts := newForwardFlags(c)
	pos, warnings, err := parseCommand("forward", fs, opts, &c.remote, args, environ)
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(stdout, `Usage: chronostream forward -r CHRONICLE --influx-url URL [flags]

Forwards a chronicle of a running server to InfluxDB, at least once and in log
order, as the server's own sinks do (docs/sinks.md): new events are pushed to it,
refused events go to the dead-letter story _deadletter/NAME with the reason, and
the server keeps the cursor under --name, so a restarted forward resumes exactly.

    chronostream forward -r host-1 -s cpu_usage,memory_usage,network_usage --window-sec 300 \
        --influx-url 'http://127.0.0.1:8086/write?db=telemetry'
`, fs, opts, forwardGroups)
		return exitOK
	}
	if err == nil && len(pos) > 0 {
		err = fmt.Errorf("unexpected argument %q (forward takes only flags)", pos[0])
	}
	if err == nil && c.influxToken == "" {
		c.influxToken = lookupEnv(environ, "INFLUX_TOKEN")
	}
	var cfg sink.Config
	if err == nil {
		cfg, err = c.sinkConfig()
	}
	if err != nil {
		return usageError(stderr, "forward", err)
	}
	log := c.remote.logger(stderr)
	for _, w := range warnings {
		log.Warn(w)
	}
	snk, err := sink.New(cfg.Type, cfg.Settings, log)
	if err != nil {
		fmt.Fprintf(stderr, "chronostream forward: %v\n", err)
		return exitUsage
	}
	defer snk.Close()
	// No overall timeout: the tail is a long-lived stream. Reads and
	// cursor writes end with ctx; a dead server is noticed by TCP.
	tr := c.remote.transport()
	tr.ResponseHeaderTimeout = 30 * time.Second
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 15 * time.Second}).DialContext
	srv := &remote.Server{Base: strings.TrimRight(c.remote.servers[0], "/"), Token: c.remote.token, Client: c.remote.httpClient(tr), Log: log}
	r, err := sink.NewRunner(cfg, snk, srv, srv, nil, "forward/"+cfg.Name, log)
	if err != nil {
		fmt.Fprintf(stderr, "chronostream forward: %v\n", err)
		return exitUsage
	}
	log.Info("forwarding", "sink", cfg.Name, "chronicle", cfg.Chronicle, "server", srv.Base, "stories", strings.Join(cfg.Stories, ","))
	r.Run(ctx)
	st := r.Status()
	log.Info("forward stopped", "sink", cfg.Name, "cursor", st.Cursor, "delivered", st.Delivered, "deadlettered", st.DeadLettered)
	return exitOK
}

// sinkConfig turns the flags into the sink's configuration.
func (c *forwardConfig) sinkConfig() (sink.Config, error) {
	if c.chronicle == "" {
		return sink.Config{}, errors.New("which chronicle? (-r CHRONICLE)")
	}
	if c.influxURL == "" {
		return sink.Config{}, errors.New("--influx-url is required")
	}
	name := c.name
	if name == "" {
		name = "forward-" + c.chronicle
	}
	settings, err := json.Marshal(map[string]any{"url": c.influxURL, "token": c.influxToken})
	if err != nil {
		return sink.Config{}, err
	}
	cfg := sink.Config{Name: name, Type: "influxdb", Chronicle: c.chronicle, Kinds: c.kinds, Tags: c.tags,
		Start: c.start.value, WindowSec: c.windowSec, BatchEvents: c.batchEvents, BatchAge: sink.Duration(c.batchAge),
		Settings: settings}
	for _, s := range c.stories {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				cfg.Stories = append(cfg.Stories, p)
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	// Building the sink validates the URL without contacting InfluxDB.
	if _, err := sink.New(cfg.Type, cfg.Settings, nil); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func lookupEnv(environ []string, key string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}
