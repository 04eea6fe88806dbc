package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chronostream/chronostream/internal/canary"
)

const groupCanary = "Canary"

var canaryGroups = []string{groupServer, groupCanary, groupOps}

type canaryConfig struct {
	remote           remoteConfig
	chronicle        string
	rate             rate
	protocols        stringList
	duration         duration
	interval         duration
	grace            duration
	sweep            duration
	drain            duration
	metricsListen    string
	forward          string
	forwardTLS       choice
	forwardKey       string
	forwardUser      string
	forwardPassword  string
	forwardChronicle string
	otlpChronicle    string
	summary          choice
}

// rate is events per second: 100, 100/s, 6000/m or 360000/h.
type rate float64

func (r *rate) Set(s string) error {
	num, unit, _ := strings.Cut(strings.TrimSpace(s), "/")
	per := map[string]float64{"": 1, "s": 1, "m": 60, "h": 3600}[unit]
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || per == 0 || n <= 0 {
		return fmt.Errorf("invalid rate %q (want events per second, or N/s, N/m, N/h)", s)
	}
	*r = rate(n / per)
	return nil
}

func (r *rate) String() string { return strconv.FormatFloat(float64(*r), 'f', -1, 64) + "/s" }

func newCanaryFlags(c *canaryConfig) (*flag.FlagSet, []option) {
	var opts []option
	fs, add := newClientFlags("canary", &c.remote, &opts)
	c.chronicle = "canary"
	declare(fs, add, (*stringValue)(&c.chronicle), option{name: "chronicle", short: "r", metavar: "NAME", group: groupCanary,
		usage: "Chronicle of the NDJSON, WebSocket and line-protocol stories (named after the protocol);\nthe Forward tag and the OTLP service.name are NAME.forward and NAME.otlp."})
	c.rate = 10
	declare(fs, add, &c.rate, option{name: "rate", metavar: "N/s", group: groupCanary,
		usage: "Events per second through each protocol (N, N/s, N/m or N/h)."})
	declare(fs, add, &c.protocols, option{name: "protocols", metavar: "LIST", group: groupCanary, list: true,
		usage: "Protocols to write through, comma-separated or repeated: ndjson, ws, lineproto,\nforward, otlp. Default ndjson,ws,lineproto."})
	declare(fs, add, &c.duration, option{name: "duration", metavar: "DURATION", group: groupCanary,
		usage: "Stop writing after this long, then drain and print the summary. 0: until SIGINT/SIGTERM."})
	c.interval = duration(10 * time.Second)
	declare(fs, add, &c.interval, option{name: "interval", metavar: "DURATION", group: groupCanary,
		usage: "Log the counts this often."})
	c.grace = duration(10 * time.Second)
	declare(fs, add, &c.grace, option{name: "grace", metavar: "DURATION", group: groupCanary,
		usage: "An acknowledged event the read sweep has not found this long after is missing."})
	c.sweep = duration(5 * time.Second)
	declare(fs, add, &c.sweep, option{name: "sweep", metavar: "DURATION", group: groupCanary,
		usage: "Read the stories back through the read API this often."})
	c.drain = duration(2 * time.Minute)
	declare(fs, add, &c.drain, option{name: "drain", metavar: "DURATION", group: groupCanary,
		usage: "At the end, how long to wait for outstanding acknowledgements and reads."})
	declare(fs, add, (*stringValue)(&c.metricsListen), option{name: "metrics-listen", metavar: "ADDR", group: groupCanary,
		usage: "Serve the canary's Prometheus metrics on http://ADDR/metrics (e.g. 127.0.0.1:9105)."})
	c.forward = "127.0.0.1:24224"
	declare(fs, add, (*stringValue)(&c.forward), option{name: "forward", metavar: "ADDR", group: groupCanary,
		usage: "The server's Fluent Forward listener (host:port), for the forward protocol."})
	c.forwardTLS = choice{value: "auto", choices: []string{"auto", "true", "false"}}
	declare(fs, add, &c.forwardTLS, option{name: "forward-tls", metavar: "auto|true|false", group: groupCanary,
		usage: "Speak TLS to the Forward listener, with the --tls-* settings. auto: when --server is https\n(a server with TLS serves it on every listener)."})
	declare(fs, add, (*stringValue)(&c.forwardKey), option{name: "forward-shared-key", metavar: "KEY", group: groupCanary, secret: true,
		usage: "The server's --forward-shared-key: the forward protocol authenticates with the handshake\n(HELO, PING, PONG) and checks that the server knows the key too."})
	declare(fs, add, (*stringValue)(&c.forwardUser), option{name: "forward-username", metavar: "USER", group: groupCanary,
		usage: "User name for the handshake, when the server has --forward-username."})
	declare(fs, add, (*stringValue)(&c.forwardPassword), option{name: "forward-password", metavar: "PASSWORD", group: groupCanary, secret: true,
		usage: "Password of --forward-username."})
	c.forwardChronicle = "logs"
	declare(fs, add, (*stringValue)(&c.forwardChronicle), option{name: "forward-chronicle", metavar: "NAME", group: groupCanary,
		usage: "Where the server stores Forward records: its --forward-chronicle."})
	c.otlpChronicle = "otel"
	declare(fs, add, (*stringValue)(&c.otlpChronicle), option{name: "otlp-chronicle", metavar: "NAME", group: groupCanary,
		usage: "Where the server stores OTLP logs: its --otlp-chronicle."})
	c.summary = choice{value: "text", choices: []string{"text", "json"}}
	declare(fs, add, &c.summary, option{name: "summary", metavar: "text|json", group: groupCanary,
		usage: "Format of the summary printed on stdout at exit."})
	return fs, opts
}

