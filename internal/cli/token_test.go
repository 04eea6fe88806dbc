package cli

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

// TestTokenCommand: create prints a secret once (last line) that then
// writes to its chronicle and nowhere else; list shows it without the
// secret; revoke by name ends it; without an admin token the API refuses.
func TestTokenCommand(t *testing.T) {
	const admin = "cli-admin-token"
	srv := servertest.RunServer(t, server.Options{Tokens: []string{admin}, AutoCreate: true})
	base := "http://" + srv.Addr()
	code, out, errOut := runCmd(t, "token", "create", "--server", base, "--token", admin,
		"--name", "ci", "--scope", "write", "-r", "app")
	if code != exitOK {
		t.Fatalf("create: %d %s %s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	secret := lines[len(lines)-1]
	if !strings.HasPrefix(secret, "cs_") || !strings.Contains(out, "scopes write, chronicles app") {
		t.Fatalf("create printed %q", out)
	}
	write := func(db string) int {
		req, _ := http.NewRequest("POST", base+"/write?db="+db, strings.NewReader("m v=1\n"))
		req.Header.Set("Authorization", "Token "+secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := write("app"); c != http.StatusNoContent {
		t.Errorf("write with the new token: %d", c)
	}
	if c := write("other"); c != http.StatusForbidden {
		t.Errorf("write to another chronicle: %d, want 403", c)
	}

	code, out, _ = runCmd(t, "token", "list", "--server", base, "--token", admin)
	if code != exitOK || !strings.Contains(out, "ci ") || !strings.Contains(out, "write") || strings.Contains(out, secret) {
		t.Errorf("list: %d %q", code, out)
	}
	if code, _, errOut = runCmd(t, "token", "list", "--server", base, "--token", secret); code != exitFailure || !strings.Contains(errOut, "403") {
		t.Errorf("list with a write token: %d %q", code, errOut)
	}
	if code, _, errOut = runCmd(t, "token", "create", "--server", base, "--token", admin, "--name", "x", "--scope", "root"); code != exitFailure || !strings.Contains(errOut, "unknown scope") {
		t.Errorf("create with a bad scope: %d %q", code, errOut)
	}
	if code, out, _ = runCmd(t, "token", "revoke", "--server", base, "--token", admin, "ci"); code != exitOK || !strings.Contains(out, `revoked token "ci"`) {
		t.Fatalf("revoke: %d %q", code, out)
	}
	if c := write("app"); c != http.StatusUnauthorized {
		t.Errorf("write with the revoked token: %d, want 401", c)
	}
	if code, _, _ = runCmd(t, "token", "frob"); code != exitUsage {
		t.Errorf("unknown action: %d", code)
	}
}
