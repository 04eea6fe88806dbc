package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

// TestTokensSharedThroughTheLog: two servers on one NATS deployment (a
// real nats-server) share the token bucket: a token created on one is
// accepted by the other, its use is recorded, and revoking it on the
// second refuses it on the first.
func TestTokensSharedThroughTheLog(t *testing.T) {
	const admin = "shared-admin"
	url := testutil.StartNATSServer(t)
	a := servertest.RunServer(t, server.Options{NATSURL: url, Tokens: []string{admin}, AutoCreate: true})
	b := servertest.RunServer(t, server.Options{NATSURL: url, Tokens: []string{admin}, AutoCreate: true})
	ca, cb := scopeClient{t, "http://" + a.Addr()}, scopeClient{t, "http://" + b.Addr()}
	secret := ca.create(admin, "shared", auth.ScopeWrite, "app")
	write := func(c scopeClient) int {
		code, _ := c.do("POST", "/write?db=app", secret, []byte("m v=1\n"), nil)
		return code
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return write(cb) == http.StatusNoContent },
		"the other node accepts the token")
	testutil.Eventually(t, 10*time.Second, func() bool {
		_, list := ca.do("GET", "/api/v1/tokens", admin, nil, nil)
		return strings.Contains(list, `"last_used"`)
	}, "the token's use is recorded")
	if code, out := cb.do("DELETE", "/api/v1/tokens/shared", admin, nil, nil); code != 200 {
		t.Fatalf("revoke on b: %d %s", code, out)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return write(ca) == http.StatusUnauthorized },
		"the first node refuses the revoked token")
}
