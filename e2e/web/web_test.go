// Package web drives chronostream's web UI in a real headless Chromium
// (Debian's /usr/bin/chromium through playwright-core from npm): the Go
// test starts the server, stores data through real clients, and runs
// ui.mjs, which opens every page and checks what it shows.
package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/sink"
	_ "github.com/chronostream/chronostream/internal/sink/all"
	"github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

const chromium = "/usr/bin/chromium"

// requireBrowser skips outside CI when the browser or the npm packages are
// missing (run `npm ci --prefix e2e/web`), and fails in CI.
func requireBrowser(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	missing := ""
	switch {
	case err != nil:
		missing = "node"
	case fileMissing(chromium):
		missing = chromium
	case fileMissing(filepath.Join("node_modules", "playwright-core", "package.json")):
		missing = "e2e/web/node_modules (npm ci --prefix e2e/web)"
	}
	if missing != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("web UI test needs %s", missing)
		}
		t.Skipf("web UI test needs %s", missing)
	}
	return node
}

func fileMissing(p string) bool { _, err := os.Stat(p); return err != nil }

func post(t *testing.T, url, body string) {
	t.Helper()
	resp, err := http.Post(url, "application/x-ndjson", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d", url, resp.StatusCode)
	}
}

// seed stores what the pages show: a metric of 300 samples from two hosts,
// two annotations, 60 log lines, and a trace of three spans across two
// services sent by the OpenTelemetry SDK.
func seed(t *testing.T, addr string) (traceID string) {
	base := "http://" + addr + "/api/v1/chronicles/"
	now := time.Now().Truncate(time.Minute)
	start := now.Add(-300 * time.Minute)
	var b bytes.Buffer
	for i := 0; i < 300; i++ {
		host := []string{"web-1", "web-2"}[i%2]
		v := 20 + 4*float64(i%40)/40 + float64(i%2)
		if i == 200 {
			v = 35 // a spike the chart must keep
		}
		fmt.Fprintf(&b, `{"time":%q,"value":%.2f,"tags":{"host":%q}}`+"\n", start.Add(time.Duration(i)*time.Minute).Format(time.RFC3339), v, host)
	}
	post(t, base+"metrics/stories/room.temp/events", b.String())
	post(t, base+"metrics/stories/deploys/events?kind=annotation",
		fmt.Sprintf(`{"time":%q,"title":"deploy","text":"v2.4.1 rolled out"}`+"\n", start.Add(120*time.Minute).Format(time.RFC3339))+
			fmt.Sprintf(`{"time":%q,"text":"maintenance window","time_end":%d}`+"\n", start.Add(220*time.Minute).Format(time.RFC3339), start.Add(250*time.Minute).UnixNano()))
	b.Reset()
	levels := []string{"info", "info", "debug", "warn", "info", "error"}
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&b, `{"time":%q,"level":%q,"msg":"request %d served","status":%d,"tags":{"host":"web-%d"}}`+"\n",
			now.Add(time.Duration(i-60)*time.Second).Format(time.RFC3339Nano), levels[i%len(levels)], i, 200+(i%5)*100, i%2+1)
	}
	post(t, base+"logs/stories/api/events", b.String())

	ctx := context.Background()
	newTP := func(service string) *sdktrace.TracerProvider {
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(addr), otlptracehttp.WithInsecure())
		if err != nil {
			t.Fatal(err)
		}
		return sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
			sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))))
	}
	front, back := newTP("frontend"), newTP("backend")
	// Other traces, for a list with some variety.
	for i, name := range []string{"GET /cart", "POST /login", "GET /search", "GET /items/{id}", "POST /orders"} {
		c, sp := front.Tracer("ui").Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer))
		_, child := back.Tracer("ui").Start(c, "db.query", trace.WithSpanKind(trace.SpanKindClient))
		if i == 3 {
			child.SetStatus(codes.Error, "timeout")
		}
		child.End()
		sp.End()
	}
	rootCtx, root := front.Tracer("ui").Start(ctx, "GET /checkout", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.route", "/checkout")))
	coCtx, co := back.Tracer("ui").Start(rootCtx, "charge card")
	_, db := back.Tracer("ui").Start(coCtx, "db.query", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attribute.Int("db.rows", 3)))
	time.Sleep(2 * time.Millisecond) // spans with a visible length, not an assertion
	db.End()
	co.SetStatus(codes.Error, "card declined")
	co.End()
	root.End()
	for _, tp := range []*sdktrace.TracerProvider{front, back} {
		if err := tp.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return root.SpanContext().TraceID().String()
}

