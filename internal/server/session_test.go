package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

// TestSessionRefusesOtherOrigins: another page cannot log a browser in to
// the UI with the attacker's token (login CSRF: the victim would then read
// what the attacker's token shows, and the attacker's chronicles) nor log
// it out. A browser sends such a "simple" POST without a preflight, so the
// server's cross-origin protection must refuse it before the handler sets
// any cookie; the UI's own same-origin login, and clients that are not
// browsers, get their session.
func TestSessionRefusesOtherOrigins(t *testing.T) {
	const admin = "admin-secret-session-0123456789"
	s := servertest.RunServer(t, server.Options{Tokens: []string{admin}, AutoCreate: true})
	c := scopeClient{t, "http://" + s.Addr()}
	read := c.create(admin, "ui", auth.ScopeRead)
	login := `{"token":"` + read + `"}`

	session := func(method string, hdr map[string]string) (int, *http.Cookie) {
		t.Helper()
		req, err := http.NewRequest(method, c.base+"/api/v1/session", strings.NewReader(login))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/plain") // what a cross-origin form or no-cors fetch can send
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, ck := range resp.Cookies() {
			if ck.Name == auth.SessionCookie {
				return resp.StatusCode, ck
			}
		}
		return resp.StatusCode, nil
	}

	for _, tc := range []struct {
		name string
		hdr  map[string]string
	}{
		{"another site", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}},
		// Another port of the same host is the same site (so SameSite does
		// not help) but another origin: another local service's page.
		{"another port of the host", map[string]string{"Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-site"}},
		{"a browser without Sec-Fetch-Site", map[string]string{"Origin": "https://evil.example"}},
	} {
		for _, method := range []string{"POST", "DELETE"} {
			if code, ck := session(method, tc.hdr); code != http.StatusForbidden || ck != nil {
				t.Errorf("%s %s: %d, cookie %v; want 403 and no cookie", method, tc.name, code, ck != nil)
			}
		}
	}

	// The UI's own login (same origin), and a client that is no browser.
	for name, hdr := range map[string]map[string]string{
		"same origin": {"Origin": c.base, "Sec-Fetch-Site": "same-origin"},
		"no browser":  nil,
	} {
		code, ck := session("POST", hdr)
		if code != http.StatusOK || ck == nil || ck.Value != read || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
			t.Errorf("login from %s: %d %+v", name, code, ck)
		}
		if code, ck := session("DELETE", hdr); code != http.StatusNoContent || ck == nil || ck.MaxAge >= 0 || ck.Value != "" {
			t.Errorf("log out from %s: %d %+v, want 204 and the cookie cleared", name, code, ck)
		}
	}
}
