package cli

import (
	"bytes"
	"flag"
	"strings"
	"testing"

	"github.com/chronostream/chronostream/internal/tlsconf/tlstest"
)

// remoteTables are the option tables of every command that talks to a
// server, with the remote options each binds.
func remoteTables() map[string]func() (*flag.FlagSet, []option, *remoteConfig) {
	return map[string]func() (*flag.FlagSet, []option, *remoteConfig){
		"agent": func() (*flag.FlagSet, []option, *remoteConfig) {
			c := &agentConfig{}
			fs, o := newAgentFlags(c)
			return fs, o, &c.remote
		},
		"send": func() (*flag.FlagSet, []option, *remoteConfig) {
			c := &sendConfig{}
			fs, o := newSendFlags(c)
			return fs, o, &c.remote
		},
		"tail": func() (*flag.FlagSet, []option, *remoteConfig) {
			c := &tailConfig{}
			fs, o := newTailFlags(c)
			return fs, o, &c.remote
		},
		"query": func() (*flag.FlagSet, []option, *remoteConfig) {
			c := &queryConfig{}
			fs, o := newQueryFlags(c)
			return fs, o, &c.remote
		},
		"forward": func() (*flag.FlagSet, []option, *remoteConfig) {
			c := &forwardConfig{}
			fs, o := newForwardFlags(c)
			return fs, o, &c.remote
		},
		"annotate": func() (*flag.FlagSet, []option, *remoteConfig) {
			c := &annotateConfig{}
			fs, o := newAnnotateFlags(c)
			return fs, o, &c.remote
		},
		"token": func() (*flag.FlagSet, []option, *remoteConfig) {
			c := &tokenConfig{}
			fs, o := newTokenFlags(c)
			return fs, o, &c.remote
		},
		"canary": func() (*flag.FlagSet, []option, *remoteConfig) {
			c := &canaryConfig{}
			fs, o := newCanaryFlags(c)
			return fs, o, &c.remote
		},
	}
}

// TestRemoteTLSOptions: every remote command takes the TLS options by
// flag, CHRONOSTREAM_* variable and config-file key, with the usual
// precedence, and builds its TLS configuration from them at parse time.
func TestRemoteTLSOptions(t *testing.T) {
	ca := tlstest.NewCA(t, "cli")
	other := tlstest.NewCA(t, "other")
	pair := ca.Client(t, "me")
	file := writeFile(t, "remote.yaml", "tls-ca: "+other.File+"\ntls_cert: "+pair.CertFile+"\ntls-key: "+pair.KeyFile+"\n")
	for cmd, table := range remoteTables() {
		t.Run(cmd, func(t *testing.T) {
			fs, opts, rc := table()
			// The CA from the flag beats the environment's and the file's;
			// the certificate comes from the file.
			_, warnings, err := parseCommand(cmd, fs, opts, rc, []string{"--config", file, "--tls-ca", ca.File},
				[]string{"CHRONOSTREAM_TLS_CA=/nonexistent.pem"})
			if err != nil || len(warnings) > 0 {
				t.Fatalf("parse: %v, warnings %v", err, warnings)
			}
			if rc.tlsOpts.CAFile != ca.File || rc.tlsOpts.CertFile != pair.CertFile || rc.tlsOpts.KeyFile != pair.KeyFile {
				t.Errorf("options %+v", rc.tlsOpts)
			}
			if rc.tls == nil || !rc.tls.RootCAs.Equal(ca.Pool) || rc.tls.GetClientCertificate == nil {
				t.Errorf("TLS configuration not made from the options: %+v", rc.tls)
			}
			if got := rc.transport().TLSClientConfig; got == nil || got == rc.tls || !got.RootCAs.Equal(ca.Pool) {
				t.Errorf("the transport does not carry its own copy of the TLS configuration")
			}
		})
	}
}

func TestRemoteTLSInsecureIsWarned(t *testing.T) {
	for _, src := range []struct {
		args, env []string
	}{
		{args: []string{"--tls-insecure-skip-verify"}},
		{env: []string{"CHRONOSTREAM_TLS_INSECURE_SKIP_VERIFY=true"}},
		{args: []string{"--config", writeFile(t, "i.toml", "tls_insecure_skip_verify = true\n")}},
	} {
		c := &tailConfig{}
		fs, opts := newTailFlags(c)
		_, warnings, err := parseCommand("tail", fs, opts, &c.remote, src.args, src.env)
		if err != nil {
			t.Fatal(err)
		}
		if !c.remote.tls.InsecureSkipVerify || len(warnings) != 1 || !strings.Contains(warnings[0], "NOT verified") {
			t.Errorf("%v %v: insecure %v, warnings %q", src.args, src.env, c.remote.tls.InsecureSkipVerify, warnings)
		}
	}
	c := &tailConfig{}
	fs, opts := newTailFlags(c)
	if _, warnings, err := parseCommand("tail", fs, opts, &c.remote, []string{"--tls-insecure-skip-verify=false"}, nil); err != nil || len(warnings) > 0 || c.remote.tls.InsecureSkipVerify {
		t.Errorf("=false: %v %q", err, warnings)
	}
}