func runCanary(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	c := &canaryConfig{}
	fs, opts := newCanaryFlags(c)
	pos, warnings, err := parseCommand("canary", fs, opts, &c.remote, args, environ)
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(stdout, `Usage: chronostream canary [flags]

Writes sequence-numbered events at a steady rate through one or more protocols
and reads them back through the live tail and the read API, counting per
protocol: sent, acknowledged, read back, missing (acknowledged, not found
--grace after), duplicated (allowed: after the canary resent an event whose
first attempt's outcome it could not know; unwanted: any other copy),
out of order, and the latency from writing to the tail. It survives the
server going away and coming back. It logs the counts every --interval,
serves them as Prometheus metrics on --metrics-listen, and prints a summary
at exit (SIGINT or --duration); the exit status is 1 if any acknowledged
event is missing or an unwanted duplicate was found.

    chronostream canary --server http://127.0.0.1:4318 --rate 100/s --metrics-listen 127.0.0.1:9105
    chronostream canary --protocols ndjson,ws,lineproto,forward,otlp --duration 10m

Against a server with TLS (a private CA), tokens and a Forward shared key:

    CHRONOSTREAM_TOKEN=... CHRONOSTREAM_FORWARD_SHARED_KEY=... chronostream canary \
        --server https://hub.example:4318 --tls-ca ca.pem --forward hub.example:24224 \
        --protocols ndjson,ws,lineproto,forward,otlp

Refused at start (a token without the read and write scopes, a certificate not
trusted) it exits 1 at once with the reason; a server that is down is waited for.
`, fs, opts, canaryGroups)
		return exitOK
	}
	if err == nil && len(pos) > 0 {
		err = fmt.Errorf("unexpected argument %q", pos[0])
	}
	var protocols []string
	for _, l := range c.protocols {
		for p := range strings.SplitSeq(l, ",") {
			if p = strings.TrimSpace(p); p != "" {
				protocols = append(protocols, p)
			}
		}
	}
	if err != nil {
		return usageError(stderr, "canary", err)
	}
	printWarnings(stderr, "canary", warnings)
	log := c.remote.logger(stderr)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cn, err := canary.New(ctx, canary.Config{Server: c.remote.servers[0], Token: c.remote.token, Chronicle: c.chronicle,
		Protocols: protocols, Rate: float64(c.rate), Duration: timeDuration(c.duration), Interval: timeDuration(c.interval),
		Grace: timeDuration(c.grace), Sweep: timeDuration(c.sweep), Drain: timeDuration(c.drain), ForwardAddr: c.forward,
		ForwardChronicle: c.forwardChronicle, OTLPChronicle: c.otlpChronicle, Logger: log, Registry: reg,
		TLS: c.remote.tls, ForwardTLS: c.forwardOverTLS(), ForwardSharedKey: c.forwardKey,
		ForwardUsername: c.forwardUser, ForwardPassword: c.forwardPassword})
	if err != nil {
		fmt.Fprintf(stderr, "chronostream canary: %v\n", err)
		return exitUsage
	}
	if c.metricsListen != "" {
		ln, err := net.Listen("tcp", c.metricsListen)
		if err != nil {
			fmt.Fprintf(stderr, "chronostream canary: --metrics-listen: %v\n", err)
			return exitUsage
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		log.Info("canary metrics", "addr", "http://"+ln.Addr().String()+"/metrics")
	}
	sum, err := cn.Run(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "chronostream canary: %s\n", strings.TrimPrefix(err.Error(), "canary: "))
		return exitFailure
	}
	printCanarySummary(stdout, c.summary.value, sum)
	unwanted := uint64(0)
	for _, n := range sum.Protocols {
		unwanted += n.DupUnwanted
	}
	if sum.Missing() > 0 || unwanted > 0 {
		return exitFailure
	}
	return exitOK
}

// forwardOverTLS resolves --forward-tls: auto follows the server's scheme.
func (c *canaryConfig) forwardOverTLS() bool {
	if c.forwardTLS.value == "auto" {
		return strings.HasPrefix(c.remote.servers[0], "https://")
	}
	return c.forwardTLS.value == "true"
}

func printCanarySummary(w io.Writer, format string, s canary.Summary) {
	if format == "json" {
		_ = json.NewEncoder(w).Encode(s)
		return
	}
	fmt.Fprintf(w, "canary run %s\n", s.RunID)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "protocol\tsent\tacked\ttail\tread\tmissing\tdup_allowed\tdup_unwanted\tout_of_order\ttail_missed\tresent\tabandoned\tp50\tp99\t")
	for _, p := range canary.Protocols {
		n, ok := s.Protocols[p]
		if !ok {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%v\t%v\t\n", p, n.Sent, n.Acked, n.TailSeen, n.ReadSeen,
			n.Missing, n.DupAllowed, n.DupUnwanted, n.OutOfOrder, n.TailMissed, n.Resent, n.Abandoned, s.P50[p], s.P99[p])
	}
	tw.Flush()
}
