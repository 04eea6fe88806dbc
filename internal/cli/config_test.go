package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"github.com/chronostream/chronostream/internal/store"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeFile writes a config file into a fresh directory and returns its path.
func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseServeDefaults(t *testing.T) {
	c, err := parseServe(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := c.server
	checks := []struct {
		name      string
		got, want any
	}{
		{"data", o.DataDir, "./data"},
		{"http", o.HTTPAddr, "127.0.0.1:4318"},
		{"graphite", c.graphite, "127.0.0.1:2003"},
		{"forward", c.forward, "127.0.0.1:24224"},
		{"nats", o.NATSURL, ""},
		{"auto-create", o.AutoCreate, true},
		{"relaxed", o.RelaxedSync, false},
		{"replicas", o.Replicas, 1},
		{"max-body-bytes", o.Limits.MaxBodyBytes, int64(32 << 20)},
		{"max-event-bytes", o.Limits.MaxEventBytes, int64(1 << 20)},
		{"body-read-timeout", o.Limits.BodyReadTimeout, 60 * time.Second},
		{"default-chronicle", o.DefaultChronicle, "default"},
		{"default-story", o.DefaultStory, "default"},
		{"tokens", len(o.Tokens), 0},
		{"insecure-no-auth", o.InsecureNoAuth, false},
		{"retention", o.Retention.MaxAge + time.Duration(o.Retention.MaxBytes+o.Retention.MaxEvents), time.Duration(0)},
		{"log-level", c.logLevel.value, "info"},
		{"log-format", c.logFormat.value, "text"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

// TestParseServePrecedence checks flag > env > config file > default for
// every kind of value.
func TestParseServePrecedence(t *testing.T) {
	yamlAll := writeFile(t, "all.yaml", `
data: /cfg/data
http: 127.0.0.1:1001
graphite: ""
forward: 127.0.0.1:1002
nats: nats://cfg:4222
nats-user: cfguser
nats-password: cfgpass
replicas: 3
sync: relaxed
auto-create: false
retention-max-age: 30d
retention-max-bytes: 10GiB
retention-max-events: 1000000
max-body-bytes: 64MiB
max-event-bytes: 2097152
default-chronicle: cfgc
default-story: cfgs
token: [a, b]
insecure-no-auth: true
log-level: debug
log-format: json
`)
	tomlAll := writeFile(t, "all.toml", `
data = "/toml/data"
http = "127.0.0.1:2001"
replicas = 2
auto_create = false
retention-max-age = "12h"
max_body_bytes = 1048576
token = ["t1"]
`)
	type want struct {
		data, http, graphite, nats string
		replicas                   int
		autoCreate, relaxed        bool
		maxAge                     time.Duration
		maxBytes, maxEvents        int64
		maxBody                    int64
		tokens                     string // comma-joined
		logFormat                  string
	}
	def := want{data: "./data", http: "127.0.0.1:4318", graphite: "127.0.0.1:2003", replicas: 1, autoCreate: true,
		maxBody: 32 << 20, logFormat: "text"}
	tests := []struct {
		name string
		args []string
		env  []string
		want func(w *want)
	}{
		{"defaults", nil, nil, func(w *want) {}},
		{"flags", []string{"--data", "/f", "--http=127.0.0.1:0", "--graphite", "", "--nats", "nats://f:1",
			"--replicas", "5", "--auto-create=false", "--sync", "relaxed", "--retention-max-age", "90m",
			"--retention-max-bytes", "1MB", "--retention-max-events", "7", "--max-body-bytes", "1KiB",
			"--max-event-bytes", "512", "--token", "x", "--token", "y", "--log-format", "json"}, nil,
			func(w *want) {
				*w = want{data: "/f", http: "127.0.0.1:0", nats: "nats://f:1", replicas: 5, relaxed: true,
					maxAge: 90 * time.Minute, maxBytes: 1e6, maxEvents: 7, maxBody: 1024, tokens: "x,y", logFormat: "json"}
			}},
		{"env", nil, []string{"CHRONOSTREAM_DATA=/e", "CHRONOSTREAM_HTTP=127.0.0.1:9", "CHRONOSTREAM_GRAPHITE=",
			"CHRONOSTREAM_REPLICAS=2", "CHRONOSTREAM_AUTO_CREATE=0", "CHRONOSTREAM_TOKEN=a, b,,c",
			"CHRONOSTREAM_RETENTION_MAX_AGE=1d", "CHRONOSTREAM_MAX_BODY_BYTES=2MiB", "CHRONOSTREAM_LOG_FORMAT=json", "OTHER=1"},
			func(w *want) {
				w.data, w.http, w.graphite, w.replicas, w.autoCreate = "/e", "127.0.0.1:9", "", 2, false
				w.tokens, w.maxAge, w.maxBody, w.logFormat = "a,b,c", 24*time.Hour, 2<<20, "json"
			}},
		{"yaml config", []string{"--config", yamlAll}, nil, func(w *want) {
			*w = want{data: "/cfg/data", http: "127.0.0.1:1001", nats: "nats://cfg:4222", replicas: 3, relaxed: true,
				maxAge: 30 * 24 * time.Hour, maxBytes: 10 << 30, maxEvents: 1e6, maxBody: 64 << 20,
				tokens: "a,b", logFormat: "json"}
		}},
		{"config from env", nil, []string{"CHRONOSTREAM_CONFIG=" + tomlAll}, func(w *want) {
			w.data, w.http, w.replicas, w.autoCreate, w.maxAge, w.maxBody, w.tokens =
				"/toml/data", "127.0.0.1:2001", 2, false, 12*time.Hour, 1<<20, "t1"
		}},
		{"flag beats env beats config", []string{"--config", yamlAll, "--data", "/flag", "--token", "f"},
			[]string{"CHRONOSTREAM_DATA=/env", "CHRONOSTREAM_HTTP=127.0.0.1:3", "CHRONOSTREAM_TOKEN=e1,e2", "CHRONOSTREAM_AUTO_CREATE=true"},
			func(w *want) {
				*w = want{data: "/flag", http: "127.0.0.1:3", nats: "nats://cfg:4222", replicas: 3, relaxed: true,
					autoCreate: true, maxAge: 30 * 24 * time.Hour, maxBytes: 10 << 30, maxEvents: 1e6,
					maxBody: 64 << 20, tokens: "f", logFormat: "json"}
			}},
		{"env token replaces config tokens", []string{"--config", tomlAll}, []string{"CHRONOSTREAM_TOKEN=e"},
			func(w *want) {
				w.data, w.http, w.replicas, w.autoCreate, w.maxAge, w.maxBody, w.tokens =
					"/toml/data", "127.0.0.1:2001", 2, false, 12*time.Hour, 1<<20, "e"
			}},
		{"flag config beats env config", []string{"--config", tomlAll}, []string{"CHRONOSTREAM_CONFIG=" + yamlAll},
			func(w *want) {
				w.data, w.http, w.replicas, w.autoCreate, w.maxAge, w.maxBody, w.tokens =
					"/toml/data", "127.0.0.1:2001", 2, false, 12*time.Hour, 1<<20, "t1"
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := def
			tt.want(&w)
			c, err := parseServe(tt.args, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			o := c.server
			got := want{data: o.DataDir, http: o.HTTPAddr, graphite: c.graphite, nats: o.NATSURL, replicas: o.Replicas,
				autoCreate: o.AutoCreate, relaxed: o.RelaxedSync, maxAge: o.Retention.MaxAge,
				maxBytes: o.Retention.MaxBytes, maxEvents: o.Retention.MaxEvents, maxBody: o.Limits.MaxBodyBytes,
				tokens: strings.Join(o.Tokens, ","), logFormat: c.logFormat.value}
			if got != w {
				t.Errorf("got  %+v\nwant %+v", got, w)
			}
		})
	}
}

func TestParseServeErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     []string
		file    [2]string // name, content
		wantErr string
	}{
		{"unknown flag", []string{"--nope"}, nil, [2]string{}, "nope"},
		{"positional argument", []string{"extra"}, nil, [2]string{}, `unexpected argument "extra"`},
		{"bad sync", []string{"--sync", "sometimes"}, nil, [2]string{}, `invalid value "sometimes"`},
		{"bad log level env", nil, []string{"CHRONOSTREAM_LOG_LEVEL=loud"}, [2]string{}, "CHRONOSTREAM_LOG_LEVEL"},
		{"bad replicas env", nil, []string{"CHRONOSTREAM_REPLICAS=many"}, [2]string{}, "CHRONOSTREAM_REPLICAS"},
		{"zero replicas", []string{"--replicas", "0"}, nil, [2]string{}, "--replicas"},
		{"bad size", []string{"--max-body-bytes", "12 parsecs"}, nil, [2]string{}, "invalid size"},
		{"bad duration", []string{"--retention-max-age", "soon"}, nil, [2]string{}, "invalid duration"},
		{"negative duration", []string{"--retention-max-age", "-1h"}, nil, [2]string{}, "negative"},
		{"event bigger than body", []string{"--max-body-bytes", "1KiB", "--max-event-bytes", "2KiB"}, nil, [2]string{}, "cannot exceed"},
		{"empty http", []string{"--http", ""}, nil, [2]string{}, "--http"},
		{"tls cert without key", []string{"--nats-tls-cert", "c.pem"}, nil, [2]string{}, "go together"},
		{"missing config file", []string{"--config", "/nonexistent/c.yaml"}, nil, [2]string{}, "no such file"},
		{"unknown config key", nil, nil, [2]string{"c.yaml", "data: x\nhttp_adress: y\n"}, `unknown key "http_adress"`},
		{"unknown toml key", nil, nil, [2]string{"c.toml", "datadir = \"x\"\n"}, `unknown key "datadir"`},
		{"config key in config", nil, nil, [2]string{"c.yaml", "config: other.yaml\n"}, `key "config" cannot be set`},
		{"duplicate key spellings", nil, nil, [2]string{"c.yaml", "max_body_bytes: 1\nmax-body-bytes: 2\n"}, "set twice"},
		{"list for scalar", nil, nil, [2]string{"c.yaml", "data: [a, b]\n"}, "not a list"},
		{"map value", nil, nil, [2]string{"c.yaml", "http: {a: b}\n"}, "unsupported value"},
		{"bad value in config", nil, nil, [2]string{"c.yaml", "replicas: lots\n"}, `key "replicas"`},
		{"bad yaml", nil, nil, [2]string{"c.yaml", "data: [\n"}, "c.yaml"},
		{"unknown extension", nil, nil, [2]string{"c.ini", "data=x\n"}, "unknown format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file[0] != "" {
				args = append([]string{"--config", writeFile(t, tt.file[0], tt.file[1])}, args...)
			}
			_, err := parseServe(args, tt.env)
			if err == nil {
				t.Fatalf("parseServe(%q, %q) succeeded; want an error containing %q", args, tt.env, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseServeWarnsOfUnknownEnv(t *testing.T) {
	c, err := parseServe(nil, []string{"CHRONOSTREAM_DAT=x", "CHRONOSTREAM_DATA=y"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.warnings) != 1 || !strings.Contains(c.warnings[0], "CHRONOSTREAM_DAT") {
		t.Fatalf("warnings = %q, want one naming CHRONOSTREAM_DAT", c.warnings)
	}
}

func TestParseServeHelp(t *testing.T) {
	_, err := parseServe([]string{"--help"}, nil)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
}

// TestServeHelpDocumentsEveryOption keeps --help complete: every flag, its
// environment variable and the contract flags of DESIGN.md.
func TestServeHelpDocumentsEveryOption(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"serve", "--help"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit code %d, stderr %s", code, errOut.String())
	}
	help := out.String()
	fs, opts := newServeFlags(&serveConfig{})
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		for _, s := range []string{"--" + f.Name + " ", envName(f.Name)} {
			if !strings.Contains(help, s) {
				t.Errorf("serve --help does not mention %q", s)
			}
		}
	})
	if n != len(opts) {
		t.Errorf("%d flags but %d documented options", n, len(opts))
	}
	for _, name := range []string{"data", "http", "graphite", "forward", "nats", "config"} {
		if fs.Lookup(name) == nil {
			t.Errorf("contract flag --%s is missing", name)
		}
	}
	if !strings.Contains(help, "power loss") {
		t.Error("serve --help does not say what --sync relaxed can lose")
	}
}

func TestRunCommands(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{nil, exitUsage, "", "chronostream serve"},
		{[]string{"version"}, exitOK, "chronostream ", ""},
		{[]string{"help"}, exitOK, "chronostream serve", ""},
		{[]string{"help", "serve"}, exitOK, "CHRONOSTREAM_DATA", ""},
		{[]string{"help", "bogus"}, exitUsage, "", `unknown command "bogus"`},
		{[]string{"bogus"}, exitUsage, "", `unknown command "bogus"`},
		{[]string{"serve", "--bogus"}, exitUsage, "", "bogus"},
		{[]string{"serve", "--config", "/nonexistent.yaml"}, exitUsage, "", "nonexistent.yaml"},
		// Beyond loopback without tokens is refused before anything starts.
		{[]string{"serve", "--http", "0.0.0.0:0", "--data", "unused"}, exitUsage, "", "beyond loopback"},
		// Graphite has no auth: tokens do not let it listen beyond loopback.
		{[]string{"serve", "--token", "t", "--graphite", ":0", "--data", "unused"}, exitUsage, "", "--graphite-allow-remote"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(context.Background(), tt.args, nil, &out, &errOut)
			if code != tt.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.code, errOut.String())
			}
			if !strings.Contains(out.String(), tt.stdout) {
				t.Errorf("stdout %q does not contain %q", out.String(), tt.stdout)
			}
			if !strings.Contains(errOut.String(), tt.stderr) {
				t.Errorf("stderr %q does not contain %q", errOut.String(), tt.stderr)
			}
		})
	}
}

func TestByteSizeAndDuration(t *testing.T) {
	sizes := map[string]int64{"0": 0, "512": 512, "1KB": 1000, "1kib": 1024, "32MiB": 32 << 20, "1.5 GiB": 3 << 29, "2TB": 2e12}
	for in, want := range sizes {
		var b byteSize
		if err := b.Set(in); err != nil || int64(b) != want {
			t.Errorf("byteSize(%q) = %d, %v; want %d", in, b, err, want)
		}
	}
	for _, bad := range []string{"", "MiB", "1XB", "-1", "9999999999TiB"} {
		var b byteSize
		if err := b.Set(bad); err == nil {
			t.Errorf("byteSize(%q) succeeded with %d", bad, b)
		}
	}
	durs := map[string]time.Duration{"0": 0, "90m": 90 * time.Minute, "30d": 30 * 24 * time.Hour, "1h30m": 90 * time.Minute}
	for in, want := range durs {
		var d duration
		if err := d.Set(in); err != nil || time.Duration(d) != want {
			t.Errorf("duration(%q) = %v, %v; want %v", in, time.Duration(d), err, want)
		}
	}
	// Defaults print in the form they are written in.
	b, d := byteSize(32<<20), duration(48*time.Hour)
	if b.String() != "32MiB" || d.String() != "2d" {
		t.Errorf("String() = %s, %s", b.String(), d.String())
	}
}

// TestConfigChronicles checks the config file's per-chronicle retention
// section, in YAML and TOML, and its errors.
func TestConfigChronicles(t *testing.T) {
	yml := writeFile(t, "c.yaml", `
chronicles:
  app: {max-age: 7d, max-bytes: 10GiB}
  "audit log": {max_events: 1000000}
  plain:
`)
	c, err := parseServe([]string{"--config", yml}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := c.server.Chronicles
	if len(got) != 3 || got["app"].MaxAge != 7*24*time.Hour || got["app"].MaxBytes != 10<<30 ||
		got["audit log"].MaxEvents != 1000000 || got["plain"] != (store.Retention{}) {
		t.Errorf("chronicles = %+v", got)
	}
	tml := writeFile(t, "c.toml", "[chronicles.metrics]\nmax-age = \"90d\"\n")
	c, err = parseServe([]string{"--config", tml}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.server.Chronicles["metrics"].MaxAge != 90*24*time.Hour {
		t.Errorf("toml chronicles = %+v", c.server.Chronicles)
	}
	for _, bad := range []string{
		"chronicles: [a]",
		"chronicles: {a: {max-age: soon}}",
		"chronicles: {a: {max-events: -1}}",
		"chronicles: {a: {keep: forever}}",
		"chronicles: {'': {}}",
	} {
		if _, err := parseServe([]string{"--config", writeFile(t, "bad.yaml", bad)}, nil); err == nil || !strings.Contains(err.Error(), "chronicles") {
			t.Errorf("%s: err = %v, want an error naming the chronicles key", bad, err)
		}
	}
}
