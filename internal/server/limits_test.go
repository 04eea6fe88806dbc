package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

// TestTokenLimits: a token over its ingest rate gets 429 with Retry-After
// in each protocol's format, after its admitted request was stored whole;
// it is admitted again once the rate has paid the debt back. A token at
// its maximum of live tails gets 429 until one ends. Both counted on
// /metrics.
func TestTokenLimits(t *testing.T) {
	const admin = "limits-admin"
	s := servertest.RunServer(t, server.Options{Tokens: []string{admin}, AutoCreate: true, OTLPChronicle: "app"})
	c := scopeClient{t, "http://" + s.Addr()}
	mk := func(name string, scopes auth.Scope, l auth.Limits) string {
		body, _ := json.Marshal(auth.Request{Name: name, Scopes: scopes, Limits: l})
		code, out := c.do("POST", "/api/v1/tokens", admin, body, nil)
		var r struct{ Secret string }
		if code != 201 || json.Unmarshal([]byte(out), &r) != nil {
			t.Fatalf("create %s: %d %s", name, code, out)
		}
		return r.Secret
	}
	w := mk("slow", auth.ScopeWrite, auth.Limits{EventsPerSecond: 20})
	lines := strings.Repeat(`{"a":1}`+"\n", 40)
	if code, out := c.do("POST", "/api/v1/chronicles/app/stories/s/events", w, []byte(lines), nil); code != 200 {
		t.Fatalf("first request: %d %s", code, out)
	}
	if n := countStory(t, s, "app", "s"); n != 40 {
		t.Fatalf("stored %d of the admitted request's 40 events", n)
	}
	// 20 events in debt: about a second until the next is admitted.
	for _, rt := range []struct{ name, path, ctype, want string }{
		{"events API", "/api/v1/chronicles/app/stories/s/events", "", `"status":429`},
		{"InfluxDB 1.x", "/write?db=app", "", `"error":"rate limited`},
		{"InfluxDB 2.x", "/api/v2/write?bucket=app", "", `"code":"too many requests"`},
		{"OTLP", "/v1/logs", "application/x-protobuf", "rate limited"},
	} {
		req, _ := http.NewRequest("POST", c.base+rt.path, strings.NewReader("m v=1\n"))
		req.Header.Set("Authorization", "Bearer "+w)
		if rt.ctype != "" {
			req.Header.Set("Content-Type", rt.ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		resp.Body.Close()
		ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		if resp.StatusCode != 429 || ra < 1 || !strings.Contains(b.String(), rt.want) {
			t.Errorf("%s over the rate: %d, Retry-After %q, %s", rt.name, resp.StatusCode, resp.Header.Get("Retry-After"), b.String())
		}
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		code, _ := c.do("POST", "/write?db=app", w, []byte("m v=1\n"), nil)
		return code == 204
	}, "admitted again once the debt is paid")

	// Tails.
	r := mk("watcher", auth.ScopeRead, auth.Limits{MaxTails: 1})
	tail := func() (*http.Response, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", c.base+"/api/v1/chronicles/app/stories/s/tail", nil)
		req.Header.Set("Authorization", "Bearer "+r)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, cancel
	}
	first, stop := tail()
	if first.StatusCode != 200 {
		t.Fatalf("first tail: %d", first.StatusCode)
	}
	second, stop2 := tail()
	second.Body.Close()
	stop2()
	if second.StatusCode != 429 {
		t.Errorf("second tail at MaxTails 1: %d, want 429", second.StatusCode)
	}
	// A read of a chronicle named "tail" is no tail.
	if code, out := c.do("GET", "/api/v1/chronicles/tail", r, nil, nil); code == 429 {
		t.Errorf("a read of chronicle \"tail\" at MaxTails: %d %s", code, out)
	}
	first.Body.Close()
	stop()
	testutil.Eventually(t, 10*time.Second, func() bool {
		resp, cancel := tail()
		defer cancel()
		resp.Body.Close()
		return resp.StatusCode == 200
	}, "a tail may start once the first ended")

	_, metrics := c.do("GET", "/metrics", "", nil, nil)
	// At least one each: the waits above may be refused again meanwhile.
	for _, want := range []string{`chronostream_http_rejected_total{reason="rate_limited"}`, `chronostream_http_rejected_total{reason="too_many_tails"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestTokenLimitsWebSocket: a WebSocket connection is admitted once, at
// its upgrade, and then ingests for as long as it stays open: what it
// stores is charged to its token (a later write of the token is refused
// while the debt lasts), and each batch waits out the token's debt before
// it is stored (auth.Principal.Pace, tested in internal/auth).
func TestTokenLimitsWebSocket(t *testing.T) {
	const admin = "ws-limits-admin"
	s := servertest.RunServer(t, server.Options{Tokens: []string{admin}, AutoCreate: true})
	c := scopeClient{t, "http://" + s.Addr()}
	body, _ := json.Marshal(auth.Request{Name: "ws", Scopes: auth.ScopeWrite, Limits: auth.Limits{BytesPerSecond: 10}})
	code, out := c.do("POST", "/api/v1/tokens", admin, body, nil)
	var tok struct{ Secret string }
	if code != 201 || json.Unmarshal([]byte(out), &tok) != nil {
		t.Fatalf("create: %d %s", code, out)
	}
	ctx := context.Background()
	conn, _, err := websocket.Dial(ctx, "ws://"+s.Addr()+"/?chronicle=app&story=ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + tok.Secret}}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	// 1,000 bytes at 10 bytes/s: about 100 s of debt once stored.
	if err := conn.Write(ctx, websocket.MessageText, []byte(`{"pad":"`+strings.Repeat("x", 990)+`"}`)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := conn.Read(ctx); err != nil || string(b) != "1" {
		t.Fatalf("count %q, %v; want 1", b, err)
	}
	code, out = c.do("POST", "/write?db=app", tok.Secret, []byte("m v=1\n"), nil)
	if code != http.StatusTooManyRequests {
		t.Errorf("a write after the WebSocket's 1,000 bytes at 10 bytes/s: %d %s, want 429", code, out)
	}

	// The next message waits out the debt; a shutdown meanwhile closes
	// the connection (going away) without storing or counting it.
	if err := conn.Write(ctx, websocket.MessageText, []byte(`{"a":2}`)); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Shutdown(context.Background()) }()
	_, b, err := conn.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("while paced, at shutdown: %q, %v; want a going-away close", b, err)
	}
}