// restartable is a server that can be stopped and started again on the
// same port with the same data, as after an upgrade.
type restartable struct {
	t    *testing.T
	opts server.Options
	mu   sync.Mutex
	s    *server.Server
}

func (r *restartable) start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, err := server.New(r.opts)
	if err == nil {
		err = s.Start(context.Background())
	}
	if err != nil {
		r.t.Errorf("start server: %v", err)
		return
	}
	r.s, r.opts.HTTPAddr = s, s.Addr()
}

func (r *restartable) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.s.Shutdown(ctx); err != nil {
		r.t.Errorf("shutdown: %v", err)
	}
	r.s = nil
}

func TestWebUI(t *testing.T) {
	node := requireBrowser(t)
	// Three clustered nodes, for the overview's cluster section: they
	// start while the rest is prepared.
	waitCluster := startCluster(t)
	// A webhook sink delivering the logs chronicle, for the overview's
	// sink column: a real HTTP receiver that accepts every batch.
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(hook.Close)
	srv := &restartable{t: t, opts: server.Options{AutoCreate: true, URLPrefix: "/cs", DataDir: t.TempDir(),
		HTTPAddr: "127.0.0.1:0", Logger: testutil.Logger(t, slog.LevelWarn), Sinks: []sink.Config{{
			Name: "audit-hook", Type: "webhook", Chronicle: "logs", Settings: []byte(`{"url":"` + hook.URL + `"}`)}}}}
	srv.start()
	t.Cleanup(srv.stop)
	addr := srv.s.Addr()
	traceID := seed(t, addr)
	// ui.mjs restarts the server (same port and data) through this, to
	// check that the live log view resumes.
	control := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.stop()
		srv.start()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(control.Close)

	// A server that requires tokens: the UI logs in with a read token.
	locked := startLocked(t)
	// A page of another origin, from which ui.mjs tries to log the
	// browser in to the locked server (login CSRF).
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!doctype html><title>another site</title><p>another site</p>")
	}))
	t.Cleanup(elsewhere.Close)

	waited := time.Now()
	clusterBases, cluster, stopNode := waitCluster()
	t.Logf("the cluster was ready %v after the rest of the setup", time.Since(waited).Round(time.Millisecond))
	checkClusterStatus(t, cluster)
	// The page shows a meta follower (its answer knows less than the
	// leader's: the harder case), and ui.mjs stops the other follower
	// through clusterStop, to see the outage there.
	var followers []int
	for i := range clusterBases {
		if fmt.Sprintf("n%d", i) != cluster.Leader {
			followers = append(followers, i)
		}
	}
	if len(followers) != 2 {
		t.Fatalf("meta leader %q: want two followers among n0..n2", cluster.Leader)
	}
	viewed, stopped := followers[0], followers[1]
	clusterStop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stopNode(stopped)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(clusterStop.Close)

	shots := os.Getenv("CHRONOSTREAM_UI_SHOTS")
	if shots == "" {
		var err error
		if shots, err = os.MkdirTemp("", "chronostream-ui-shots-"); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots: %s", shots)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "ui.mjs")
	cmd.Env = append(os.Environ(),
		"UI_URL=http://"+addr+"/cs/", "UI_SERVER=http://"+addr, "UI_PREFIX=/cs", "UI_RESTART="+control.URL, "UI_LOCKED="+locked.base+"/", "UI_READ_TOKEN="+locked.read, "UI_WRITE_TOKEN="+locked.write, "UI_ELSEWHERE="+elsewhere.URL+"/",
		"UI_CLUSTER="+clusterBases[viewed]+"/cs/", "UI_CLUSTER_SELF="+fmt.Sprintf("n%d", viewed),
		"UI_CLUSTER_DOWN="+fmt.Sprintf("n%d", stopped), "UI_CLUSTER_STOP="+clusterStop.URL, "UI_SHOTS="+shots, "UI_TRACE="+traceID, "UI_CHROMIUM="+chromium, "UI_PROFILE="+t.TempDir())
	out, err := cmd.CombinedOutput()
	t.Logf("ui.mjs:\n%s", out)
	if err != nil {
		t.Errorf("ui.mjs: %v", err)
	}
	locked.checkAfterUI(t)
}

