package e2e

import (
	"crypto/tls"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/testutil"
)

// TestScopedTokensSurviveKill9 drives the built binary: `chronostream
// token create` against a server with an admin --token, the new token
// writes to its chronicle only; after kill -9 and a restart on the same
// data it still does (the bucket is in the log); a revocation also
// survives kill -9. No secret ever appears in the server's logs.
func TestScopedTokensSurviveKill9(t *testing.T) {
	const admin = "e2e-admin-token"
	bin := testutil.BuildBinary(t)
	data := t.TempDir()
	p := testutil.StartBinary(t, bin, "--data", data, "--token", admin)
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append(args, "--server", p.URL(), "--token", admin)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chronostream %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := cli("token", "create", "--name", "ci", "--scope", "write", "-r", "app")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	secret := lines[len(lines)-1]
	write := func(p *testutil.Proc, db string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", p.URL()+"/write?db="+db, strings.NewReader("m v=1\n"))
		req.Header.Set("Authorization", "Token "+secret)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := write(p, "app"); c != 204 {
		t.Fatalf("write with the new token: %d", c)
	}
	if c := write(p, "other"); c != 403 {
		t.Errorf("write to another chronicle: %d, want 403", c)
	}
	logs := p.Stderr()
	p.Kill9()

	p = testutil.StartBinary(t, bin, "--data", data, "--token", admin)
	if c := write(p, "app"); c != 204 {
		t.Fatalf("after kill -9 and restart: %d, want 204", c)
	}
	if out := cli("token", "list"); !strings.Contains(out, "ci ") {
		t.Errorf("list after restart: %q", out)
	}
	cli("token", "revoke", "ci")
	logs += p.Stderr()
	p.Kill9()

	p = testutil.StartBinary(t, bin, "--data", data, "--token", admin)
	if c := write(p, "app"); c != 401 {
		t.Errorf("revoked token after kill -9 and restart: %d, want 401", c)
	}
	logs += p.Stderr()
	for _, s := range []string{admin, secret} {
		if strings.Contains(logs, s) {
			t.Errorf("a secret appears in the server's logs")
		}
	}
	if !strings.Contains(logs, "token created") {
		t.Errorf("logs not captured: %.300s", logs)
	}
}

// TestSelfSignedTLSBinary: `serve --tls-self-signed` answers https on its
// HTTP port at once.
func TestSelfSignedTLSBinary(t *testing.T) {
	bin := testutil.BuildBinary(t)
	p := testutil.StartBinary(t, bin, "--tls-self-signed")
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := hc.Get("https://" + p.Addr() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Errorf("https /health: %d", resp.StatusCode)
	}
}

// TestSIGHUPWithoutTLS: operators send SIGHUP to reload; a server with
// nothing to reload must log it and go on serving, not die of the signal's
// default action.
func TestSIGHUPWithoutTLS(t *testing.T) {
	bin := testutil.BuildBinary(t)
	p := testutil.StartBinary(t, bin)
	if err := syscall.Kill(p.PID(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		return strings.Contains(p.Stderr(), "SIGHUP: nothing to reload")
	}, "the server logs the SIGHUP")
	if p.Exited() {
		t.Fatalf("SIGHUP ended the server:\n%s", p.Stderr())
	}
	resp, err := http.Get(p.URL() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/health after SIGHUP: %d", resp.StatusCode)
	}
}
