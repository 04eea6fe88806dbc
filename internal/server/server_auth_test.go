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

// TestTokensProtectEveryRoute drives the assembled server: with tokens
// configured, every ingest, read and tail route answers 401 without one and
// works with one, whichever way a client sends it.
func TestTokensProtectEveryRoute(t *testing.T) {
	const token = "s3cret"
	s := servertest.RunServer(t, server.Options{Tokens: []string{token}, AutoCreate: true})
	base := "http://" + s.Addr()
	auths := map[string]string{"none": "", "wrong": "Bearer nope", "bearer": "Bearer " + token, "influx": "Token " + token}

	do := func(method, path, auth, body string) (*http.Response, context.CancelFunc) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, cancel
	}
	routes := []struct {
		method, path, body string
		ok                 int
		stream             bool // a live tail: check the status, then hang up
	}{
		{"POST", "/?chronicle=c&story=s", "{\"a\":1}\n", 200, false},
		{"POST", "/api/v1/chronicles/c/stories/s/events", "{\"a\":2}\n", 200, false},
		{"GET", "/api/v1/chronicles", "", 200, false},
		{"GET", "/api/v1/chronicles/c", "", 200, false},
		{"GET", "/api/v1/chronicles/c/stories", "", 200, false},
		{"GET", "/api/v1/chronicles/c/stories/s/events", "", 200, false},
		{"GET", "/api/v1/chronicles/c/events?format=ndjson", "", 200, false},
		{"GET", "/api/v1/sources", "", 200, false},
		{"GET", "/api/v1/chronicles/c/stories/s/tail", "", 200, true},
		{"GET", "/api/v1/chronicles/c/tail", "", 200, true},
		{"POST", "/api/v1/data", `{"metric":"tl.m","value":1}`, 201, false},
		{"GET", "/api/v1/data/tl.m", "", 200, false},
		{"GET", "/api/v1/metric", "", 200, false},
		{"GET", "/api/v1/metric/tl.m", "", 200, false},
	}
	for _, rt := range routes {
		for name, auth := range auths {
			want := rt.ok
			if name == "none" || name == "wrong" {
				want = http.StatusUnauthorized
			}
			resp, cancel := do(rt.method, rt.path, auth, rt.body)
			if !rt.stream || resp.StatusCode != 200 {
				io.Copy(io.Discard, resp.Body)
			}
			resp.Body.Close()
			cancel()
			if resp.StatusCode != want {
				t.Errorf("%s %s with %s token: %d, want %d", rt.method, rt.path, name, resp.StatusCode, want)
			}
		}
	}

	// WebSocket: ingest on GET / and the tail, refused at the handshake.
	ws := "ws://" + s.Addr()
	for _, path := range []string{"/?chronicle=c&story=s", "/api/v1/chronicles/c/stories/s/tail"} {
		for _, name := range []string{"none", "wrong"} {
			h := http.Header{}
			if auths[name] != "" {
				h.Set("Authorization", auths[name])
			}
			_, resp, err := websocket.Dial(context.Background(), ws+path, &websocket.DialOptions{HTTPHeader: h})
			if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("WebSocket %s with %s token: %v %v, want 401", path, name, resp, err)
			}
		}
	}
	c, _, err := websocket.Dial(context.Background(), ws+"/?chronicle=c&story=s",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatalf("WebSocket ingest with a token: %v", err)
	}
	defer c.CloseNow()
	if err := c.Write(context.Background(), websocket.MessageText, []byte(`{"a":3}`)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.Read(context.Background()); err != nil || string(b) != "1" {
		t.Fatalf("WebSocket count %q, %v; want 1", b, err)
	}
	c.Close(websocket.StatusNormalClosure, "")

	tc, _, err := websocket.Dial(context.Background(), ws+"/api/v1/chronicles/c/stories/s/tail?after=0",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatalf("WebSocket tail with a token: %v", err)
	}
	defer tc.CloseNow()
	if _, b, err := tc.Read(context.Background()); err != nil || len(b) == 0 {
		t.Fatalf("WebSocket tail: %q, %v", b, err)
	}
}
