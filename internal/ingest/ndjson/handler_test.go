package ndjson

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/obs"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
)

type fixture struct {
	srv     *httptest.Server
	handler *Handler
	store   *store.Store
	metrics *obs.Metrics
}

func newFixture(t testing.TB, limits ingest.Limits, autoCreate bool) *fixture {
	t.Helper()
	var mods []testutil.StoreOption
	if !autoCreate {
		mods = append(mods, testutil.ManualCreate)
	}
	return newFixtureOn(t, testutil.OpenStore(t, store.Options{}, mods...), limits)
}

// newFixtureOn serves a handler writing to log, which may wrap s.
func newFixtureOn(t testing.TB, log ingest.Log, limits ingest.Limits) *fixture {
	t.Helper()
	var s *store.Store
	switch l := log.(type) {
	case *store.Store:
		s = l
	case interface{ Unwrap() *store.Store }:
		s = l.Unwrap()
	}
	m := obs.New()
	h := NewHandler(Config{Config: ingest.Config{Log: log, Limits: limits, Metrics: m, DefaultChronicle: "main", DefaultStory: "anacrolix"}})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{$}", h.ServeRoot)
	mux.HandleFunc("POST /api/v1/chronicles/{chronicle}/stories/{story}/events", h.ServeEvents)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, handler: h, store: s, metrics: m}
}