func TestRemoteTLSErrors(t *testing.T) {
	ca := tlstest.NewCA(t, "cli")
	for _, tc := range []struct {
		args, env []string
		want      string
	}{
		{args: []string{"--tls-cert", ca.File}, want: "--tls-cert and --tls-key go together"},
		{env: []string{"CHRONOSTREAM_TLS_KEY=k.pem"}, want: "--tls-cert and --tls-key go together"},
		{args: []string{"--tls-ca", "/nonexistent/ca.pem"}, want: "no such file"},
		{args: []string{"--tls-ca", ca.File, "--tls-insecure-skip-verify"}, want: "exclude each other"},
		{env: []string{"CHRONOSTREAM_TLS_INSECURE_SKIP_VERIFY=maybe"}, want: "invalid boolean"},
	} {
		c := &queryConfig{}
		fs, opts := newQueryFlags(c)
		_, _, err := parseCommand("query", fs, opts, &c.remote, tc.args, tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: %v, want %q", tc.args, tc.env, err, tc.want)
		}
	}
}

// TestCanaryForwardOptions: the canary's Forward security options, and
// --forward-tls auto following the server's scheme.
func TestCanaryForwardOptions(t *testing.T) {
	for _, tc := range []struct {
		args, env []string
		tls       bool
	}{
		{args: []string{"--server", "https://hub:4318"}, tls: true},
		{args: []string{"--server", "http://hub:4318"}, tls: false},
		{args: []string{"--server", "https://hub:4318", "--forward-tls", "false"}, tls: false},
		{args: []string{"--server", "http://hub:4318"}, env: []string{"CHRONOSTREAM_FORWARD_TLS=true"}, tls: true},
	} {
		c := &canaryConfig{}
		fs, opts := newCanaryFlags(c)
		if _, _, err := parseCommand("canary", fs, opts, &c.remote, tc.args, tc.env); err != nil {
			t.Fatal(err)
		}
		if c.forwardOverTLS() != tc.tls {
			t.Errorf("%v %v: Forward over TLS %v, want %v", tc.args, tc.env, c.forwardOverTLS(), tc.tls)
		}
	}
	c := &canaryConfig{}
	fs, opts := newCanaryFlags(c)
	_, _, err := parseCommand("canary", fs, opts, &c.remote, []string{"--config", writeFile(t, "c.yaml", "forward-username: u\n")},
		[]string{"CHRONOSTREAM_FORWARD_SHARED_KEY=k", "CHRONOSTREAM_FORWARD_PASSWORD=p"})
	if err != nil || c.forwardKey != "k" || c.forwardUser != "u" || c.forwardPassword != "p" {
		t.Errorf("%v: key %q user %q password %q", err, c.forwardKey, c.forwardUser, c.forwardPassword)
	}
	if _, _, err := parseCommand("canary", fs, opts, &c.remote, []string{"--forward-tls", "yes"}, nil); err == nil {
		t.Error("--forward-tls yes accepted")
	}
}

// TestRemoteHelpDocumentsTLS: each remote command's --help names the TLS
// options and their variables.
func TestRemoteHelpDocumentsTLS(t *testing.T) {
	for cmd := range remoteTables() {
		var out bytes.Buffer
		if code := Run(t.Context(), []string{cmd, "--help"}, &out, &out); code != exitOK {
			t.Fatalf("%s --help: exit %d", cmd, code)
		}
		for _, s := range []string{"--tls-ca", "CHRONOSTREAM_TLS_CA", "--tls-cert", "--tls-key", "--tls-insecure-skip-verify", "CHRONOSTREAM_TLS_INSECURE_SKIP_VERIFY"} {
			if !strings.Contains(out.String(), s) {
				t.Errorf("%s --help does not mention %s", cmd, s)
			}
		}
	}
}

// TestHTTPBase: the commands that speak HTTP to --server (tail, token,
// annotate) reach the same server when given the WebSocket URL send takes.
func TestHTTPBase(t *testing.T) {
	for in, want := range map[string]string{
		"http://hub:4318":      "http://hub:4318",
		"https://hub:4318//":   "https://hub:4318",
		"ws://hub:4318/":       "http://hub:4318",
		"wss://hub:4318/x/":    "https://hub:4318/x",
		"http://hub/ws://x":    "http://hub/ws://x",
		"https://hub/p?u=wss:": "https://hub/p?u=wss:",
	} {
		if got := httpBase(in); got != want {
			t.Errorf("httpBase(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEveryCommandsVariablesKnown: a CHRONOSTREAM_* variable of one client
// command (a shared environment, a systemd unit) is not reported as
// unknown by another.
func TestEveryCommandsVariablesKnown(t *testing.T) {
	known := allOptionNames()
	for cmd, table := range remoteTables() {
		_, opts, _ := table()
		for _, o := range opts {
			if !known[o.name] {
				t.Errorf("%s --%s: %s would be reported as unknown by the other commands", cmd, o.name, envName(o.name))
			}
		}
	}
	c := &tailConfig{}
	fs, opts := newTailFlags(c)
	if _, warnings, err := parseCommand("tail", fs, opts, &c.remote, nil, []string{"CHRONOSTREAM_SCOPE=write"}); err != nil || len(warnings) > 0 {
		t.Errorf("tail with token's CHRONOSTREAM_SCOPE: %v %q", err, warnings)
	}
}
