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
		if code != http.StatusOK || ck == nil || ck.Value == "" || ck.Value == read || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
			t.Errorf("login from %s: %d %+v", name, code, ck)
		}
		if code, ck := session("DELETE", hdr); code != http.StatusNoContent || ck == nil || ck.MaxAge >= 0 || ck.Value != "" {
			t.Errorf("log out from %s: %d %+v, want 204 and the cookie cleared", name, code, ck)
		}
	}
}

// TestSessionIsServerSide: the UI's cookie holds a session id, not the
// token; logging out ends the session on the server, so a copy of the
// cookie stops working, and revoking the token ends its sessions.
func TestSessionIsServerSide(t *testing.T) {
	const admin = "admin-secret-sessions-0123456789"
	s := servertest.RunServer(t, server.Options{Tokens: []string{admin}, AutoCreate: true})
	c := scopeClient{t, "http://" + s.Addr()}
	read := c.create(admin, "ui", auth.ScopeRead)
	login := func(token string) *http.Cookie {
		t.Helper()
		resp, err := http.Post(c.base+"/api/v1/session", "application/json", strings.NewReader(`{"token":"`+token+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, ck := range resp.Cookies() {
			if ck.Name == auth.SessionCookie && resp.StatusCode == http.StatusOK {
				return ck
			}
		}
		t.Fatalf("login: %d, no session cookie", resp.StatusCode)
		return nil
	}
	with := func(method string, ck *http.Cookie) int {
		t.Helper()
		req, _ := http.NewRequest(method, c.base+"/api/v1/session", nil)
		req.AddCookie(ck)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	ck := login(read)
	if ck.Value == read || strings.Contains(ck.Value, read) {
		t.Fatalf("the cookie holds the token: %q", ck.Value)
	}
	if code := with("GET", ck); code != http.StatusOK {
		t.Fatalf("read with the session: %d", code)
	}
	if code := with("DELETE", ck); code != http.StatusNoContent {
		t.Fatalf("logout: %d", code)
	}
	if code := with("GET", ck); code != http.StatusUnauthorized {
		t.Errorf("a copy of the cookie after logout: %d, want 401", code)
	}

	// --token tokens log in too; revoking a stored token ends its sessions.
	if code := with("GET", login(admin)); code != http.StatusOK {
		t.Errorf("a session of a --token token: %d", code)
	}
	ck = login(read)
	if code, out := c.do("DELETE", "/api/v1/tokens/ui", admin, nil, nil); code != http.StatusOK {
		t.Fatalf("revoke: %d %s", code, out)
	}
	if code := with("GET", ck); code != http.StatusUnauthorized {
		t.Errorf("a session of a revoked token: %d, want 401", code)
	}
	if code := with("GET", &http.Cookie{Name: auth.SessionCookie, Value: admin}); code != http.StatusUnauthorized {
		t.Errorf("a token as the cookie: %d, want 401 (the cookie takes session ids only)", code)
	}

	// A login with a token nobody issued is counted as the guard's
	// refusals are.
	count := func() string {
		_, m := c.do("GET", "/metrics", "", nil, nil)
		for _, l := range strings.Split(m, "\n") {
			if strings.HasPrefix(l, `chronostream_http_rejected_total{reason="unauthorized"}`) {
				return l
			}
		}
		return ""
	}
	before := count()
	resp, err := http.Post(c.base+"/api/v1/session", "application/json", strings.NewReader(`{"token":"guess"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if after := count(); resp.StatusCode != http.StatusUnauthorized || after == before {
		t.Errorf("a login with a wrong token: %d, unauthorized count %q then %q", resp.StatusCode, before, after)
	}
}

// TestSessionCookieUnderURLPrefix: behind a reverse proxy's prefix the
// session cookie is scoped to it, so other sites served by the same host
// never receive it; the UI under the prefix reads with it.
func TestSessionCookieUnderURLPrefix(t *testing.T) {
	const admin = "admin-secret-prefix-0123456789"
	s := servertest.RunServer(t, server.Options{Tokens: []string{admin}, AutoCreate: true, URLPrefix: "/cs/"})
	base := "http://" + s.Addr() + "/cs"
	resp, err := http.Post(base+"/api/v1/session", "application/json", strings.NewReader(`{"token":"`+admin+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == auth.SessionCookie {
			ck = c
		}
	}
	if resp.StatusCode != http.StatusOK || ck == nil || ck.Path != "/cs" {
		t.Fatalf("login under /cs: %d, cookie %+v; want its Path /cs", resp.StatusCode, ck)
	}
	req, _ := http.NewRequest("GET", base+"/api/v1/session", nil)
	req.AddCookie(ck)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("read under /cs with the cookie: %d", resp.StatusCode)
	}
}
