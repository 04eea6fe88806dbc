package cli

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/chronostream/chronostream/internal/tlsconf"
)

// The options of the commands that talk to a server (agent, send, tail)
// share one table pattern with serve: a flag, its CHRONOSTREAM_* variable
// and its config-file key per option (see mergeOptions).

const (
	groupServer = "Server"
	groupAgent  = "Sampling"
	groupSelect = "What to sample"
	groupHost   = "Host (containers)"
	groupSpool  = "Spool"
	groupSend   = "Input"
	groupTail   = "What to follow"
)

const defaultServerURL = "http://127.0.0.1:4318"

// remoteConfig is what every command that talks to a server takes.
type remoteConfig struct {
	servers    stringList
	token      string
	tlsOpts    tlsconf.ClientOptions
	configFile string
	logLevel   choice
	logFormat  choice

	// tls is made from tlsOpts by finish: every connection to the server
	// (HTTP, WebSocket, SSE, and the canary's Forward and OTLP) uses it.
	tls *tls.Config
}

// newClientFlags begins the flag set of a client command: errors and help
// are printed by the command itself, and the server options every client
// command takes come first. add appends an option to *opts, the command's
// option table.
func newClientFlags(cmd string, rc *remoteConfig, opts *[]option) (fs *flag.FlagSet, add func(option)) {
	fs = flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	add = func(o option) { *opts = append(*opts, o) }
	addRemoteFlags(fs, add, rc, cmd)
	return fs, add
}

// declare registers an option's flag under its long name and its short
// alias (if any) and adds it to the option table, so that each option of
// a command is said once.
func declare(fs *flag.FlagSet, add func(option), v flag.Value, o option) {
	fs.Var(v, o.name, "")
	if o.short != "" {
		fs.Var(v, o.short, "")
	}
	add(o)
}

// boolValue lets a bool field be declared as a flag.Value: --flag alone
// sets it, --flag=false clears it.
type boolValue bool

func (b *boolValue) Set(v string) error {
	x, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("invalid boolean %q", v)
	}
	*b = boolValue(x)
	return nil
}
func (b *boolValue) String() string   { return strconv.FormatBool(b != nil && bool(*b)) }
func (b *boolValue) IsBoolFlag() bool { return true }

// stringValue lets a string field be declared as a flag.Value.
type stringValue string

func (s *stringValue) Set(v string) error { *s = stringValue(v); return nil }
func (s *stringValue) String() string     { return string(*s) }

// addRemoteFlags binds the server options of a client command.
func addRemoteFlags(fs *flag.FlagSet, add func(option), c *remoteConfig, cmd string) {
	declare(fs, add, &c.servers, option{name: "server", metavar: "URL", group: groupServer, list: true,
		usage: "chronostream server (http, https, ws or wss URL; repeatable: the others are tried in turn\nwhen one fails; comma-separated in the environment). Default " + defaultServerURL + "."})
	declare(fs, add, (*stringValue)(&c.token), option{name: "token", metavar: "TOKEN", group: groupServer, secret: true,
		usage: "API token, sent as \"Authorization: Bearer TOKEN\" (prefer the environment variable or the\nconfig file: flags show in ps)."})
	declare(fs, add, (*stringValue)(&c.tlsOpts.CAFile), option{name: "tls-ca", metavar: "FILE", group: groupServer,
		usage: "CA certificates (PEM) to verify an https/wss server's certificate with, instead of the\nsystem's: a server whose certificate a private CA signed."})
	declare(fs, add, (*stringValue)(&c.tlsOpts.CertFile), option{name: "tls-cert", metavar: "FILE", group: groupServer,
		usage: "Client certificate (PEM) for a server that asks for one (its --tls-client-ca); with\n--tls-key. Read again when it changes on disk."})
	declare(fs, add, (*stringValue)(&c.tlsOpts.KeyFile), option{name: "tls-key", metavar: "FILE", group: groupServer,
		usage: "Private key (PEM) of --tls-cert."})
	declare(fs, add, (*boolValue)(&c.tlsOpts.InsecureSkipVerify), option{name: "tls-insecure-skip-verify", metavar: "BOOL", group: groupServer,
		usage: "Accept any server certificate (one made by serve --tls-self-signed). Anyone on the path\ncan then read and change the traffic, token included: for tests only; warned at each run."})
	declare(fs, add, (*stringValue)(&c.configFile), option{name: "config", short: "c", metavar: "FILE", group: groupOps,
		usage: "Config file, YAML (.yaml, .yml), TOML (.toml) or JSON (.json); its keys are these flag\nnames (long form). Set by flag or environment only."})
	c.logLevel = choice{value: "info", choices: []string{"debug", "info", "warn", "error"}}
	c.logFormat = choice{value: "text", choices: []string{"text", "json"}}
	if cmd == "agent" || cmd == "canary" {
		declare(fs, add, &c.logLevel, option{name: "log-level", metavar: "debug|info|warn|error", group: groupOps, usage: "Least severe level logged."})
		declare(fs, add, &c.logFormat, option{name: "log-format", metavar: "text|json", group: groupOps, usage: "Log format on stderr: text (logfmt) or json."})
	}
}

