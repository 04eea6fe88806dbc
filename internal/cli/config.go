package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"gopkg.in/yaml.v3"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/connlimit"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/ingest/forward"
	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/vivo"
)

const envPrefix = "CHRONOSTREAM_"

// serveConfig is everything `serve` is configured with, after flags,
// environment and config file have been merged.
type serveConfig struct {
	server     server.Options
	graphite   string
	forward    string
	configFile string

	vivo            string
	routes          stringList
	vivoChronicles  stringList
	vivoCORSOrigins stringList
	corsOrigins     stringList

	tokens     stringList
	sync       choice
	logLevel   choice
	logFormat  choice
	maxAge     duration
	maxBytes   byteSize
	maxEvents  int64
	maxBody    byteSize
	maxEvent   byteSize
	autoCreate bool
	// bodyTimeout is how long a request body may stall; 0 disables it.
	bodyTimeout duration
	// forwardRateWait bounds a Forward chunk's wait for its client's rate.
	forwardRateWait duration

	// warnings are problems worth a log line but not a refusal to start
	// (they are logged once the logger exists).
	warnings []string
}

// option describes one serve setting: its flag, its environment variable
// and its config-file key are all derived from name, so the three cannot
// drift apart.
type option struct {
	name    string
	metavar string
	usage   string
	group   string
	list    bool   // repeatable flag; a list in config files
	secret  bool   // never echoed back in logs or errors
	short   string // a one-letter alias flag (-r for --chronicle), for parity with the tools it replaces
}

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

const (
	groupListen   = "Listeners and data"
	groupNATS     = "The log (NATS JetStream)"
	groupChron    = "Chronicles"
	groupLimits   = "Limits"
	groupSecurity = "Security"
	groupOps      = "Configuration and logging"
)

var groupOrder = []string{groupListen, groupNATS, groupChron, groupLimits, groupSecurity, groupOps}

