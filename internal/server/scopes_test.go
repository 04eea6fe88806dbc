package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coder/websocket"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
	"github.com/chronostream/chronostream/internal/vivo"
)

type scopeClient struct {
	t    *testing.T
	base string
}

func (c scopeClient) do(method, path, token string, body []byte, hdr map[string]string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// create makes a scoped token through the admin API and returns its secret.
func (c scopeClient) create(admin, name string, scopes auth.Scope, chronicles ...string) string {
	c.t.Helper()
	body, _ := json.Marshal(auth.Request{Name: name, Scopes: scopes, Chronicles: chronicles})
	code, out := c.do("POST", "/api/v1/tokens", admin, body, nil)
	if code != http.StatusCreated {
		c.t.Fatalf("creating token %s: %d %s", name, code, out)
	}
	var r struct {
		Token  auth.Token `json:"token"`
		Secret string     `json:"secret"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Secret == "" || strings.Contains(out, `"hash"`) {
		c.t.Fatalf("create answer %s: %v", out, err)
	}
	return r.Secret
}

func otlpLogsBody(t *testing.T) []byte {
	t.Helper()
	b, err := proto.Marshal(&collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{{TimeUnixNano: 1, SeverityText: "INFO"}}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestScopedTokensPerRoute drives every route and HTTP protocol with
// scoped tokens: no token → 401, a token without the route's scope or
// limited to another chronicle → 403, the right token → accepted. The
// chronicle is refused where each protocol resolves it (the pipeline's
// Story for every ingest protocol, the InfluxQL index for /query), so an
// OTLP or Trendlines write whose chronicle is configured, not in the
// request, is covered too. Then: no secret in the logs, /metrics or the
// recorded sources; a revoked token stops working; the UI's session cookie
// reads and never writes.
func TestScopedTokensPerRoute(t *testing.T) {
	const admin = "admin-secret-0123456789"
	logs := &testutil.LockedBuffer{}
	s := servertest.RunServer(t, server.Options{Tokens: []string{admin}, AutoCreate: true,
		MetricsChronicle: "app", OTLPChronicle: "app", ForwardChronicle: "app", VivoChronicles: map[vivo.Signal]string{vivo.Logs: "app", vivo.Metrics: "app", vivo.Traces: "app"},
		VivoAddr: "127.0.0.1:0",
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	c := scopeClient{t, "http://" + s.Addr()}
	tok := map[string]string{
		"write":       c.create(admin, "w-app", auth.ScopeWrite, "app"),
		"write-other": c.create(admin, "w-other", auth.ScopeWrite, "other"),
		"read":        c.create(admin, "r-app", auth.ScopeRead, "app"),
		"read-other":  c.create(admin, "r-other", auth.ScopeRead, "other"),
		"admin":       c.create(admin, "a-app", auth.ScopeAdmin, "app"),
		"admin-other": c.create(admin, "a-other", auth.ScopeAdmin, "other"),
		"admin-all":   c.create(admin, "a-all", auth.ScopeAdmin),
	}
	// Seed the chronicle the reads read.
	if code, out := c.do("POST", "/api/v1/chronicles/app/stories/s/events", admin, []byte(`{"a":0}`+"\n"), nil); code != 200 {
		t.Fatalf("seed: %d %s", code, out)
	}
	lp := []byte("m,h=a v=1 1\n")
	routes := []struct {
		name, method, path string
		body               []byte
		hdr                map[string]string
		scope              string // the token kind that is accepted
		wrongScope         string // a token of the right chronicle without the scope
		// refused, if set, replaces the kinds refused with 403
		// (wrongScope and scope-other): a route that names no chronicle
		// serves a token of another one what that token may see.
		refused []string
		ok      int  // the status of an accepted request; 0 is any 2xx
		stream  bool // a tail: only its status is read
	}{
		{"anacrolix POST /", "POST", "/?chronicle=app&story=s", []byte(`{"a":1}` + "\n"), nil, "write", "read", nil, 0, false},
		{"events API", "POST", "/api/v1/chronicles/app/stories/s/events", []byte(`{"a":2}` + "\n"), nil, "write", "read", nil, 0, false},
		{"InfluxDB 1.x write", "POST", "/write?db=app", lp, nil, "write", "read", nil, 0, false},
		{"InfluxDB 2.x write", "POST", "/api/v2/write?bucket=app&org=x", lp, nil, "write", "read", nil, 0, false},
		{"OTLP logs", "POST", "/v1/logs", otlpLogsBody(t), map[string]string{"Content-Type": "application/x-protobuf"}, "write", "read", nil, 0, false},
		{"Trendlines", "POST", "/api/v1/data", []byte(`{"metric":"tl","value":1}`), nil, "write", "read", nil, 0, false},
		{"Vivo input", "POST", "/vivo/input/s", []byte(`[{"date":1.5,"log":"x"}]`), map[string]string{"Content-Type": "application/json"}, "write", "read", nil, 0, false},
		{"Trendlines read", "GET", "/api/v1/data/tl", nil, nil, "read", "write", nil, 0, false},
		{"Vivo exporter", "GET", "/vivo/logs", nil, nil, "read", "write", nil, 0, false},
		{"Vivo exporter by chronicle", "GET", "/vivo/chronicles/app/logs", nil, nil, "read", "write", nil, 0, false},
		{"read events", "GET", "/api/v1/chronicles/app/stories/s/events", nil, nil, "read", "write", nil, 0, false},
		{"stories", "GET", "/api/v1/chronicles/app/stories", nil, nil, "read", "write", nil, 0, false},
		{"InfluxQL", "GET", "/query?db=app&q=" + url.QueryEscape("SHOW MEASUREMENTS"), nil, nil, "read", "write", nil, 0, false},
		{"InfluxQL FROM another db", "GET", "/query?q=" + url.QueryEscape(`SELECT * FROM "app".."m"`), nil, nil, "read", "write", nil, 0, false},
		{"retention", "PUT", "/api/v1/chronicles/app", []byte(`{"retention":{"max_age":"240h"}}`), nil, "admin", "read", nil, 0, false},
		// Every other route of routes.go's mux.
		{"OTLP metrics", "POST", "/v1/metrics", []byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m","gauge":{"dataPoints":[{"asDouble":1,"timeUnixNano":"1"}]}}]}]}]}`),
			map[string]string{"Content-Type": "application/json"}, "write", "read", nil, 0, false},
		{"OTLP traces", "POST", "/v1/traces", []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"x","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}`),
			map[string]string{"Content-Type": "application/json"}, "write", "read", nil, 0, false},
		{"Vivo input without a tag", "POST", "/vivo/input", []byte(`[{"date":1.5,"log":"x"}]`), map[string]string{"Content-Type": "application/json"}, "write", "read", nil, 0, false},
		{"InfluxQL POST", "POST", "/query?db=app", []byte("q=SHOW+MEASUREMENTS"), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "read", "write", nil, 0, false},
		{"chronicle", "GET", "/api/v1/chronicles/app", nil, nil, "read", "write", nil, 0, false},
		{"chronicle events", "GET", "/api/v1/chronicles/app/events", nil, nil, "read", "write", nil, 0, false},
		{"series", "GET", "/api/v1/chronicles/app/stories/s/series?field=a", nil, nil, "read", "write", nil, 0, false},
		{"annotations", "GET", "/api/v1/chronicles/app/annotations", nil, nil, "read", "write", nil, 0, false},
		{"traces", "GET", "/api/v1/chronicles/app/traces", nil, nil, "read", "write", nil, 0, false},
		{"trace", "GET", "/api/v1/chronicles/app/traces/5b8efff798038103d269b633813fc60c", nil, nil, "read", "write", nil, 0, false},
		{"chronicle tail", "GET", "/api/v1/chronicles/app/tail", nil, nil, "read", "write", nil, 0, true},
		{"story tail", "GET", "/api/v1/chronicles/app/stories/s/tail", nil, nil, "read", "write", nil, 0, true},
		{"Trendlines metric", "GET", "/api/v1/metric/tl", nil, nil, "read", "write", nil, 0, false},
		{"Trendlines metrics", "GET", "/api/v1/metric", nil, nil, "read", "write", nil, 0, false},
		{"Vivo exporter metrics", "GET", "/vivo/metrics", nil, nil, "read", "write", nil, 0, false},
		{"Vivo exporter traces", "GET", "/vivo/traces", nil, nil, "read", "write", nil, 0, false},
		{"Vivo listener logs", "GET", "http://" + s.VivoAddr() + "/logs", nil, nil, "read", "write", nil, 0, false},
		// Routes naming no chronicle filter what they show (tested below).
		{"chronicles", "GET", "/api/v1/chronicles", nil, nil, "read", "", []string{"write"}, 0, false},
		{"metrics catalog", "GET", "/api/v1/metrics", nil, nil, "read", "", []string{"write"}, 0, false},
		{"sources", "GET", "/api/v1/sources", nil, nil, "read", "", []string{"write"}, 0, false},
		{"source", "GET", "/api/v1/sources/nosuch", nil, nil, "read", "", []string{"write"}, http.StatusNotFound, false},
		{"cluster", "GET", "/api/v1/cluster", nil, nil, "read", "", []string{"write"}, 0, false},
		{"session", "GET", "/api/v1/session", nil, nil, "read", "", []string{"write"}, 0, false},
		{"sinks", "GET", "/api/v1/sinks", nil, nil, "read", "", []string{"write"}, 0, false},
		{"sink", "GET", "/api/v1/sinks/nosuch", nil, nil, "read", "", []string{"write"}, http.StatusNotFound, false},
		{"sink cursor", "GET", "/api/v1/sinks/nosuch/cursor", nil, nil, "read", "", []string{"write"}, http.StatusNotFound, false},
		// Admin beyond one chronicle: only an admin token for all of them.
		{"sink pause", "POST", "/api/v1/sinks/nosuch/pause", nil, nil, "admin-all", "", []string{"read", "write", "admin"}, http.StatusNotFound, false},
		{"sink resume", "POST", "/api/v1/sinks/nosuch/resume", nil, nil, "admin-all", "", []string{"read", "write", "admin"}, http.StatusNotFound, false},
		{"sink cursor PUT", "PUT", "/api/v1/sinks/fwd/cursor", []byte(`{"position":"beginning","chronicle":"app"}`), nil, "admin-all", "", []string{"read", "write", "admin"}, 0, false},
		{"sink cursor POST", "POST", "/api/v1/sinks/fwd/cursor", []byte(`{"position":"beginning","chronicle":"app"}`), nil, "admin-all", "", []string{"read", "write", "admin"}, 0, false},
		{"tokens", "GET", "/api/v1/tokens", nil, nil, "admin-all", "", []string{"read", "write", "admin"}, 0, false},
		{"token create", "POST", "/api/v1/tokens", []byte(`{"name":"t-table","scopes":["read"]}`), nil, "admin-all", "", []string{"read", "write", "admin"}, 0, false},
		{"token revoke", "DELETE", "/api/v1/tokens/t-table", nil, nil, "admin-all", "", []string{"read", "write", "admin"}, 0, false},
	}
	for _, rt := range routes {
		do := func(token string) (int, string) {
			if !strings.HasPrefix(rt.path, "http://") && !rt.stream {
				return c.do(rt.method, rt.path, token, rt.body, rt.hdr)
			}
			cl := c
			if !strings.HasPrefix(rt.path, "http://") {
				cl.base += rt.path
			} else {
				cl.base = rt.path
			}
			if !rt.stream {
				return cl.do(rt.method, "", token, rt.body, rt.hdr)
			}
			// A tail answers its status, then streams until canceled.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, rt.method, cl.base, nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode, ""
		}
		try := func(kind string) (int, string) { return do(tok[kind]) }
		if code, out := do(""); code != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d %s, want 401", rt.name, code, out)
		}
		refused := rt.refused
		if refused == nil {
			refused = []string{rt.wrongScope, rt.scope + "-other"}
		}
		for _, kind := range refused {
			code, out := try(kind)
			// InfluxQL answers per statement: a refused database is an
			// error in the results of a 200, as InfluxDB's privileges are.
			if rt.name == "InfluxQL FROM another db" && code == 200 && strings.Contains(out, "forbidden") {
				continue
			}
			if code != http.StatusForbidden {
				t.Errorf("%s with a %s token: %d %s, want 403", rt.name, kind, code, out)
			}
		}
		if code, out := try(rt.scope); (rt.ok == 0 && code/100 != 2) || (rt.ok != 0 && code != rt.ok) || strings.Contains(out, "forbidden") {
			t.Errorf("%s with a %s token: %d %s, want %d (0: 2xx)", rt.name, rt.scope, code, out, rt.ok)
		}
	}

	// InfluxQL's CREATE DATABASE makes a chronicle: admin only.
	create := "/query?q=" + url.QueryEscape("CREATE DATABASE app")
	if code, out := c.do("POST", create, tok["read"], nil, nil); code != 200 || !strings.Contains(out, "forbidden") {
		t.Errorf("CREATE DATABASE with a read token: %d %s, want a forbidden statement", code, out)
	}
	if code, out := c.do("POST", create, admin, nil, nil); code != 200 || strings.Contains(out, "error") {
		t.Errorf("CREATE DATABASE with an admin token: %d %s", code, out)
	}

	// Listings show a token limited to chronicles only those.
	if code, out := c.do("POST", "/api/v1/chronicles/zzz/stories/s/events", admin, []byte(`{"a":0}`+"\n"), nil); code != 200 {
		t.Fatalf("seed zzz: %d %s", code, out)
	}
	for _, path := range []string{"/api/v1/chronicles", "/api/v1/sources", "/api/v1/metrics", "/query?q=SHOW+DATABASES"} {
		_, all := c.do("GET", path, admin, nil, nil)
		_, mine := c.do("GET", path, tok["read"], nil, nil)
		_, others := c.do("GET", path, tok["read-other"], nil, nil)
		if !strings.Contains(all, `"zzz"`) || !strings.Contains(mine, `"app"`) || strings.Contains(mine, `"zzz"`) ||
			strings.Contains(others, `"app"`) || strings.Contains(others, `"zzz"`) {
			t.Errorf("%s: admin %.200s\napp token %.200s\nother token %.200s", path, all, mine, others)
		}
	}

	// InfluxDB 1.x clients send the token as ?u=&p=.
	if code, out := c.do("POST", "/write?db=app&u=ci&p="+url.QueryEscape(tok["write"]), "", lp, nil); code != 204 {
		t.Errorf("/write with u/p: %d %s", code, out)
	}
	if code, _ := c.do("POST", "/write?db=app&u=ci&p="+url.QueryEscape(tok["write-other"]), "", lp, nil); code != 403 {
		t.Errorf("/write with u/p of another chronicle: %d, want 403", code)
	}

	// WebSocket ingest: the token as a header, or as a "bearer.TOKEN"
	// subprotocol where a browser cannot set headers.
	ws := "ws://" + s.Addr() + "/?chronicle=app&story=ws"
	if _, resp, err := websocket.Dial(context.Background(), ws, &websocket.DialOptions{
		Subprotocols: []string{auth.WebSocketSubprotocol, "bearer." + tok["read"]}}); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Errorf("WebSocket with a read token: %v %v, want 403", resp, err)
	}
	conn, _, err := websocket.Dial(context.Background(), ws, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + tok["write"]}}})
	if err != nil {
		t.Fatalf("WebSocket with a write token: %v", err)
	}
	if err := conn.Write(context.Background(), websocket.MessageText, []byte(`{"a":3}`)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := conn.Read(context.Background()); err != nil || string(b) != "1" {
		t.Errorf("WebSocket count %q, %v; want 1", b, err)
	}
	conn.Close(websocket.StatusNormalClosure, "")

	// A browser's WebSocket tail: the read token as a subprotocol; the
	// server selects "chronostream", never echoing the token.
	tail := "ws://" + s.Addr() + "/api/v1/chronicles/app/stories/s/tail?after=0"
	tc, _, err := websocket.Dial(context.Background(), tail, &websocket.DialOptions{
		Subprotocols: []string{auth.WebSocketSubprotocol, "bearer." + tok["read"]}})
	if err != nil {
		t.Fatalf("WebSocket tail with the token as a subprotocol: %v", err)
	}
	if tc.Subprotocol() != auth.WebSocketSubprotocol {
		t.Errorf("selected subprotocol %q", tc.Subprotocol())
	}
	if _, b, err := tc.Read(context.Background()); err != nil || len(b) == 0 {
		t.Errorf("WebSocket tail: %q, %v", b, err)
	}
	tc.Close(websocket.StatusNormalClosure, "")
	if _, resp, err := websocket.Dial(context.Background(), tail, &websocket.DialOptions{
		Subprotocols: []string{auth.WebSocketSubprotocol, "bearer." + tok["read-other"]}}); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Errorf("WebSocket tail with another chronicle's token: %v %v, want 403", resp, err)
	}

	// Tokens API: admin only; listing never shows a secret or a hash. An
	// admin limited to a chronicle may not mint a token for all of them.
	if code, _ := c.do("GET", "/api/v1/tokens", tok["read"], nil, nil); code != 403 {
		t.Errorf("token list with a read token: %d, want 403", code)
	}
	if code, out := c.do("POST", "/api/v1/tokens", tok["admin"], []byte(`{"name":"escalate","scopes":["admin"]}`), nil); code != 403 {
		t.Errorf("token creation by an admin limited to app: %d %s, want 403", code, out)
	}
	code, list := c.do("GET", "/api/v1/tokens", admin, nil, nil)
	if code != 200 || !strings.Contains(list, `"r-app"`) || strings.Contains(list, "hash") {
		t.Errorf("token list: %d %s", code, list)
	}

	// The UI's session: a read token in a POST body becomes an HttpOnly,
	// SameSite=Strict cookie that reads and never writes.
	resp, err := http.Post(c.base+"/api/v1/session", "application/json", strings.NewReader(`{"token":"`+tok["read"]+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == auth.SessionCookie {
			cookie = ck
		}
	}
	if resp.StatusCode != 200 || cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session: %d %+v", resp.StatusCode, cookie)
	}
	withCookie := func(method, path string, body []byte) int {
		req, _ := http.NewRequest(method, c.base+path, bytes.NewReader(body))
		req.AddCookie(cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := withCookie("GET", "/api/v1/chronicles/app/stories/s/events", nil); code != 200 {
		t.Errorf("read with the session cookie: %d", code)
	}
	if code := withCookie("POST", "/api/v1/chronicles/app/stories/s/events", []byte(`{"a":4}`)); code != 401 {
		t.Errorf("write with the session cookie: %d, want 401", code)
	}
	if resp, _ := http.Post(c.base+"/api/v1/session", "application/json", strings.NewReader(`{"token":"nope"}`)); resp == nil || resp.StatusCode != 401 {
		t.Errorf("session with a bad token: %v", resp)
	}

	// Revoked: refused at once.
	if code, out := c.do("DELETE", "/api/v1/tokens/w-app", admin, nil, nil); code != 200 {
		t.Fatalf("revoke: %d %s", code, out)
	}
	if code, _ := c.do("POST", "/write?db=app", tok["write"], lp, nil); code != 401 {
		t.Errorf("revoked token: %d, want 401", code)
	}

	// No secret anywhere it could leak: the logs, /metrics, the sources
	// (readable through the API).
	_, metrics := c.do("GET", "/metrics", "", nil, nil)
	_, sources := c.do("GET", "/api/v1/sources?limit=1000", admin, nil, nil)
	if !strings.Contains(sources, `"lineproto`) && !strings.Contains(sources, `"influx`) {
		t.Fatalf("sources list lacks the line-protocol requests: %.300s", sources)
	}
	secrets := []string{admin}
	for _, v := range tok {
		secrets = append(secrets, v)
	}
	for _, sec := range secrets {
		for where, text := range map[string]string{"logs": logs.String(), "/metrics": metrics, "sources": sources} {
			if strings.Contains(text, sec) {
				t.Errorf("a token appears in %s", where)
			}
		}
	}
	if !strings.Contains(logs.String(), "token created") {
		t.Errorf("the logs were not captured: %.200s", logs.String())
	}

	// Last, as it deletes what the reads above read.
	del := "/api/v1/chronicles/app"
	if code, _ := c.do("DELETE", del, "", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("DELETE chronicle without a token: %d, want 401", code)
	}
	for _, kind := range []string{"read", "admin-other"} { // "write" was revoked above
		if code, out := c.do("DELETE", del, tok[kind], nil, nil); code != http.StatusForbidden {
			t.Errorf("DELETE chronicle with a %s token: %d %s, want 403", kind, code, out)
		}
	}
	if code, out := c.do("DELETE", del, tok["admin"], nil, nil); code/100 != 2 {
		t.Errorf("DELETE chronicle with its admin token: %d %s", code, out)
	}
}