func (f *fixture) post(t testing.TB, path string, body io.Reader, header map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("POST", f.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func (f *fixture) read(t testing.TB, chronicle, story string) []event.Event {
	t.Helper()
	var evs []event.Event
	_, err := f.store.Read(context.Background(), store.Query{Chronicle: chronicle, Story: story}, func(e *event.Event) error {
		evs = append(evs, *e)
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func bodies(evs []event.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = string(e.Body)
	}
	return out
}

func counter(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func equalStrings(t testing.TB, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d, want %d:\ngot  %q\nwant %q", what, len(got), len(want), got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s[%d] = %q, want %q", what, i, got[i], want[i])
		}
	}
}

func TestRootStoresEachValueVerbatim(t *testing.T) {
	f := newFixture(t, ingest.Limits{}, true)
	body := "{\"time\":\"2024-07-03T15:16:55.563839+10:00\",\"level\":\"INFO\",\"msg\":\"hi mom\"}\n" +
		"\n" +
		"  {\"kind\":\"metric\",\"cpu\":0.5}{\"ts\":1720000000,\"a\":\n [1,2]}\r\n" +
		"\"just a string\" 42\n" +
		"{\"msg\":\"line1\\nline2 ✓\"}" // no trailing newline
	want := []string{
		`{"time":"2024-07-03T15:16:55.563839+10:00","level":"INFO","msg":"hi mom"}`,
		`{"kind":"metric","cpu":0.5}`,
		"{\"ts\":1720000000,\"a\":\n [1,2]}",
		`"just a string"`,
		`42`,
		`{"msg":"line1\nline2 ✓"}`,
	}
	code, _, resp := f.post(t, "/", strings.NewReader(body), map[string]string{
		"Authorization": "Bearer secret-token", "User-Agent": "test-agent", "Content-Type": "application/jsonl"})
	if code != 200 || resp != "6\n" {
		t.Fatalf("POST / = %d %q, want 200 \"6\\n\"", code, resp)
	}
	evs := f.read(t, "main", "anacrolix")
	equalStrings(t, "bodies", bodies(evs), want)

	wantKinds := []event.Kind{event.KindLog, event.KindMetric, event.KindEvent, event.KindEvent, event.KindEvent, event.KindLog}
	for i, e := range evs {
		if e.Format != event.FormatJSON || e.Kind != wantKinds[i] || e.Source == "" || e.Source != evs[0].Source {
			t.Errorf("event %d: format=%v kind=%v source=%q", i, e.Format, e.Kind, e.Source)
		}
		if i > 0 && e.Seq <= evs[i-1].Seq {
			t.Errorf("seqs not increasing: %d then %d", evs[i-1].Seq, e.Seq)
		}
	}
	if got := evs[0].TimeValue(); got.UnixMicro() != 1719983815563839 {
		t.Errorf("event time = %v, want the payload's time", got)
	}
	if evs[2].Time != 1720000000*1e9 {
		t.Errorf("ts = %d, want %d", evs[2].Time, int64(1720000000*1e9))
	}
	if evs[1].Time == 0 {
		t.Error("an event without time got no ingest time")
	}

	// The client's record is written before the events, its counts soon after.
	var src store.Source
	testutil.Eventually(t, 10*time.Second, func() bool {
		var err error
		src, err = f.store.GetSource(context.Background(), evs[0].Source)
		return err == nil && src.Count == 6
	}, "the client's count")
	if src.Protocol != Protocol || src.Chronicle != "main" || src.Story != "anacrolix" ||
		src.Start.IsZero() || src.End.Before(src.Start) || src.Remote == "" {
		t.Errorf("source = %+v", src)
	}
	if got := src.Headers["User-Agent"]; len(got) != 1 || got[0] != "test-agent" {
		t.Errorf("source User-Agent = %q", got)
	}
	if got := src.Headers["Authorization"]; len(got) != 1 || got[0] != "[REDACTED]" {
		t.Errorf("source Authorization = %q, want it redacted", got)
	}
	if got := counter(t, f.metrics.IngestEvents.WithLabelValues(Protocol)); got != 6 {
		t.Errorf("ingest events metric = %v, want 6", got)
	}
	if got := counter(t, f.metrics.IngestBytes.WithLabelValues(Protocol)); got != float64(len(body)) {
		t.Errorf("ingest bytes metric = %v, want %d", got, len(body))
	}
}

func TestRootTarget(t *testing.T) {
	f := newFixture(t, ingest.Limits{}, true)
	q := url.Values{"chronicle": {"app.prod"}, "story": {"web logs/α*>"}}
	if code, _, resp := f.post(t, "/?"+q.Encode(), strings.NewReader(`{"a":1}`), nil); code != 200 || resp != "1\n" {
		t.Fatalf("POST = %d %q", code, resp)
	}
	if code, _, resp := f.post(t, "/", strings.NewReader("{\"b\":2}\n{\"c\":3}\n"), map[string]string{
		"X-Chronostream-Chronicle": "app.prod", "X-Chronostream-Story": "web logs/α*>"}); code != 200 || resp != "2\n" {
		t.Fatalf("POST = %d %q", code, resp)
	}
	equalStrings(t, "bodies", bodies(f.read(t, "app.prod", "web logs/α*>")), []string{`{"a":1}`, `{"b":2}`, `{"c":3}`})
}

func TestRootKindOverride(t *testing.T) {
	f := newFixture(t, ingest.Limits{}, true)
	if code, _, _ := f.post(t, "/?kind=trace", strings.NewReader(`{"msg":"x"}`), nil); code != 200 {
		t.Fatalf("status %d", code)
	}
	if evs := f.read(t, "main", "anacrolix"); len(evs) != 1 || evs[0].Kind != event.KindTrace {
		t.Fatalf("events = %+v, want one trace", evs)
	}
	if code, _, resp := f.post(t, "/?kind=bogus", strings.NewReader(`{}`), nil); code != 400 || !strings.Contains(resp, "unknown kind") {
		t.Fatalf("bad kind: %d %q", code, resp)
	}
}

func TestRootMalformedLine(t *testing.T) {
	f := newFixture(t, ingest.Limits{}, true)
	body := "{\"i\":1}\n{\"i\":2}\n\n{\"i\":3}\n{\"i\":4, \"oops\": }\n{\"i\":5}\n"
	code, _, resp := f.post(t, "/", strings.NewReader(body), nil)
	if code != 400 || !strings.HasPrefix(resp, "line 5: invalid JSON: ") || !strings.HasSuffix(resp, "\nstored 3\n") {
		t.Fatalf("POST = %d %q, want 400 naming line 5 and 3 stored", code, resp)
	}
	equalStrings(t, "bodies", bodies(f.read(t, "main", "anacrolix")), []string{`{"i":1}`, `{"i":2}`, `{"i":3}`})
	if got := counter(t, f.metrics.IngestErrors.WithLabelValues(Protocol, "invalid_json")); got != 1 {
		t.Errorf("invalid_json errors = %v, want 1", got)
	}
}

// problemOf decodes a problem document, checking its content type.
func problemOf(t testing.TB, h http.Header, body string) map[string]any {
	t.Helper()
	if ct := h.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json (body %q)", ct, body)
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEventsAPI(t *testing.T) {
	f := newFixture(t, ingest.Limits{}, true)
	path := "/api/v1/chronicles/" + url.PathEscape("my app") + "/stories/" + url.PathEscape("cpu.load/1") + "/events"

	// NDJSON.
	code, _, resp := f.post(t, path, strings.NewReader("{\"a\":1}\n{\"a\":2}\n"), map[string]string{"Content-Type": "application/x-ndjson"})
	if code != 200 {
		t.Fatalf("POST = %d %s", code, resp)
	}
	var ack struct {
		Stored   int    `json:"stored"`
		FirstSeq uint64 `json:"first_seq"`
		LastSeq  uint64 `json:"last_seq"`
		Source   string `json:"source"`
	}
	if err := json.Unmarshal([]byte(resp), &ack); err != nil {
		t.Fatal(err)
	}
	evs := f.read(t, "my app", "cpu.load/1")
	if ack.Stored != 2 || ack.FirstSeq != evs[0].Seq || ack.LastSeq != evs[1].Seq || ack.Source != evs[0].Source {
		t.Fatalf("ack %+v does not match the stored events %+v", ack, evs)
	}

	// A JSON array: each element is one event.
	code, _, resp = f.post(t, path, strings.NewReader(" [ {\"a\":3},\n{\"a\":[4]} , 5 ]\n"), map[string]string{"Content-Type": "application/json; charset=utf-8"})
	if code != 200 || !strings.Contains(resp, `"stored":3`) {
		t.Fatalf("POST array = %d %s", code, resp)
	}
	// Without the JSON content type, an array is one event.
	code, _, resp = f.post(t, path, strings.NewReader("[6,7]"), nil)
	if code != 200 || !strings.Contains(resp, `"stored":1`) {
		t.Fatalf("POST array as NDJSON = %d %s", code, resp)
	}
	equalStrings(t, "bodies", bodies(f.read(t, "my app", "cpu.load/1")),
		[]string{`{"a":1}`, `{"a":2}`, `{"a":3}`, `{"a":[4]}`, `5`, `[6,7]`})

	// Malformed: problem JSON with the line and what was stored.
	code, h, resp := f.post(t, path, strings.NewReader("{\"a\":8}\n{\"a\":9}\n{\"a\":10"), nil)
	if code != 400 {
		t.Fatalf("malformed: %d %s", code, resp)
	}
	p := problemOf(t, h, resp)
	if p["status"] != 400.0 || p["line"] != 3.0 || p["stored"] != 2.0 || p["type"] != "urn:chronostream:problem:invalid-json" || p["title"] == "" || p["detail"] == "" {
		t.Fatalf("problem = %v", p)
	}
	if n := len(f.read(t, "my app", "cpu.load/1")); n != 8 {
		t.Fatalf("%d events stored, want 8", n)
	}
}

func TestBodyTooLarge(t *testing.T) {
	f := newFixture(t, ingest.Limits{MaxBodyBytes: 10 << 10}, true)
	var body bytes.Buffer
	for i := 0; body.Len() < 100<<10; i++ {
		fmt.Fprintf(&body, "{\"i\":%d,\"pad\":%q}\n", i, strings.Repeat("p", 200))
	}
	lineLen := bytes.IndexByte(body.Bytes(), '\n') + 1
	// Streamed (chunked): the size is unknown until read, so the values
	// before the limit are stored and acknowledged.
	code, _, resp := f.post(t, "/", streamed{&body}, nil)
	var stored int
	if _, err := fmt.Sscanf(resp[strings.LastIndex(strings.TrimSpace(resp), "\n")+1:], "stored %d", &stored); err != nil || code != 413 {
		t.Fatalf("POST = %d %q, want 413 with the stored count", code, resp)
	}
	evs := f.read(t, "main", "anacrolix")
	// Every complete value within the limit is stored and acknowledged.
	if stored == 0 || len(evs) != stored || stored != (10<<10)/lineLen {
		t.Fatalf("stored %d (read back %d)", stored, len(evs))
	}
	if got := counter(t, f.metrics.IngestErrors.WithLabelValues(Protocol, "body_too_large")); got != 1 {
		t.Errorf("body_too_large errors = %v", got)
	}

	// Problem JSON on our API.
	code, h, resp := f.post(t, "/api/v1/chronicles/main/stories/s/events", streamed{strings.NewReader(strings.Repeat("{}\n", 6<<10))}, nil)
	p := problemOf(t, h, resp)
	if code != 413 || p["stored"] != float64((10<<10)/3) {
		t.Fatalf("POST = %d %v", code, p)
	}
}

func TestEventTooLarge(t *testing.T) {
	f := newFixture(t, ingest.Limits{MaxEventBytes: 1000}, true)
	body := "{\"a\":1}\n{\"a\":2}\n{\"big\":\"" + strings.Repeat("x", 2000) + "\"}\n{\"a\":3}\n"
	code, _, resp := f.post(t, "/", strings.NewReader(body), nil)
	if code != 413 || resp != "line 3: a value exceeds the limit of 1000 bytes\nstored 2\n" {
		t.Fatalf("POST = %d %q", code, resp)
	}
	equalStrings(t, "bodies", bodies(f.read(t, "main", "anacrolix")), []string{`{"a":1}`, `{"a":2}`})
}

func gzipped(t testing.TB, b []byte) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func TestGzip(t *testing.T) {
	f := newFixture(t, ingest.Limits{MaxBodyBytes: 1 << 20}, true)
	gz := map[string]string{"Content-Encoding": "gzip"}
	code, _, resp := f.post(t, "/", gzipped(t, []byte("{\"z\":1}\n{\"z\":2}\n")), gz)
	if code != 200 || resp != "2\n" {
		t.Fatalf("gzip POST = %d %q", code, resp)
	}
	equalStrings(t, "bodies", bodies(f.read(t, "main", "anacrolix")), []string{`{"z":1}`, `{"z":2}`})

	// A bomb: 64 MiB of whitespace after one event, about 64 KiB compressed.
	// Decompression stops at the limit.
	bomb := append([]byte("{\"z\":3}\n"), bytes.Repeat([]byte(" "), 64<<20)...)
	z := gzipped(t, bomb)
	before := counter(t, f.metrics.IngestBytes.WithLabelValues(Protocol))
	code, _, resp = f.post(t, "/", z, gz)
	if code != 413 || !strings.HasSuffix(resp, "stored 1\n") {
		t.Fatalf("bomb POST = %d %q", code, resp)
	}
	if read := counter(t, f.metrics.IngestBytes.WithLabelValues(Protocol)) - before; read > 1<<20+1 {
		t.Errorf("decompressed %v bytes, want at most the limit", read)
	}

	code, _, _ = f.post(t, "/", strings.NewReader("not gzip"), gz)
	if code != 400 {
		t.Errorf("invalid gzip: %d, want 400", code)
	}
	code, _, _ = f.post(t, "/", strings.NewReader("{}"), map[string]string{"Content-Encoding": "br"})
	if code != http.StatusUnsupportedMediaType {
		t.Errorf("brotli: %d, want 415", code)
	}
	if n := len(f.read(t, "main", "anacrolix")); n != 3 {
		t.Errorf("%d events stored, want 3", n)
	}
}

func TestStoreErrors(t *testing.T) {
	f := newFixture(t, ingest.Limits{}, false)
	code, h, resp := f.post(t, "/api/v1/chronicles/nope/stories/s/events", strings.NewReader("{}\n"), nil)
	if p := problemOf(t, h, resp); code != 404 || p["type"] != "urn:chronostream:problem:no-chronicle" || p["stored"] != 0.0 {
		t.Fatalf("missing chronicle: %d %v", code, p)
	}
	long := strings.Repeat("c", event.MaxChronicleName+1)
	code, _, resp = f.post(t, "/?chronicle="+long, strings.NewReader("{}\n"), nil)
	if code != 400 || !strings.Contains(resp, "chronicle name") {
		t.Fatalf("invalid name: %d %q", code, resp)
	}
}

// TestManyBatches crosses the batch and in-flight window sizes, so that
// pipelined appends are waited for in order and counted exactly.
func TestManyBatches(t *testing.T) {
	f := newFixture(t, ingest.Limits{}, true)
	const n = 5*4096*8/2 + 17 // ingest.DefaultBatch: 4096 events, 8 in flight
	var body bytes.Buffer
	for i := range n {
		fmt.Fprintf(&body, "{\"i\":%d}\n", i)
	}
	code, _, resp := f.post(t, "/", &body, nil)
	if code != 200 || resp != fmt.Sprintf("%d\n", n) {
		t.Fatalf("POST = %d %q", code, resp)
	}
	evs := f.read(t, "main", "anacrolix")
	if len(evs) != n {
		t.Fatalf("read back %d, want %d", len(evs), n)
	}
	for i, e := range evs {
		if want := fmt.Sprintf("{\"i\":%d}", i); string(e.Body) != want {
			t.Fatalf("event %d = %s, want %s", i, e.Body, want)
		}
	}
	// The client's record counts a body spanning batches whole.
	testutil.Eventually(t, 10*time.Second, func() bool {
		src, err := f.store.GetSource(context.Background(), evs[0].Source)
		return err == nil && src.Count == uint64(n)
	}, "the count of a many-batch body")
	body.Reset()
	for i := range 5000 {
		fmt.Fprintf(&body, "{\"j\":%d}\n", i)
	}
	if code, _, resp := f.post(t, "/?story=chunked", streamed{&body}, nil); code != 200 || resp != "5000\n" {
		t.Fatalf("chunked POST = %d %q", code, resp)
	}
	chunked := f.read(t, "main", "chunked")
	testutil.Eventually(t, 10*time.Second, func() bool {
		src, err := f.store.GetSource(context.Background(), chunked[0].Source)
		return err == nil && src.Count == 5000 && src.Requests == 1
	}, "the count of a chunked body")
}

// streamed hides a body's length from the client, which then sends it
// chunked, as a producer streaming a body of unknown size does.
type streamed struct{ io.Reader }

// TestDeclaredBodyTooLarge: a Content-Length over the limit is refused
// before anything is stored.
func TestDeclaredBodyTooLarge(t *testing.T) {
	f := newFixture(t, ingest.Limits{MaxBodyBytes: 10 << 10}, true)
	if code, _, resp := f.post(t, "/", strings.NewReader(`{"first":1}`), nil); code != 200 {
		t.Fatalf("POST = %d %q", code, resp)
	}
	var body bytes.Buffer
	for i := 0; body.Len() < 100<<10; i++ {
		fmt.Fprintf(&body, "{\"i\":%d}\n", i)
	}
	code, _, resp := f.post(t, "/", bytes.NewReader(body.Bytes()), nil)
	if code != 413 || !strings.Contains(resp, "nothing was stored") || !strings.Contains(resp, "chunked") || !strings.HasSuffix(resp, "\nstored 0\n") {
		t.Fatalf("POST = %d %q, want 413 saying nothing was stored and what chunked bodies do", code, resp)
	}
	code, h, resp := f.post(t, "/api/v1/chronicles/main/stories/anacrolix/events", bytes.NewReader(body.Bytes()), nil)
	if p := problemOf(t, h, resp); code != 413 || p["type"] != "urn:chronostream:problem:body-too-large" {
		t.Fatalf("POST = %d %v", code, p)
	}
	if n := len(f.read(t, "main", "anacrolix")); n != 1 {
		t.Fatalf("%d events stored, want only the first request's 1", n)
	}
	if got := counter(t, f.metrics.IngestErrors.WithLabelValues(Protocol, "body_too_large")); got != 2 {
		t.Errorf("body_too_large errors = %v, want 2", got)
	}
}

// sourceLog wraps the store to fail or delay recording sources, and checks
// that nothing is appended before the request's source is recorded.
type sourceLog struct {
	*store.Store
	fail  atomic.Bool
	delay atomic.Int64 // ns

	mu       sync.Mutex
	recorded map[string]bool
	early    int // appends naming a source not yet recorded
}

func (l *sourceLog) Unwrap() *store.Store { return l.Store }

func (l *sourceLog) PutSource(ctx context.Context, src store.Source) error {
	return l.record(src.ID, func() error { return l.Store.PutSource(ctx, src) })
}

func (l *sourceLog) MergeSource(ctx context.Context, id string, merge func(store.Source, bool) store.Source) error {
	return l.record(id, func() error { return l.Store.MergeSource(ctx, id, merge) })
}

func (l *sourceLog) record(id string, put func() error) error {
	time.Sleep(time.Duration(l.delay.Load()))
	if l.fail.Load() {
		return errors.New("sources unavailable")
	}
	if err := put(); err != nil {
		return err
	}
	l.mu.Lock()
	l.recorded[id] = true
	l.mu.Unlock()
	return nil
}

func (l *sourceLog) Append(chronicle, story string, evs []event.Event) *store.Pending {
	l.mu.Lock()
	for i := range evs {
		if !l.recorded[evs[i].Source] {
			l.early++
		}
	}
	l.mu.Unlock()
	return l.Store.Append(chronicle, story, evs)
}

// TestAckNamesRecordedSource: events are appended only once their source
// is recorded, so a failed source record stores nothing and the reply's
// "stored 0" is true.
func TestAckNamesRecordedSource(t *testing.T) {
	s := testutil.OpenStore(t, store.Options{})
	if _, err := s.Append("main", "anacrolix", []event.Event{{Body: []byte("{}"), Format: event.FormatJSON}}).Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	l := &sourceLog{Store: s, recorded: map[string]bool{}}
	l.fail.Store(true)
	f := newFixtureOn(t, l, ingest.Limits{})
	code, _, resp := f.post(t, "/", strings.NewReader("{\"a\":1}\n{\"a\":2}\n"), nil)
	if code != 503 || !strings.Contains(resp, "recording the source") || !strings.HasSuffix(resp, "\nstored 0\n") {
		t.Fatalf("POST = %d %q, want 503 with stored 0", code, resp)
	}
	if n := len(f.read(t, "main", "anacrolix")); n != 1 {
		t.Fatalf("%d events in the story, want 1: the failed request stored events it did not acknowledge", n)
	}

	// A slow source record delays the first append, not the reply's truth.
	l.fail.Store(false)
	l.delay.Store(int64(100 * time.Millisecond))
	code, _, resp = f.post(t, "/", strings.NewReader("{\"a\":3}\n{\"a\":4}\n"), nil)
	if code != 200 || resp != "2\n" {
		t.Fatalf("POST = %d %q", code, resp)
	}
	if l.early != 0 {
		t.Fatalf("%d events were appended before their source was recorded", l.early)
	}
}

// failingLog fails the append of one batch, as a log that times out would.
type failingLog struct {
	*store.Store
	mu     sync.Mutex
	calls  int
	failAt int
}

func (l *failingLog) Unwrap() *store.Store { return l.Store }

func (l *failingLog) Append(chronicle, story string, evs []event.Event) *store.Pending {
	l.mu.Lock()
	l.calls++
	fail := l.calls == l.failAt
	l.mu.Unlock()
	if fail {
		return l.Store.Append(chronicle, "", evs) // an invalid name fails it
	}
	return l.Store.Append(chronicle, story, evs)
}

// TestAckIsDurablePrefix: when a batch fails, the reply acknowledges the
// batches before it, and nothing after it, even where the log took them.
func TestAckIsDurablePrefix(t *testing.T) {
	l := &failingLog{Store: testutil.OpenStore(t, store.Options{}), failAt: 3}
	m := obs.New()
	h := NewHandler(Config{Config: ingest.Config{Log: l, Metrics: m}, Batch: ingest.BatchOptions{Events: 10}})
	var body strings.Builder
	for i := range 55 {
		fmt.Fprintf(&body, "{\"i\":%d}\n", i)
	}
	req := httptest.NewRequest("POST", "/?chronicle=c&story=s", strings.NewReader(body.String()))
	rec := httptest.NewRecorder()
	h.ServeRoot(rec, req)
	if rec.Code != 400 || !strings.HasSuffix(rec.Body.String(), "\nstored 20\n") {
		t.Fatalf("POST = %d %q, want the 20 events of the two batches before the failed one", rec.Code, rec.Body)
	}
	if got := counter(t, m.IngestEvents.WithLabelValues(Protocol)); got != 20 {
		t.Errorf("ingest events metric = %v, want 20", got)
	}
}