// newServeFlags binds every serve option to c, set to its default.
func newServeFlags(c *serveConfig) (*flag.FlagSet, []option) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors and help are printed by serve itself
	var opts []option
	add := func(o option) { opts = append(opts, o) }

	c.server.DataDir = "./data"
	c.server.HTTPAddr = "127.0.0.1:4318"
	// Loopback, not DESIGN's ":2003": Graphite plaintext has no
	// authentication, so reaching beyond this host is an explicit choice
	// (--graphite-allow-remote).
	c.graphite = "127.0.0.1:2003"
	// Loopback too: beyond it, Forward clients must authenticate with a
	// shared key (or --insecure-no-auth).
	c.forward = "127.0.0.1:24224"
	c.autoCreate = true
	c.maxBody = byteSize(ingest.DefaultLimits.MaxBodyBytes)
	c.maxEvent = byteSize(ingest.DefaultLimits.MaxEventBytes)
	c.bodyTimeout = duration(ingest.DefaultBodyReadTimeout)
	c.sync = choice{value: "always", choices: []string{"always", "relaxed"}}
	c.logLevel = choice{value: "info", choices: []string{"debug", "info", "warn", "error"}}
	c.logFormat = choice{value: "text", choices: []string{"text", "json"}}
	c.server.Replicas = 1
	c.server.DefaultChronicle = "default"
	c.server.DefaultStory = "default"

	declare(fs, add, (*stringValue)(&c.server.DataDir), option{name: "data", metavar: "DIR", group: groupListen,
		usage: "Directory of the embedded log (JetStream files in DIR/jetstream). Unused with --nats."})
	declare(fs, add, (*stringValue)(&c.server.HTTPAddr), option{name: "http", metavar: "ADDR", group: groupListen,
		usage: "HTTP listener for the UI, the API and every HTTP protocol. Port 0 picks a free port;\nthe \"chronostream ready\" log line reports the address (http=...)."})
	declare(fs, add, (*stringValue)(&c.server.URLPrefix), option{name: "url-prefix", metavar: "PATH", group: groupListen,
		usage: "Path a reverse proxy serves the server under (e.g. /chronostream; Trendlines' URL_PREFIX):\nthe web UI's links and API calls carry it, and requests under it are served with it\nremoved. Other paths are served as they are."})
	declare(fs, add, (*stringValue)(&c.graphite), option{name: "graphite", metavar: "ADDR", group: groupListen,
		usage: "Graphite plaintext listener, TCP and UDP on the same port (carbon's 2003). Graphite has\nno authentication: an address beyond loopback needs --graphite-allow-remote. Port 0\npicks a free port (the ready log line reports graphite=...). Empty disables it."})
	declare(fs, add, (*stringValue)(&c.forward), option{name: "forward", metavar: "ADDR", group: groupListen,
		usage: "Fluent Forward listener (TCP; Fluent Bit, Fluentd, fluent-logger libraries). Beyond loopback\nit needs --forward-shared-key (or --insecure-no-auth). Port 0 picks a free port (the\nready log line reports forward=...). Empty disables it."})
	c.vivo = "127.0.0.1:2025"
	declare(fs, add, (*stringValue)(&c.vivo), option{name: "vivo-listen", metavar: "ADDR", group: groupListen,
		usage: "Vivo exporter listener: /logs, /metrics and /traces at Vivo's paths (2025 is Vivo's\nexporter port), for a Vivo UI pointed at it unchanged. Same token rules as --http. Port 0\npicks a free port (the ready log line reports vivo=...). Empty disables it; the exporter\nstays under /vivo/ on --http."})

	declare(fs, add, (*stringValue)(&c.server.NATSURL), option{name: "nats", metavar: "URL", group: groupNATS,
		usage: "Use an existing NATS JetStream deployment (e.g. nats://host:4222, comma-separated for a\ncluster) instead of the embedded server. Needs nats-server 2.9.10 or later with JetStream."})
	declare(fs, add, (*stringValue)(&c.server.NATSCreds), option{name: "nats-creds", metavar: "FILE", group: groupNATS, usage: "NATS credentials file (JWT and nkey seed)."})
	declare(fs, add, (*stringValue)(&c.server.NATSUser), option{name: "nats-user", metavar: "USER", group: groupNATS, usage: "NATS user name."})
	declare(fs, add, (*stringValue)(&c.server.NATSPassword), option{name: "nats-password", metavar: "PASSWORD", group: groupNATS, secret: true,
		usage: "NATS password (prefer the environment variable or config file: flags show in ps)."})
	declare(fs, add, (*stringValue)(&c.server.NATSToken), option{name: "nats-token", metavar: "TOKEN", group: groupNATS, secret: true, usage: "NATS authentication token."})
	declare(fs, add, (*stringValue)(&c.server.NATSTLSCA), option{name: "nats-tls-ca", metavar: "FILE", group: groupNATS, usage: "PEM file of the CAs that sign the NATS servers' certificates."})
	declare(fs, add, (*stringValue)(&c.server.NATSTLSCert), option{name: "nats-tls-cert", metavar: "FILE", group: groupNATS, usage: "PEM client certificate for NATS (with --nats-tls-key)."})
	declare(fs, add, (*stringValue)(&c.server.NATSTLSKey), option{name: "nats-tls-key", metavar: "FILE", group: groupNATS, usage: "PEM private key of --nats-tls-cert."})
	fs.IntVar(&c.server.Replicas, "replicas", c.server.Replicas, "")
	add(option{name: "replicas", metavar: "N", group: groupNATS,
		usage: "JetStream replicas of each chronicle (1 unless the NATS deployment is a cluster)."})
	declare(fs, add, (*stringValue)(&c.server.Cluster.Name), option{name: "cluster-name", metavar: "NAME", group: groupNATS,
		usage: "Form a JetStream cluster of this name with other chronostream nodes (the same name on every\nnode; with --cluster-listen and --routes). The log is then shared: write to any node, read\nfrom any. Ignored with --nats."})
	declare(fs, add, (*stringValue)(&c.server.Cluster.Listen), option{name: "cluster-listen", metavar: "ADDR", group: groupNATS,
		usage: "Address this node accepts the other nodes' routes on (host:port, e.g. 0.0.0.0:6222)."})
	declare(fs, add, &c.routes, option{name: "routes", metavar: "ADDR", group: groupNATS, list: true,
		usage: "Cluster address of another node (repeatable, or comma-separated): the seed list the node\njoins through. Listing every node, this one included, on every node is fine."})
	declare(fs, add, (*stringValue)(&c.server.Cluster.Node), option{name: "node", metavar: "NAME", group: groupNATS,
		usage: "This node's name in the cluster: unique and stable across restarts (JetStream knows\nreplicas by it). Default: the host name."})
	declare(fs, add, (*stringValue)(&c.server.NATSListen), option{name: "nats-listen", metavar: "ADDR", group: groupNATS,
		usage: "Also serve NATS clients (the nats CLI) from the embedded server on this address. Empty:\nin-process only."})
	declare(fs, add, &c.sync, option{name: "sync", metavar: "always|relaxed", group: groupNATS,
		usage: "always: every write is fsynced before it is acknowledged. relaxed (opt-in): the embedded\nlog acknowledges before fsync and syncs in the background; faster, but acknowledged\nevents not yet fsynced are lost on an OS crash or power loss. With --nats, the NATS\nserver's own sync setting decides instead (sync_interval: always, nats-server 2.10+)."})

	fs.BoolVar(&c.autoCreate, "auto-create", c.autoCreate, "")
	add(option{name: "auto-create", metavar: "BOOL", group: groupChron,
		usage: "Create a chronicle on its first write. As a flag, write --auto-create=false to disable."})
	declare(fs, add, &c.maxAge, option{name: "retention-max-age", metavar: "DURATION", group: groupChron,
		usage: "Default max age of events in new chronicles (e.g. 72h, 30d); 0 keeps them forever."})
	declare(fs, add, &c.maxBytes, option{name: "retention-max-bytes", metavar: "SIZE", group: groupChron,
		usage: "Default max size of new chronicles (e.g. 10GiB); 0 is unlimited. Oldest events go first."})
	fs.Int64Var(&c.maxEvents, "retention-max-events", 0, "")
	add(option{name: "retention-max-events", metavar: "N", group: groupChron,
		usage: "Default max number of events in new chronicles; 0 is unlimited. Oldest events go first."})
	declare(fs, add, (*stringValue)(&c.server.DefaultChronicle), option{name: "default-chronicle", metavar: "NAME", group: groupChron,
		usage: "Chronicle that POST / and GET / (WebSocket) write to when the request names none\n(?chronicle=NAME)."})
	c.server.MetricsChronicle = "metrics"
	declare(fs, add, (*stringValue)(&c.server.MetricsChronicle), option{name: "metrics-chronicle", metavar: "NAME", group: groupChron,
		usage: "Chronicle that Graphite and Trendlines metrics go to; each metric name is a story of it."})
	c.server.OTLPChronicle = "otel"
	declare(fs, add, (*stringValue)(&c.server.OTLPChronicle), option{name: "otlp-chronicle", metavar: "NAME", group: groupChron,
		usage: "Chronicle that OTLP/HTTP logs, metrics and traces (/v1/logs, /v1/metrics, /v1/traces) go to."})
	c.server.OTLPStoryAttribute = "service.name"
	declare(fs, add, (*stringValue)(&c.server.OTLPStoryAttribute), option{name: "otlp-story-attribute", metavar: "KEY", group: groupChron,
		usage: "Resource attribute whose value names an OTLP item's story (\"unknown_service\" when absent)."})
	c.server.ForwardChronicle = "logs"
	declare(fs, add, (*stringValue)(&c.server.ForwardChronicle), option{name: "forward-chronicle", metavar: "NAME", group: groupChron,
		usage: "Chronicle that Fluent Forward records go to; each tag is a story of it."})
	declare(fs, add, &c.vivoChronicles, option{name: "vivo-chronicle", metavar: "[SIGNAL=]NAME", group: groupChron, list: true,
		usage: "Chronicle the Vivo exporter's /logs, /metrics or /traces reads (repeatable): NAME alone sets\nall three, logs=NAME, metrics=NAME or traces=NAME one. Default logs=logs, metrics=metrics,\ntraces=otel. Any chronicle is also served at /chronicles/NAME/logs (and metrics, traces)."})
	fs.BoolVar(&c.server.ForwardTagChronicle, "forward-tag-chronicle", false, "")
	add(option{name: "forward-tag-chronicle", metavar: "BOOL", group: groupChron,
		usage: "Map a Fluent tag's first dot-separated segment to the chronicle and the rest to the story\n(app.web.access: chronicle app, story web.access). Tags without a dot stay stories of\n--forward-chronicle."})
	declare(fs, add, (*stringValue)(&c.server.DefaultStory), option{name: "default-story", metavar: "NAME", group: groupChron,
		usage: "Story that POST / and GET / (WebSocket) write to when the request names none (?story=NAME)."})

	declare(fs, add, &c.maxBody, option{name: "max-body-bytes", metavar: "SIZE", group: groupLimits,
		usage: "Largest request body, counted after decompression; larger requests get 413."})
	declare(fs, add, &c.maxEvent, option{name: "max-event-bytes", metavar: "SIZE", group: groupLimits,
		usage: "Largest single event (NDJSON line, WebSocket message)."})
	declare(fs, add, &c.bodyTimeout, option{name: "body-read-timeout", metavar: "DURATION", group: groupLimits,
		usage: "How long a request body may send nothing before it is cut off with 408 (what arrived\nbefore is stored and acknowledged as usual; a slow body that keeps sending is not cut).\nA Fluent Forward message or Graphite TCP line that stops arriving in its middle is cut\noff as well (the connection is closed; idle connections between them are kept).\n0 disables it."})

	declare(fs, add, &c.tokens, option{name: "token", metavar: "TOKEN", group: groupSecurity, list: true, secret: true,
		usage: "Accepted API token (repeatable; comma-separated in the environment, a list in the config\nfile). Clients send \"Authorization: Bearer TOKEN\". Required to listen beyond loopback."})
	fs.BoolVar(&c.server.InsecureNoAuth, "insecure-no-auth", false, "")
	add(option{name: "insecure-no-auth", metavar: "BOOL", group: groupSecurity,
		usage: "Allow listening beyond loopback with no tokens: anyone who can reach the port can read\nand write everything. Logged loudly."})

	fs.BoolVar(&c.server.GraphiteAllowRemote, "graphite-allow-remote", false, "")
	add(option{name: "graphite-allow-remote", metavar: "BOOL", group: groupSecurity,
		usage: "Allow --graphite to listen beyond loopback. Graphite plaintext has no authentication, so\ntokens do not protect it: anyone who can reach the port can write metrics. Logged loudly.\n(--insecure-no-auth allows it too.)"})

	c.server.ConnLimits = connlimit.DefaultLimits
	fs.IntVar(&c.server.ConnLimits.Max, "max-connections", c.server.ConnLimits.Max, "")
	add(option{name: "max-connections", metavar: "N", group: groupLimits,
		usage: "Most Fluent Forward (and, apart, Graphite TCP) connections open at once; more are closed\non accept and counted in chronostream_tcp_connections_refused_total. 0: no cap."})
	fs.IntVar(&c.server.ConnLimits.PerIP, "max-connections-per-ip", c.server.ConnLimits.PerIP, "")
	add(option{name: "max-connections-per-ip", metavar: "N", group: groupLimits,
		usage: "Most Forward (and, apart, Graphite TCP) connections open at once from one IP address.\n0: no cap."})
	declare(fs, add, (*floatValue)(&c.server.ForwardRate.EventsPerSecond), option{name: "forward-rate-events", metavar: "N", group: groupLimits,
		usage: "At most N Fluent Forward events a second from one client IP address (all its connections;\na second's worth of burst). A message over it is held, nothing more read, until the rate\nadmits it; one that asks for an ack (require_ack_response) waits at most\n--forward-rate-wait, then is refused unacknowledged and its connection closed, and the\nclient resends it. 0: no limit."})
	declare(fs, add, (*floatValue)(&c.server.ForwardRate.BytesPerSecond), option{name: "forward-rate-bytes", metavar: "N", group: groupLimits,
		usage: "At most N bytes of Fluent Forward records a second from one client IP address (as\n--forward-rate-events). 0: no limit."})
	c.forwardRateWait = duration(forward.DefaultRateWait)
	declare(fs, add, &c.forwardRateWait, option{name: "forward-rate-wait", metavar: "DURATION", group: groupLimits,
		usage: "How long a Forward message that asks for an ack may wait for its client's rate before it\nis refused (keep it under the clients' ack timeouts, or they resend what is still waiting)."})
	c.server.HTTPConnLimits = connlimit.DefaultHTTPLimits
	fs.IntVar(&c.server.HTTPConnLimits.Max, "http-max-connections", c.server.HTTPConnLimits.Max, "")
	add(option{name: "http-max-connections", metavar: "N", group: groupLimits,
		usage: "Most HTTP connections open at once (and, apart, on the Vivo listener); one more is answered\n503 with Retry-After and closed, and counted in chronostream_tcp_connections_refused_total.\n0: no cap."})
	fs.IntVar(&c.server.HTTPConnLimits.PerIP, "http-max-connections-per-ip", c.server.HTTPConnLimits.PerIP, "")
	add(option{name: "http-max-connections-per-ip", metavar: "N", group: groupLimits,
		usage: "Most HTTP (and, apart, Vivo) connections open at once from one IP address; behind a\nreverse proxy every connection comes from its address. 0: no cap."})
	declare(fs, add, &c.corsOrigins, option{name: "cors-origin", metavar: "ORIGIN", group: groupSecurity, list: true,
		usage: "Browser origin (scheme://host[:port]) besides the server's own allowed to call the API\nwith a token (CORS), to write (other origins' cross-site writes get 403) and to open\nWebSockets (repeatable). None by default: same origin only."})
	declare(fs, add, &c.vivoCORSOrigins, option{name: "vivo-cors-origin", metavar: "ORIGIN", group: groupSecurity, list: true,
		usage: "Browser origin (scheme://host[:port]) allowed to read the Vivo exporter, e.g. a Vivo UI's\n(repeatable; \"*\" allows any). None by default: no CORS headers are sent."})
	declare(fs, add, (*stringValue)(&c.server.ForwardSharedKey), option{name: "forward-shared-key", metavar: "KEY", group: groupSecurity, secret: true,
		usage: "Fluent Forward shared key: clients must authenticate with the handshake (HELO/PING/PONG,\nFluent Bit's Shared_Key, Fluentd's <security>); others are refused. Allows --forward\nbeyond loopback."})
	declare(fs, add, (*stringValue)(&c.server.ForwardUsername), option{name: "forward-username", metavar: "USER", group: groupSecurity,
		usage: "User name the Forward handshake also requires (with --forward-password)."})
	declare(fs, add, (*stringValue)(&c.server.ForwardPassword), option{name: "forward-password", metavar: "PASSWORD", group: groupSecurity, secret: true,
		usage: "Password of --forward-username."})
	declare(fs, add, (*stringValue)(&c.server.TLS.CertFile), option{name: "tls-cert", metavar: "FILE", group: groupSecurity,
		usage: "TLS certificate (PEM, with its chain) for the HTTP, Forward, Graphite TCP and Vivo\nlisteners; with --tls-key. Read again on SIGHUP (a renewed certificate needs no restart)."})
	declare(fs, add, (*stringValue)(&c.server.TLS.KeyFile), option{name: "tls-key", metavar: "FILE", group: groupSecurity,
		usage: "Private key (PEM) of --tls-cert."})
	declare(fs, add, (*stringValue)(&c.server.TLS.ClientCAFile), option{name: "tls-client-ca", metavar: "FILE", group: groupSecurity,
		usage: "CA certificates (PEM): every TLS client must present a certificate they signed (mutual\nTLS), on top of tokens."})
	fs.BoolVar(&c.server.TLS.SelfSigned, "tls-self-signed", false, "")
	add(option{name: "tls-self-signed", metavar: "BOOL", group: groupSecurity,
		usage: "Serve TLS with a certificate made in memory at start (localhost, 127.0.0.1, ::1, the host\nname): clients cannot verify it. For quick tests only."})

	declare(fs, add, (*stringValue)(&c.configFile), option{name: "config", metavar: "FILE", group: groupOps,
		usage: "Config file, YAML (.yaml, .yml) or TOML (.toml); its keys are these flag names.\nSet by flag or environment only."})
	declare(fs, add, &c.logLevel, option{name: "log-level", metavar: "debug|info|warn|error", group: groupOps, usage: "Least severe level logged."})
	declare(fs, add, &c.logFormat, option{name: "log-format", metavar: "text|json", group: groupOps, usage: "Log format on stderr: text (logfmt) or json."})
	return fs, opts
}

