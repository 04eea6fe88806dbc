package lineproto

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

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
	if hdr.Get("X-Influxdb-Version") != "test" {
		t.Errorf("version header %q", hdr.Get("X-Influxdb-Version"))
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
	src, err := f.store.GetSource(context.Background(), cpu[0].Source)
	if err != nil || src.Protocol != ProtocolV1 || src.Count != 2 || src.Chronicle != "telegraf" {
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
		if code != 204 || hdr.Get("X-Influxdb-Version") != "test" || hdr.Get("X-Influxdb-Build") != "OSS" {
			t.Errorf("%s /ping: %d %v", m, code, hdr)
		}
	}
	req, _ := http.NewRequest("GET", f.srv.URL+"/ping?verbose=true", nil)
	code, body, _ := do(t, req)
	var v struct{ Version string }
	if code != 200 || json.Unmarshal([]byte(body), &v) != nil || v.Version != "test" {
		t.Errorf("verbose ping: %d %s", code, body)
	}
}

// TestGzipBomb sends a body that inflates far past the limit: the answer
// is 413 and the server's memory stays bounded by the limit, not the bomb.
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
	if code != 413 {
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
