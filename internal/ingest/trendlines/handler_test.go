package trendlines

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/obs"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
)

func newServer(t testing.TB) *httptest.Server {
	t.Helper()
	st := testutil.OpenStore(t, store.Options{})
	h := NewHandler(Config{Config: ingest.Config{Metrics: obs.New(), Logger: testutil.Logger(t, 0)}, Store: st, Chronicle: "metrics"})
	mux := http.NewServeMux()
	h.Register(mux, func(h http.Handler) http.Handler { return h })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func do(t testing.TB, method, u, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestPostThenGet(t *testing.T) {
	srv := newServer(t)
	// Names with dots, slashes, spaces and non-ASCII are stories like any other.
	for _, metric := range []string{"foo.bar", "a/b c.ü"} {
		for i, body := range []string{
			`{"metric": %q, "value": 52.88, "time": 1700000000}`,
			`{"metric": %q, "value": 15, "time": 1700000001.5}`,
			`{"metric": %q, "value": "-3"}`,
		} {
			b, _ := json.Marshal(metric)
			code, h, resp := do(t, "POST", srv.URL+"/api/v1/data", strings.Replace(body, "%q", string(b), 1))
			if code != http.StatusCreated || resp != "Added DataPoint to Metric "+metric+"\n" || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
				t.Fatalf("POST %d: %d %q", i, code, resp)
			}
		}
		code, h, resp := do(t, "GET", srv.URL+"/api/v1/data/"+url.PathEscape(metric), "")
		if code != 200 || h.Get("Content-Type") != "application/json" {
			t.Fatalf("GET %s: %d %s", metric, code, resp)
		}
		var ex struct {
			Rows []struct {
				ID        uint64  `json:"id"`
				N         int     `json:"n"`
				Timestamp string  `json:"timestamp"`
				Value     float64 `json:"value"`
			} `json:"rows"`
			Units *string `json:"units"`
		}
		if err := json.Unmarshal([]byte(resp), &ex); err != nil {
			t.Fatalf("GET %s: %v: %s", metric, err, resp)
		}
		if len(ex.Rows) != 3 || ex.Units != nil {
			t.Fatalf("GET %s: %s", metric, resp)
		}
		if r := ex.Rows[0]; r.N != 0 || r.Value != 52.88 || r.Timestamp != "2023-11-14T22:13:20" {
			t.Errorf("row 0: %+v", r)
		}
		if r := ex.Rows[1]; r.N != 1 || r.Value != 15 || r.Timestamp != "2023-11-14T22:13:21.500000" || r.ID <= ex.Rows[0].ID {
			t.Errorf("row 1: %+v", r)
		}
		if r := ex.Rows[2]; r.N != 2 || r.Value != -3 {
			t.Errorf("row 2: %+v", r)
		}
		// Python's float formatting, as Trendlines' export writes it.
		if !strings.Contains(resp, `"value":15.0}`) {
			t.Errorf("15 is not written as 15.0: %s", resp)
		}
	}

	// The listing, sorted by name, in Trendlines' shape.
	code, _, resp := do(t, "GET", srv.URL+"/api/v1/metric", "")
	want := `{"count":2,"next":null,"prev":null,"results":[` +
		`{"lower_limit":null,"metric_id":1,"name":"a/b c.ü","units":null,"upper_limit":null},` +
		`{"lower_limit":null,"metric_id":2,"name":"foo.bar","units":null,"upper_limit":null}]}` + "\n"
	if code != 200 || resp != want {
		t.Errorf("listing: %d\n got %s\nwant %s", code, resp, want)
	}
	code, _, resp = do(t, "GET", srv.URL+"/api/v1/metric/foo.bar", "")
	if code != 200 || !strings.Contains(resp, `"name":"foo.bar"`) {
		t.Errorf("GET metric: %d %s", code, resp)
	}
}

func TestErrors(t *testing.T) {
	srv := newServer(t)
	problem := func(code int, h http.Header, body string) (int, string, string) {
		var p struct {
			Type   string `json:"type"`
			Status int    `json:"status"`
			Detail string `json:"detail"`
		}
		if h.Get("Content-Type") != "application/problem+json" || json.Unmarshal([]byte(body), &p) != nil || p.Status != code {
			t.Errorf("not a problem document: %d %s %s", code, h.Get("Content-Type"), body)
		}
		return code, p.Type, p.Detail
	}
	// Nothing written yet: the listing is 404, as in Trendlines.
	if code, typ, _ := problem(do(t, "GET", srv.URL+"/api/v1/metric", "")); code != 404 || typ != "no-data" {
		t.Errorf("empty listing: %d %s", code, typ)
	}
	for _, tt := range []struct{ body, detail string }{
		{`{"metric": "x", "value": 1`, "invalid JSON"},
		{`not json`, "not a JSON object"},
		{`{"value": 10}`, "Missing required key. Required keys are:"},
		{`{"metric": "x", "value": "abc"}`, `"value" must be a number`},
		{`{"metric": "x", "value": 1, "time": "soon"}`, `"time"`},
	} {
		code, typ, detail := problem(do(t, "POST", srv.URL+"/api/v1/data", tt.body))
		if code != 400 || typ != "invalid-request" || !strings.Contains(detail, tt.detail) {
			t.Errorf("POST %s: %d %s %q, want 400 naming %q", tt.body, code, typ, detail, tt.detail)
		}
	}
	if code, typ, detail := problem(do(t, "GET", srv.URL+"/api/v1/data/missing.metric", "")); code != 404 || typ != "metric-not-found" || !strings.Contains(detail, "does not exist") {
		t.Errorf("missing metric: %d %s %s", code, typ, detail)
	}
	if code, typ, _ := problem(do(t, "GET", srv.URL+"/api/v1/metric/missing.metric", "")); code != 404 || typ != "metric-not-found" {
		t.Errorf("missing metric info: %d %s", code, typ)
	}
	if code, _, _ := do(t, "DELETE", srv.URL+"/api/v1/metric/x", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d, want 405 (metric CRUD is not served)", code)
	}
}