// parseServe merges the serve settings. Precedence, per option: a flag on
// the command line, else its environment variable, else its config-file
// key, else the default. It returns flag.ErrHelp for --help.
func parseServe(args, environ []string) (*serveConfig, error) {
	c := &serveConfig{}
	fs, opts := newServeFlags(c)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (serve takes only flags)", fs.Arg(0))
	}
	file, warnings, err := mergeOptions("serve", fs, opts, environ, &c.configFile, "chronicles", "sinks")
	c.warnings = append(c.warnings, warnings...)
	if err != nil {
		return nil, err
	}
	if v, ok := file["chronicles"]; ok {
		if c.server.Chronicles, c.server.ChronicleReplicas, err = parseChronicles(v); err != nil {
			return nil, fmt.Errorf("config file %s: key \"chronicles\": %w", c.configFile, err)
		}
	}
	if v, ok := file["sinks"]; ok {
		if c.server.Sinks, err = parseSinks(v); err != nil {
			return nil, fmt.Errorf("config file %s: key \"sinks\": %w", c.configFile, err)
		}
	}
	if err := c.finish(); err != nil {
		return nil, err
	}
	return c, nil
}

// mergeOptions sets every option of a command that its command line left
// unset, from its environment variable, else from its key in the config
// file (named by the "config" option, whose value configFile points to).
// Precedence, per option: flag, environment, config file, default. The
// config file may also hold the given sections, returned for the caller
// to read. Unknown CHRONOSTREAM_* variables are reported as warnings
// (those of other commands are not unknown).
func mergeOptions(cmd string, fs *flag.FlagSet, opts []option, environ []string, configFile *string, sections ...string) (file map[string]any, warnings []string, err error) {
	fromFlag := map[string]bool{}
	long := map[string]string{}
	for _, o := range opts {
		if o.short != "" {
			long[o.short] = o.name
		}
	}
	fs.Visit(func(f *flag.Flag) {
		if n, ok := long[f.Name]; ok {
			fromFlag[n] = true
		}
		fromFlag[f.Name] = true
	})

	known := map[string]option{}
	for _, o := range opts {
		known[o.name] = o
	}
	anyCommand := allOptionNames()
	env := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, envPrefix) {
			continue
		}
		env[k] = v
		name := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, envPrefix), "_", "-"))
		if _, ok := known[name]; !ok && !anyCommand[name] {
			warnings = append(warnings, fmt.Sprintf("ignoring unknown environment variable %s", k))
		}
	}

	if v, ok := env[envName("config")]; ok && !fromFlag["config"] {
		*configFile = v
	}
	if *configFile != "" {
		if file, err = loadConfigFile(*configFile, known, cmd, sections...); err != nil {
			return nil, warnings, err
		}
	}
	for _, o := range opts {
		if o.name == "config" || fromFlag[o.name] {
			continue
		}
		if v, ok := env[envName(o.name)]; ok {
			if err := setFromEnv(fs, o, v); err != nil {
				return nil, warnings, fmt.Errorf("environment variable %s: %w", envName(o.name), err)
			}
			continue
		}
		if v, ok := file[o.name]; ok {
			if err := setFromFile(fs, o, v); err != nil {
				return nil, warnings, fmt.Errorf("config file %s: key %q: %w", *configFile, o.name, err)
			}
		}
	}
	return file, warnings, nil
}