// finish validates the merged options and makes the TLS configuration.
// It returns warnings for the user.
func (c *remoteConfig) finish() (warnings []string, err error) {
	if len(c.servers) == 0 {
		c.servers = stringList{defaultServerURL}
	}
	for _, s := range c.servers {
		if !strings.Contains(s, "://") {
			return nil, fmt.Errorf("--server %q: want a URL such as %s", s, defaultServerURL)
		}
	}
	if c.tls, err = tlsconf.Client(c.tlsOpts); err != nil {
		return nil, err
	}
	if c.tlsOpts.InsecureSkipVerify {
		warnings = append(warnings, "--tls-insecure-skip-verify: the server's certificate is NOT verified; "+
			"anyone on the path can read and change this traffic, token included (give the server's CA with --tls-ca instead)")
	}
	return warnings, nil
}

// transport is an HTTP transport with the command's TLS configuration, for
// commands that set their own timeouts on it.
func (c *remoteConfig) transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = c.tls.Clone() // a transport writes to its own (NextProtos)
	return tr
}

// httpBase is a --server URL as the base of the HTTP requests to it: its
// trailing slashes removed, and the WebSocket URL that send may be given
// (ws, wss) replaced by the HTTP one of the same server.
func httpBase(server string) string {
	base := strings.TrimRight(server, "/")
	if rest, ok := strings.CutPrefix(base, "ws://"); ok {
		return "http://" + rest
	}
	if rest, ok := strings.CutPrefix(base, "wss://"); ok {
		return "https://" + rest
	}
	return base
}

// httpClient is the client of every request to the server: a TLS failure
// says what to do about it.
func (c *remoteConfig) httpClient(tr *http.Transport) *http.Client {
	if tr == nil {
		tr = c.transport()
	}
	return &http.Client{Transport: tlsconf.ExplainTransport(tr)}
}

func (c *remoteConfig) logger(w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.logLevel.value))
	ho := &slog.HandlerOptions{Level: level}
	if c.logFormat.value == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// parseCommand parses a client command's arguments, flags and positional
// arguments in any order (send a.ndjson -r app), then merges its
// environment and config file. It returns the positional arguments.
func parseCommand(cmd string, fs *flag.FlagSet, opts []option, rc *remoteConfig, args, environ []string) (pos, warnings []string, err error) {
	for {
		if err := fs.Parse(args); err != nil {
			return nil, nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	_, warnings, err = mergeOptions(cmd, fs, opts, environ, &rc.configFile)
	if err != nil {
		return pos, warnings, err
	}
	more, err := rc.finish()
	return pos, append(warnings, more...), err
}

// allOptionNames are the option names of every command, so that a
// CHRONOSTREAM_* variable meant for one command is not reported as unknown
// by another.
func allOptionNames() map[string]bool {
	names := map[string]bool{}
	add := func(_ *flag.FlagSet, opts []option) {
		for _, o := range opts {
			names[o.name] = true
		}
	}
	add(newServeFlags(&serveConfig{}))
	add(newAgentFlags(&agentConfig{}))
	add(newSendFlags(&sendConfig{}))
	add(newTailFlags(&tailConfig{}))
	add(newForwardFlags(&forwardConfig{}))
	add(newAnnotateFlags(&annotateConfig{}))
	add(newCanaryFlags(&canaryConfig{}))
	add(newQueryFlags(&queryConfig{}))
	add(newTokenFlags(&tokenConfig{}))
	return names
}

// seconds is a flag.Value for ChronoStream's -d and -i: a number of
// seconds (fractions allowed: 0.5), or a Go duration (500ms, 2m).
type seconds time.Duration

func (s *seconds) Set(v string) error {
	v = strings.TrimSpace(v)
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f < 0 {
			return errors.New("cannot be negative")
		}
		*s = seconds(time.Duration(f * float64(time.Second)))
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("invalid duration %q (want seconds, e.g. 5 or 0.5, or a Go duration such as 500ms)", v)
	}
	if d < 0 {
		return errors.New("cannot be negative")
	}
	*s = seconds(d)
	return nil
}

func (s *seconds) String() string {
	if s == nil {
		return "0"
	}
	return strconv.FormatFloat(time.Duration(*s).Seconds(), 'f', -1, 64)
}

// keyValues is a repeatable K=V flag (tags).
type keyValues map[string]string

func (kv *keyValues) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, not %q", v)
	}
	if *kv == nil {
		*kv = keyValues{}
	}
	(*kv)[k] = val
	return nil
}

func (kv *keyValues) String() string {
	if kv == nil {
		return ""
	}
	var parts []string
	for k, v := range *kv {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

// printCommandHelp prints a client command's usage and options.
func printCommandHelp(w io.Writer, head string, fs *flag.FlagSet, opts []option, groups []string) {
	fmt.Fprint(w, head)
	fmt.Fprint(w, `
Every option can also be set by its environment variable (shown below) or by a
key of the same name in the --config file. Precedence: flag, then environment
variable, then config file, then default.
`)
	printOptions(w, fs, opts, groups)
}