// lockedServer is a server with tokens: an admin one (--token), and a read
// and a write-only scoped token for the UI to log in with.
type lockedServer struct {
	base, admin, read, write string
	logs                     *testutil.LockedBuffer
}

const lockedAdmin = "admin-s3cret-token-0123456789"

func startLocked(t *testing.T) *lockedServer {
	t.Helper()
	l := &lockedServer{admin: lockedAdmin, logs: &testutil.LockedBuffer{}}
	// Debug: the check below greps every line the server logs.
	s := servertest.RunServer(t, server.Options{AutoCreate: true, Tokens: []string{l.admin},
		Logger: slog.New(slog.NewTextHandler(l.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	l.base = "http://" + s.Addr()
	l.read = l.createToken(t, "ui-reader", "read")
	l.write = l.createToken(t, "ui-writer", "write")
	// What the pages show: a metric of 120 samples and a few log lines.
	now := time.Now().Truncate(time.Minute)
	var b bytes.Buffer
	for i := 0; i < 120; i++ {
		fmt.Fprintf(&b, `{"time":%q,"value":%d}`+"\n", now.Add(time.Duration(i-120)*time.Minute).Format(time.RFC3339), 10+i%7)
	}
	l.do(t, "POST", "/api/v1/chronicles/metrics/stories/locked.temp/events", l.write, b.String(), http.StatusOK)
	l.do(t, "POST", "/api/v1/chronicles/logs/stories/api/events", l.write,
		`{"level":"info","msg":"locked server up"}`+"\n"+`{"level":"warn","msg":"disk 80% full"}`+"\n", http.StatusOK)
	return l
}

func (l *lockedServer) createToken(t *testing.T, name, scope string) string {
	t.Helper()
	out := l.do(t, "POST", "/api/v1/tokens", l.admin, fmt.Sprintf(`{"name":%q,"scopes":[%q]}`, name, scope), http.StatusCreated)
	var created struct{ Secret string }
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Secret == "" {
		t.Fatalf("create token %s: %v %s", name, err, out)
	}
	return created.Secret
}

func (l *lockedServer) do(t *testing.T, method, path, token, body string, want int) string {
	t.Helper()
	req, err := http.NewRequest(method, l.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, out, want)
	}
	return string(out)
}

// checkAfterUI checks what the browser session left on the server: its
// cross-origin login attempt was refused and counted, and no token the UI
// handled appears in the logs or on /metrics.
func (l *lockedServer) checkAfterUI(t *testing.T) {
	t.Helper()
	metrics := l.do(t, "GET", "/metrics", "", "", http.StatusOK)
	if !strings.Contains(metrics, `chronostream_http_rejected_total{reason="cross_origin"}`) {
		t.Errorf("the cross-origin login was not refused by the browser policy: no cross_origin rejection on /metrics")
	}
	logs := l.logs.String()
	if !strings.Contains(logs, "ui-reader") {
		t.Errorf("the logs lack the read token's creation: is the check looking at the server's logs?\n%s", logs)
	}
	for name, secret := range map[string]string{"read": l.read, "write": l.write} {
		if strings.Contains(logs, secret) {
			t.Errorf("the %s token appears in the server's logs", name)
		}
		if strings.Contains(metrics, secret) {
			t.Errorf("the %s token appears on /metrics", name)
		}
	}
}