func setFromEnv(fs *flag.FlagSet, o option, v string) error {
	if !o.list {
		return fs.Set(o.name, v)
	}
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			if err := fs.Set(o.name, part); err != nil {
				return err
			}
		}
	}
	return nil
}

func setFromFile(fs *flag.FlagSet, o option, v any) error {
	if items, ok := v.([]any); ok {
		if !o.list {
			return errors.New("takes one value, not a list")
		}
		for _, it := range items {
			s, err := scalarString(it)
			if err != nil {
				return err
			}
			if err := fs.Set(o.name, s); err != nil {
				return err
			}
		}
		return nil
	}
	if v == nil { // "key:" with nothing after it: leave the default
		return nil
	}
	s, err := scalarString(v)
	if err != nil {
		return err
	}
	return fs.Set(o.name, s)
}

func scalarString(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case float64:
		// Integral floats (JSON numbers, YAML 1e6) are integers to the flags.
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return strconv.FormatInt(int64(v), 10), nil
		}
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	default:
		return "", fmt.Errorf("unsupported value of type %T (want a string, number or boolean)", v)
	}
}

// loadConfigFile reads a YAML or TOML file into a map keyed by flag names.
// Keys may also be written with underscores (max_body_bytes), as TOML
// users tend to.
func loadConfigFile(path string, known map[string]option, cmd string, sections ...string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	raw := map[string]any{}
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".yaml", ".yml":
		dec := yaml.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&raw); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
	case ".toml":
		if _, err := toml.Decode(string(data), &raw); err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
	case ".json":
		if err := json.Unmarshal(data, &raw); err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
	default:
		return nil, fmt.Errorf("config file %s: unknown format %q (want .yaml, .yml or .toml)", path, ext)
	}
	out := make(map[string]any, len(raw))
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys) // report the same key first every time
	for _, k := range keys {
		name := strings.ReplaceAll(k, "_", "-")
		if slices.Contains(sections, name) {
			out[name] = raw[k]
			continue
		}
		if name == "config" {
			return nil, fmt.Errorf("config file %s: key %q cannot be set in a config file (use --config or %s)", path, k, envName("config"))
		}
		if _, ok := known[name]; !ok {
			return nil, fmt.Errorf("config file %s: unknown key %q (keys are the %s flag names; see chronostream %s --help)", path, k, cmd, cmd)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("config file %s: key %q is set twice", path, name)
		}
		out[name] = raw[k]
	}
	return out, nil
}

