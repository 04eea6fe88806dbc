package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

// TestBrowserSafety: a browser's write from another site is refused (a
// loopback server with no tokens is the case that matters: any page a
// user visits could reach it), an allowed origin gets CORS and may write,
// clients that are not browsers are unaffected; WebSocket upgrades from
// other origins are refused; the UI carries its security headers; every
// refusal is counted on /metrics by reason.
func TestBrowserSafety(t *testing.T) {
	const token = "browser-token"
	const allowed = "https://app.example"
	s := servertest.RunServer(t, server.Options{AutoCreate: true, Tokens: []string{token}, CORSOrigins: []string{allowed + "/"}})
	base := "http://" + s.Addr()
	do := func(method, path string, hdr map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(`{"a":1}`+"\n"))
		req.Header.Set("Authorization", "Bearer "+token)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	const write = "/api/v1/chronicles/b/stories/s/events"
	if r := do("POST", write, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}); r.StatusCode != 403 {
		t.Errorf("cross-site write: %d, want 403", r.StatusCode)
	}
	if r := do("POST", write, map[string]string{"Origin": "https://evil.example"}); r.StatusCode != 403 {
		t.Errorf("cross-origin write (Origin only): %d, want 403", r.StatusCode)
	}
	r := do("POST", write, map[string]string{"Origin": allowed, "Sec-Fetch-Site": "cross-site"})
	if r.StatusCode != 200 || r.Header.Get("Access-Control-Allow-Origin") != allowed {
		t.Errorf("write from the allowed origin: %d, ACAO %q", r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"))
	}
	if r := do("POST", write, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": base}); r.StatusCode != 200 {
		t.Errorf("same-origin write: %d", r.StatusCode)
	}
	if r := do("POST", write, nil); r.StatusCode != 200 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("write without Origin (curl): %d %v", r.StatusCode, r.Header)
	}
	pre := do("OPTIONS", write, map[string]string{"Origin": allowed, "Access-Control-Request-Method": "POST",
		"Access-Control-Request-Headers": "authorization"})
	if pre.StatusCode != 204 || !strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight from the allowed origin: %d %v", pre.StatusCode, pre.Header)
	}
	if pre := do("OPTIONS", write, map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}); pre.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin got CORS headers: %v", pre.Header)
	}
	if r := do("GET", "/api/v1/chronicles/b/stories/s/events", map[string]string{"Origin": "https://evil.example"}); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("a read from another origin got CORS headers: %v", r.Header)
	}

	// The UI.
	ui := do("GET", "/", map[string]string{"Accept": "text/html"})
	csp := ui.Header.Get("Content-Security-Policy")
	if ui.StatusCode != 200 || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") ||
		!strings.Contains(csp, "frame-ancestors 'none'") || ui.Header.Get("X-Frame-Options") != "DENY" ||
		ui.Header.Get("X-Content-Type-Options") != "nosniff" || ui.Header.Get("Referrer-Policy") == "" {
		t.Errorf("UI headers: %d %v", ui.StatusCode, ui.Header)
	}

	// WebSocket upgrades: same host, allowed origins and non-browsers only.
	// Both kinds: ingest on "/" and a tail (which honoured no allowed
	// origin and counted no refusal before httpsec.Wrap checked every
	// upgrade).
	auth := http.Header{"Authorization": {"Bearer " + token}}
	for _, ws := range []string{"ws://" + s.Addr() + "/?chronicle=b&story=ws", "ws://" + s.Addr() + "/api/v1/chronicles/b/stories/s/tail"} {
		for origin, ok := range map[string]bool{"": true, "http://" + s.Addr(): true, allowed: true, "https://evil.example": false} {
			h := auth.Clone()
			if origin != "" {
				h.Set("Origin", origin)
			}
			c, resp, err := websocket.Dial(context.Background(), ws, &websocket.DialOptions{HTTPHeader: h})
			if ok != (err == nil) {
				t.Errorf("WebSocket %s from origin %q: %v", ws, origin, err)
			}
			if err == nil {
				c.Close(websocket.StatusNormalClosure, "")
			} else if resp == nil || resp.StatusCode != 403 {
				t.Errorf("WebSocket %s from origin %q: %v, want 403", ws, origin, resp)
			}
		}
	}

	// Refusals by reason on /metrics.
	do("GET", "/api/v1/chronicles", map[string]string{"Authorization": "Bearer wrong"})
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`chronostream_http_rejected_total{reason="cross_origin"} 2`,
		`chronostream_http_rejected_total{reason="websocket_origin"} 2`,
		`chronostream_http_rejected_total{reason="unauthorized"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
