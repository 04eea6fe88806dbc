package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chronostream/chronostream/internal/canary"
	"github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/tlsconf/tlstest"
)

// TestCanarySecureServer runs the built canary, as an operator would,
// against a server locked down every way it can be: TLS from a private CA
// on every listener, client certificates required (mutual TLS), a token,
// and a Forward shared key with a user. The canary takes its TLS files
// from a config file and its secrets from the environment; all five
// protocols must get events acknowledged and read back, none missing.
// Each missing piece of the configuration must fail at once with a message
// that names it.
func TestCanarySecureServer(t *testing.T) {
	const (
		token   = "e2e-canary-token"
		fwdKey  = "e2e-forward-key"
		fwdUser = "canary"
		fwdPass = "e2e-forward-password"
	)
	bin := testutil.BuildBinary(t)
	ca := tlstest.NewCA(t, "e2e")
	srvCert := ca.Server(t, "hub")
	cliCert := ca.Client(t, "canary")
	p := testutil.StartBinary(t, bin, "--data", t.TempDir(), "--forward", "127.0.0.1:0",
		"--tls-cert", srvCert.CertFile, "--tls-key", srvCert.KeyFile, "--tls-client-ca", ca.File,
		"--token", token, "--forward-shared-key", fwdKey, "--forward-username", fwdUser, "--forward-password", fwdPass)
	server := "https://" + p.Addr()

	dir := t.TempDir()
	writeConfig := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := writeConfig("canary.yaml", "tls-ca: "+ca.File+"\ntls-cert: "+cliCert.CertFile+"\ntls-key: "+cliCert.KeyFile+"\n")
	noCA := writeConfig("no-ca.yaml", "tls-cert: "+cliCert.CertFile+"\ntls-key: "+cliCert.KeyFile+"\n")
	noCert := writeConfig("no-cert.yaml", "tls-ca: "+ca.File+"\n")
	secrets := []string{"CHRONOSTREAM_TOKEN=" + token, "CHRONOSTREAM_FORWARD_SHARED_KEY=" + fwdKey,
		"CHRONOSTREAM_FORWARD_USERNAME=" + fwdUser, "CHRONOSTREAM_FORWARD_PASSWORD=" + fwdPass}

	// run runs a client command with the config file, the environment
	// (later entries win) and args; it returns the exit code and output.
	run := func(config string, env []string, args ...string) (code int, stdout, stderr string) {
		t.Helper()
		cmd := exec.Command(bin, append(args, "--server", server, "--config", config)...)
		cmd.Env = append(cleanEnv(), env...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), out.String(), errb.String()
	}
	canaryArgs := []string{"canary", "--protocols", "ndjson,ws,lineproto,forward,otlp", "--forward", p.ForwardAddr(),
		"--rate", "20", "--duration", "4s", "--sweep", "500ms", "--grace", "10s", "--drain", "1m", "--summary", "json"}

	t.Run("secured", func(t *testing.T) {
		code, stdout, stderr := run(good, secrets, canaryArgs...)
		if code != 0 {
			t.Fatalf("canary exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		var sum canary.Summary
		if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
			t.Fatalf("summary %q: %v", stdout, err)
		}
		for _, proto := range canary.Protocols {
			n, ok := sum.Protocols[proto]
			switch {
			case !ok:
				t.Errorf("%s: not in the summary %s", proto, stdout)
			case n.Acked == 0 || n.ReadSeen < n.Acked:
				t.Errorf("%s: acked %d, read back %d: want some, all read back", proto, n.Acked, n.ReadSeen)
			case n.Missing != 0 || n.DupUnwanted != 0:
				t.Errorf("%s: missing %d, unwanted duplicates %d", proto, n.Missing, n.DupUnwanted)
			}
		}
		for _, s := range []string{token, fwdKey, fwdPass} {
			if strings.Contains(stderr, s) || strings.Contains(p.Stderr(), s) {
				t.Errorf("a secret appears in the logs")
			}
		}
	})

	// The other remote commands share the settings: query over mutual TLS.
	t.Run("query", func(t *testing.T) {
		code, stdout, stderr := run(good, secrets, "query", "SHOW DATABASES")
		if code != 0 || !strings.Contains(stdout, "canary") {
			t.Errorf("query: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
	})

	// Refusals: each stops the canary at once (no --duration to wait out)
	// with exit 1 and a message that says what to fix. A server that
	// wants a client certificate ends the connection after the handshake,
	// and its alert saying why may be lost to the reset (then the canary
	// waits for the server as for one restarting, with the same hint, and
	// gives up after its --duration).
	for _, tc := range []struct {
		name     string
		config   string
		env      []string
		duration string
		want     []string
	}{
		{"no CA", noCA, secrets, "0", []string{"certificate signed by unknown authority", "--tls-ca"}},
		{"no client certificate", noCert, secrets, "5s", []string{"client certificate", "--tls-cert"}},
		{"wrong token", good, append(secrets, "CHRONOSTREAM_TOKEN=wrong"), "0", []string{"401 Unauthorized", "token"}},
		{"wrong shared key", good, append(secrets, "CHRONOSTREAM_FORWARD_SHARED_KEY=wrong"), "0", []string{"shared key mismatch"}},
		{"wrong password", good, append(secrets, "CHRONOSTREAM_FORWARD_PASSWORD=wrong"), "0", []string{"username/password mismatch"}},
		{"no shared key", good, []string{"CHRONOSTREAM_TOKEN=" + token}, "0", []string{"--forward-shared-key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{}, canaryArgs...), "--duration", tc.duration)
			code, stdout, stderr := run(tc.config, tc.env, args...)
			if code != 1 {
				t.Errorf("exit %d, want 1\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// cleanEnv is the test's environment without CHRONOSTREAM_* variables, so
// that only what a test sets reaches the command.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHRONOSTREAM_") {
			env = append(env, kv)
		}
	}
	return env
}