// finish validates the merged settings and copies them into server.Options.
func (c *serveConfig) finish() error {
	if c.server.Replicas < 1 {
		return fmt.Errorf("--replicas must be at least 1, not %d", c.server.Replicas)
	}
	if err := c.finishCluster(); err != nil {
		return err
	}
	if c.maxBody <= 0 {
		return errors.New("--max-body-bytes must be positive")
	}
	if c.maxEvent <= 0 {
		return errors.New("--max-event-bytes must be positive")
	}
	if c.maxEvent > c.maxBody {
		return fmt.Errorf("--max-event-bytes (%s) cannot exceed --max-body-bytes (%s)", c.maxEvent.String(), c.maxBody.String())
	}
	if c.maxEvents < 0 {
		return errors.New("--retention-max-events cannot be negative")
	}
	if c.server.DataDir == "" && c.server.NATSURL == "" {
		return errors.New("--data cannot be empty when the log is embedded (no --nats)")
	}
	if c.server.HTTPAddr == "" {
		return errors.New("--http cannot be empty: the HTTP listener serves every API")
	}
	if (c.server.NATSTLSCert == "") != (c.server.NATSTLSKey == "") {
		return errors.New("--nats-tls-cert and --nats-tls-key go together")
	}
	if c.server.NATSPassword != "" && c.server.NATSUser == "" {
		return errors.New("--nats-password needs --nats-user")
	}
	if c.server.MetricsChronicle == "" {
		return errors.New("--metrics-chronicle cannot be empty")
	}
	if err := event.ValidateChronicle(c.server.MetricsChronicle); err != nil {
		return fmt.Errorf("--metrics-chronicle: %w", err)
	}
	if err := event.ValidateChronicle(c.server.OTLPChronicle); err != nil {
		return fmt.Errorf("--otlp-chronicle: %w", err)
	}
	if c.server.OTLPStoryAttribute == "" {
		return errors.New("--otlp-story-attribute cannot be empty")
	}
	if (c.server.ForwardUsername != "" || c.server.ForwardPassword != "") && c.server.ForwardSharedKey == "" {
		return errors.New("--forward-username and --forward-password need --forward-shared-key")
	}
	if (c.server.ForwardUsername == "") != (c.server.ForwardPassword == "") {
		return errors.New("--forward-username and --forward-password go together")
	}
	if err := event.ValidateChronicle(c.server.ForwardChronicle); err != nil {
		return fmt.Errorf("--forward-chronicle: %w", err)
	}
	c.server.GraphiteAddr = c.graphite
	c.server.ForwardAddr = c.forward
	if c.forwardRateWait <= 0 {
		return errors.New("--forward-rate-wait must be positive")
	}
	c.server.ForwardRateWait = timeDuration(c.forwardRateWait)
	c.server.VivoAddr = c.vivo
	c.server.VivoCORSOrigins = slices.Clone(c.vivoCORSOrigins)
	c.server.CORSOrigins = slices.Clone(c.corsOrigins)
	if len(c.vivoChronicles) > 0 {
		c.server.VivoChronicles = map[vivo.Signal]string{}
		for _, v := range c.vivoChronicles {
			if err := vivo.ParseChronicle(c.server.VivoChronicles, v); err != nil {
				return fmt.Errorf("--vivo-chronicle: %w", err)
			}
		}
	}
	c.server.Tokens = slices.Clone(c.tokens)
	c.server.AutoCreate = c.autoCreate
	c.server.RelaxedSync = c.sync.value == "relaxed"
	c.server.Retention.MaxAge = timeDuration(c.maxAge)
	c.server.Retention.MaxBytes = int64(c.maxBytes)
	c.server.Retention.MaxEvents = c.maxEvents
	c.server.Limits = ingest.Limits{MaxBodyBytes: int64(c.maxBody), MaxEventBytes: int64(c.maxEvent), BodyReadTimeout: timeDuration(c.bodyTimeout)}
	if c.bodyTimeout == 0 {
		c.server.Limits.BodyReadTimeout = -1 // none
	}
	return nil
}

