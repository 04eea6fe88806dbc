package lineproto

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/obs"
	"github.com/chronostream/chronostream/internal/store"
	tu "github.com/chronostream/chronostream/internal/testutil"
)

type fixture struct {
	srv     *httptest.Server
	store   *store.Store
	metrics *obs.Metrics
}

func newFixture(t testing.TB, limits ingest.Limits, mods ...tu.StoreOption) *fixture {
	t.Helper()
	s := tu.OpenStore(t, store.Options{}, mods...)
	m := obs.New()
	h := NewHandler(Config{Config: ingest.Config{Log: s, Limits: limits, Metrics: m}, Version: "test"})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /write", h.ServeWriteV1)
	mux.HandleFunc("POST /api/v2/write", h.ServeWriteV2)
	mux.HandleFunc("GET /ping", h.ServePing)
	mux.HandleFunc("HEAD /ping", h.ServePing)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, store: s, metrics: m}
}

func (f *fixture) post(t testing.TB, path, body string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest("POST", f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

func do(t testing.TB, req *http.Request) (int, string, http.Header) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// read returns the events of a story, expanded.
func (f *fixture) read(t testing.TB, chronicle, story string) []event.Event {
	t.Helper()
	var out []event.Event
	_, err := f.store.Read(context.Background(), store.Query{Chronicle: chronicle, Story: story}, func(e *event.Event) error {
		c := *e
		c.Body = append([]byte(nil), e.Body...)
		if err := Expand(&c); err != nil {
			t.Errorf("expand %q: %v", c.Body, err)
		}
		out = append(out, c)
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteV1(t *testing.T) {
	f := newFixture(t, ingest.Limits{})
	code, body, hdr := f.post(t, "/write?db=telegraf&rp=autogen&precision=s", "cpu,host=a usage=1.5,n=2i 1700000000\nmem,host=a free=10u\n")
	if code != http.StatusNoContent || body != "" {
		t.Fatalf("write: %d %s", code, body)
	}
	// Clients check for a 1.x server; ours is in X-Chronostream-Version.
	if v := hdr.Get("X-Influxdb-Version"); !strings.HasPrefix(v, "1.") || hdr.Get("X-Chronostream-Version") != "test" {
		t.Errorf("version headers %q, %q", v, hdr.Get("X-Chronostream-Version"))
	}
	cpu := f.read(t, "telegraf", "cpu")
	if len(cpu) != 1 || cpu[0].Time != 1700000000e9 || cpu[0].Kind != event.KindMetric || cpu[0].Format != event.FormatLine ||
		cpu[0].Tags["host"] != "a" || cpu[0].Fields["usage"] != event.Float(1.5) || cpu[0].Fields["n"] != event.Int(2) || cpu[0].Source == "" {
		t.Errorf("cpu = %+v", cpu)
	}
	mem := f.read(t, "telegraf", "mem")
	if len(mem) != 1 || mem[0].Fields["free"] != event.Uint(10) {
		t.Errorf("mem = %+v", mem)
	}
	// The client's record is written before the lines, its counts soon after.
	var src store.Source
	var err error
	tu.Eventually(t, 10*time.Second, func() bool {
		src, err = f.store.GetSource(context.Background(), cpu[0].Source)
		return err == nil && src.Count == 2
	}, "the client's count")
	if src.Protocol != ProtocolV1 || src.Requests != 1 || src.Chronicle != "telegraf" {
		t.Errorf("source %+v, %v", src, err)
	}
	if got := counter(t, f.metrics.IngestEvents.WithLabelValues(ProtocolV1)); got != 2 {
		t.Errorf("ingest events metric = %v", got)
	}
}

func TestWriteErrors(t *testing.T) {
	f := newFixture(t, ingest.Limits{MaxBodyBytes: 1000})
	for _, tt := range []struct {
		path, body string
		hdr        []string
		code       int
		want       string
	}{
		{"/write", "cpu v=1", nil, 400, `{"error":"database is required"}`},
		{"/write?db=x&precision=d", "cpu v=1", nil, 400, `{"error":"invalid precision \"d\" (want n, u, ms, s, m or h)"}`},
		{"/api/v2/write?org=o", "cpu v=1", nil, 400, `{"code":"invalid","message":"bucket is required"}`},
		{"/api/v2/write?bucket=b&precision=h", "cpu v=1", nil, 400, `{"code":"invalid","message":"invalid precision \"h\" (want ns, us, ms or s)"}`},
		{"/write?db=x", "cpu v=", nil, 400, `{"error":"unable to parse 'cpu v=': line 1: missing field value dropped=1"}`},
		{"/api/v2/write?bucket=b", "cpu v=", nil, 400, `{"code":"invalid","message":"unable to parse 'cpu v=': line 1: missing field value dropped=1"}`},
		{"/write?db=x", strings.Repeat("cpu v=1\n", 200), nil, 413, `{"error":"Request Entity Too Large"}`},
		{"/api/v2/write?bucket=b", strings.Repeat("cpu v=1\n", 200), nil, 413, `{"code":"request too large","message":"unable to read data: request body of 1600 bytes exceeds the limit of 1000 bytes"}`},
		{"/write?db=x", "cpu v=1", []string{"Content-Encoding", "gzip"}, 400, `{"error":"invalid gzip body: unexpected EOF"}`},
		{"/write?db=x", "cpu v=1", []string{"Content-Encoding", "br"}, 415, `{"error":"content encoding \"br\" is not supported (use gzip or none)"}`},
		{"/write?db=x", "", nil, 204, ``},
	} {
		code, body, _ := f.post(t, tt.path, tt.body, tt.hdr...)
		if code != tt.code || strings.TrimSpace(body) != tt.want {
			t.Errorf("%s %q: %d %s, want %d %s", tt.path, tt.body, code, body, tt.code, tt.want)
		}
	}
}

func TestPartialWrite(t *testing.T) {
	f := newFixture(t, ingest.Limits{})
	body := "cpu v=1 1\n# comment\ncpu v=oops 2\ncpu,host= v=3 3\ncpu v=4 4\n"
	code, resp, _ := f.post(t, "/write?db=db", body)
	want := `{"error":"partial write: unable to parse 'cpu v=oops 2': line 3: invalid number dropped=2"}`
	if code != 400 || strings.TrimSpace(resp) != want {
		t.Fatalf("got %d %s\nwant 400 %s", code, resp, want)
	}
	evs := f.read(t, "db", "cpu")
	if len(evs) != 2 || evs[0].Fields["v"] != event.Float(1) || evs[1].Fields["v"] != event.Float(4) {
		t.Errorf("stored %+v", evs)
	}
	if got := counter(t, f.metrics.IngestErrors.WithLabelValues(ProtocolV1, "invalid_line")); got != 2 {
		t.Errorf("dropped lines metric = %v", got)
	}
}

func TestNoChronicle(t *testing.T) {
	f := newFixture(t, ingest.Limits{}, tu.ManualCreate)
	code, body, _ := f.post(t, "/write?db=x", "cpu v=1")
	if code != 404 || strings.TrimSpace(body) != `{"error":"database not found: \"x\""}` {
		t.Errorf("v1: %d %s", code, body)
	}
	code, body, _ = f.post(t, "/api/v2/write?org=o&bucket=x", "cpu v=1")
	if code != 404 || strings.TrimSpace(body) != `{"code":"not found","message":"bucket \"x\" not found"}` {
		t.Errorf("v2: %d %s", code, body)
	}
}

func TestPing(t *testing.T) {
	f := newFixture(t, ingest.Limits{})
	for _, m := range []string{"GET", "HEAD"} {
		req, _ := http.NewRequest(m, f.srv.URL+"/ping", nil)
		code, _, hdr := do(t, req)
		if code != 204 || hdr.Get("X-Influxdb-Version") != VersionV1 || hdr.Get("X-Influxdb-Build") != "OSS" || hdr.Get("X-Chronostream-Version") != "test" {
			t.Errorf("%s /ping: %d %v", m, code, hdr)
		}
	}
	req, _ := http.NewRequest("GET", f.srv.URL+"/ping?verbose=true", nil)
	code, body, _ := do(t, req)
	var v struct{ Version string }
	if code != 200 || json.Unmarshal([]byte(body), &v) != nil || v.Version != VersionV1 {
		t.Errorf("verbose ping: %d %s", code, body)
	}
}

// TestGzipBomb sends a body that inflates far past the limit: the answer
// is a partial write (the lines before the limit are stored) and the
// server's memory stays bounded by the limit, not the bomb.
func TestGzipBomb(t *testing.T) {
	const limit = 1 << 20
	f := newFixture(t, ingest.Limits{MaxBodyBytes: limit})
	// One gzip member of 4 MiB of lines, repeated: gzip readers take
	// concatenated members as one stream, and 1 GiB inflated costs no
	// compression time.
	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	_, _ = zw.Write(bytes.Repeat([]byte("cpu,host=a v=1 1\n"), 4<<20/17))
	_ = zw.Close()
	zb := bytes.Repeat(member.Bytes(), 256)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	code, body, _ := f.post(t, "/write?db=bomb", string(zb), "Content-Encoding", "gzip")
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if code != 400 || !strings.Contains(body, "partial write: request body exceeds the limit of 1048576 bytes dropped=1") {
		t.Fatalf("gzip bomb: %d %s", code, body)
	}
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 64<<20 {
		t.Errorf("heap grew by %d MiB while refusing a gzip bomb", grew>>20)
	}
	if after.TotalAlloc-before.TotalAlloc > 256<<20 {
		t.Errorf("allocated %d MiB while refusing a gzip bomb", (after.TotalAlloc-before.TotalAlloc)>>20)
	}
}

func counter(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// chunked hides a body's length: the client sends it chunked.
type chunked struct{ io.Reader }

// TestStreamedBodyOverLimit: a chunked body over the limit stores the lines
// before it; once any was stored the answer is InfluxDB's partial write
// (400, which clients do not retry), not 413 (which Telegraf answers by
// splitting the batch and sending it again, storing its first part twice).
// With nothing stored it stays 413.
func TestStreamedBodyOverLimit(t *testing.T) {
	f := newFixture(t, ingest.Limits{MaxBodyBytes: 1000})
	post := func(path, body string) (int, string) {
		req, _ := http.NewRequest("POST", f.srv.URL+path, chunked{strings.NewReader(body)})
		code, resp, _ := do(t, req)
		return code, strings.TrimSpace(resp)
	}
	body := strings.Repeat("cpu v=1\n", 200) // 1,600 bytes: 125 lines fit
	code, resp := post("/write?db=v1", body)
	if want := `{"error":"partial write: request body exceeds the limit of 1000 bytes dropped=1"}`; code != 400 || resp != want {
		t.Errorf("v1: %d %s, want 400 %s", code, resp, want)
	}
	if n := len(f.read(t, "v1", "cpu")); n != 125 {
		t.Errorf("v1 stored %d lines, want 125", n)
	}
	code, resp = post("/api/v2/write?bucket=v2", body)
	if want := `{"code":"invalid","message":"partial write: request body exceeds the limit of 1000 bytes dropped=1"}`; code != 400 || resp != want {
		t.Errorf("v2: %d %s, want 400 %s", code, resp, want)
	}
	// Nothing stored: the first line alone is over the limit.
	code, resp = post("/write?db=none", "cpu v=\""+strings.Repeat("x", 2000)+"\"\n")
	if code != 413 {
		t.Errorf("nothing stored: %d %s, want 413", code, resp)
	}
}

// countingLog counts the source records written.
type countingLog struct {
	*store.Store
	mu     sync.Mutex
	merges []string
}

func (l *countingLog) MergeSource(ctx context.Context, id string, merge func(store.Source, bool) store.Source) error {
	l.mu.Lock()
	l.merges = append(l.merges, id)
	l.mu.Unlock()
	return l.Store.MergeSource(ctx, id, merge)
}

func (l *countingLog) written() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.merges)
}

// TestSourceByClient: Telegraf's requests are recorded by client, not one
// record (an fsynced write, and a key JetStream keeps in memory) per
// request: the first request writes the record before its lines are
// stored, the next ones only add to its counts, written later. Another
// User-Agent is another client; another trace id is not.
func TestSourceByClient(t *testing.T) {
	l := &countingLog{Store: tu.OpenStore(t, store.Options{})}
	clients := ingest.NewClients(l, nil)
	h := NewHandler(Config{Config: ingest.Config{Log: l, Clients: clients}})
	srv := httptest.NewServer(http.HandlerFunc(h.ServeWriteV1))
	defer srv.Close()
	post := func(agent, trace string, body io.Reader) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+"/write?db=src", body)
		req.Header.Set("User-Agent", agent)
		req.Header.Set("Traceparent", trace)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 204 {
			t.Fatalf("%v %v", resp, err)
		}
		resp.Body.Close()
	}
	body := "cpu v=1 1\nmem v=2 2\ncpu v=3 3\n"
	post("Telegraf/1.30", "00-a-01", strings.NewReader(body))
	post("Telegraf/1.30", "00-b-01", chunked{strings.NewReader(body)})
	post("Telegraf/1.30", "00-c-01", strings.NewReader(body))
	if n := l.written(); n != 1 {
		t.Fatalf("three requests of one client wrote its record %d times before their answers, want 1", n)
	}
	post("Telegraf/1.31", "00-d-01", strings.NewReader("disk v=1 4\n"))
	if n := l.written(); n != 2 {
		t.Fatalf("another client: %d record writes, want 2", n)
	}
	clients.Close(context.Background())

	f := &fixture{store: l.Store}
	evs := f.read(t, "src", "cpu")
	if len(evs) != 6 || evs[0].Source != evs[5].Source || !strings.HasPrefix(evs[0].Source, "c=") {
		t.Fatalf("cpu events %d, sources %q and %q: want 6 naming one client", len(evs), evs[0].Source, evs[len(evs)-1].Source)
	}
	src, err := l.GetSource(context.Background(), evs[0].Source)
	if err != nil {
		t.Fatal(err)
	}
	if src.Requests != 3 || src.Count != 9 || src.Protocol != ProtocolV1 || src.Remote != "127.0.0.1" ||
		src.End.Before(src.Start) || src.Headers["Traceparent"] != nil || src.Headers["User-Agent"][0] != "Telegraf/1.30" {
		t.Errorf("client record %+v: want 3 requests, 9 events, remote host only, no per-request header", src)
	}
	other, err := l.GetSource(context.Background(), f.read(t, "src", "disk")[0].Source)
	if err != nil || other.Requests != 1 || other.Count != 1 {
		t.Errorf("the other client: %+v %v", other, err)
	}
}

// TestManyMeasurements: a small body naming thousands of measurements (a
// story each) allocates in proportion to the body and the window of
// appends, not a full batch per measurement (which was 3 GiB for this one).
func TestManyMeasurements(t *testing.T) {
	f := newFixture(t, ingest.Limits{})
	var body strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&body, "m%d v=1 %d\n", i, i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	code, resp, _ := f.post(t, "/write?db=many", body.String())
	runtime.ReadMemStats(&after)
	if code != 204 {
		t.Fatalf("%d %s", code, resp)
	}
	if a := after.TotalAlloc - before.TotalAlloc; a > 128<<20 {
		t.Errorf("a %d KiB body of 2,000 measurements allocated %d MiB", body.Len()>>10, a>>20)
	}
	for _, m := range []string{"m0", "m1999"} {
		if n := len(f.read(t, "many", m)); n != 1 {
			t.Errorf("%s: %d events", m, n)
		}
	}
}