// finishCluster checks the embedded cluster's settings: a name and a listen
// address go together, and a node has a name (default: the host's).
func (c *serveConfig) finishCluster() error {
	cl := &c.server.Cluster
	for _, r := range c.routes {
		for _, r := range strings.Split(r, ",") {
			if r = strings.TrimSpace(r); r != "" {
				cl.Routes = append(cl.Routes, r)
			}
		}
	}
	if cl.Name == "" {
		if cl.Listen != "" || len(cl.Routes) > 0 || cl.Node != "" {
			return errors.New("--cluster-listen, --routes and --node need --cluster-name")
		}
		return nil
	}
	if c.server.NATSURL != "" {
		return errors.New("--cluster-name forms a cluster of embedded servers; with --nats the NATS deployment is the cluster")
	}
	if cl.Listen == "" {
		return errors.New("--cluster-name needs --cluster-listen (the address the other nodes' routes reach)")
	}
	if cl.Node == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			return fmt.Errorf("--node is required: the host name is unknown (%v)", err)
		}
		cl.Node = host
	}
	return nil
}

// parseChronicles reads the config file's "chronicles" section: chronicles
// to create at start with their own retention, e.g. in YAML
//
//	chronicles:
//	  app: {max-age: 7d, max-bytes: 10GiB}
//	  audit: {max-events: 1000000, replicas: 3}
//
// replicas, in a cluster, is the chronicle's own count (default --replicas).
// It has no flag or environment form: it is a map, not one value.
func parseChronicles(v any) (map[string]store.Retention, map[string]int, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("want a map of chronicle names to retention settings, not %T", v)
	}
	out := make(map[string]store.Retention, len(m))
	replicas := map[string]int{}
	for name, rv := range m {
		if err := event.ValidateChronicle(name); err != nil {
			return nil, nil, err
		}
		var r store.Retention
		settings, ok := rv.(map[string]any)
		if !ok && rv != nil {
			return nil, nil, fmt.Errorf("chronicle %q: want a map of max-age, max-bytes, max-events, replicas, not %T", name, rv)
		}
		for k, val := range settings {
			s, err := scalarString(val)
			if err != nil {
				return nil, nil, fmt.Errorf("chronicle %q: %s: %w", name, k, err)
			}
			switch strings.ReplaceAll(k, "_", "-") {
			case "replicas":
				n, err := strconv.Atoi(s)
				if err != nil || n < 1 {
					return nil, nil, fmt.Errorf("chronicle %q: replicas: want a count of at least 1, not %q", name, s)
				}
				replicas[name] = n
			case "max-age":
				var d duration
				if err := d.Set(s); err != nil {
					return nil, nil, fmt.Errorf("chronicle %q: max-age: %w", name, err)
				}
				r.MaxAge = timeDuration(d)
			case "max-bytes":
				var b byteSize
				if err := b.Set(s); err != nil {
					return nil, nil, fmt.Errorf("chronicle %q: max-bytes: %w", name, err)
				}
				r.MaxBytes = int64(b)
			case "max-events":
				n, err := strconv.ParseInt(s, 10, 64)
				if err != nil || n < 0 {
					return nil, nil, fmt.Errorf("chronicle %q: max-events: want a count, not %q", name, s)
				}
				r.MaxEvents = n
			default:
				return nil, nil, fmt.Errorf("chronicle %q: unknown setting %q (want max-age, max-bytes, max-events, replicas)", name, k)
			}
		}
		out[name] = r
	}
	return out, replicas, nil
}
