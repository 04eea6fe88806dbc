package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

// TestUnauthorizedFormats: a request without a token gets 401 in the
// format its clients parse (InfluxDB 1.x's and 2.x's on their routes,
// RFC 7807 problems on our API and Trendlines', plain text elsewhere),
// always with WWW-Authenticate; and a token in the URL (?p=) counts only
// on InfluxDB 1.x routes.
func TestUnauthorizedFormats(t *testing.T) {
	const token = "s3cret"
	s := servertest.RunServer(t, server.Options{Tokens: []string{token}, AutoCreate: true})
	base := "http://" + s.Addr()
	do := func(method, path, body string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, strings.TrimSpace(string(b))
	}
	isProblem := func(h http.Header, body string) bool {
		var p struct {
			Title  string
			Status int
		}
		return h.Get("Content-Type") == "application/problem+json" && json.Unmarshal([]byte(body), &p) == nil && p.Status == 401 && p.Title != ""
	}
	for _, tt := range []struct {
		method, path, body string
		ok                 func(h http.Header, body string) bool
	}{
		{"POST", "/write?db=x", "cpu v=1", func(h http.Header, body string) bool {
			return body == `{"error":"authorization failed"}` && h.Get("X-Influxdb-Error") == "authorization failed" &&
				strings.HasPrefix(h.Get("X-Influxdb-Version"), "1.") && h.Get("Content-Type") == "application/json"
		}},
		{"POST", "/write?db=x&u=a&p=wrong", "cpu v=1", func(h http.Header, body string) bool { return body == `{"error":"authorization failed"}` }},
		{"POST", "/api/v2/write?bucket=b", "cpu v=1", func(h http.Header, body string) bool {
			return body == `{"code":"unauthorized","message":"unauthorized access"}` && strings.HasPrefix(h.Get("Content-Type"), "application/json")
		}},
		{"POST", "/api/v2/write?bucket=b&p=" + token, "cpu v=1", func(h http.Header, body string) bool { return strings.Contains(body, `"unauthorized"`) }},
		{"GET", "/api/v1/chronicles", "", isProblem},
		{"GET", "/api/v1/chronicles?u=a&p=" + token, "", isProblem},
		{"POST", "/api/v1/chronicles/c/stories/s/events", "{}\n", isProblem},
		{"GET", "/api/v1/metric", "", isProblem},
		{"POST", "/api/v1/data?p=" + token, `{"metric":"m","value":1}`, isProblem},
		{"POST", "/?chronicle=c&story=s&p=" + token, "{}\n", func(h http.Header, body string) bool {
			return strings.HasPrefix(h.Get("Content-Type"), "text/plain")
		}},
	} {
		code, h, body := do(tt.method, tt.path, tt.body)
		if code != 401 || h.Get("WWW-Authenticate") == "" || !tt.ok(h, body) {
			t.Errorf("%s %s: %d %v %s", tt.method, tt.path, code, h, body)
		}
	}
	// InfluxDB 1.x's u and p carry the token on /write.
	if code, _, body := do("POST", "/write?db=x&u=a&p="+token, "cpu v=1"); code != 204 {
		t.Errorf("/write with ?p=: %d %s", code, body)
	}
}

// TestInfluxVersion: InfluxDB's endpoints report a 1.x version that
// clients checking the major version accept, whatever chronostream's own
// (here a development build's "dev"), which /health and
// X-Chronostream-Version report.
func TestInfluxVersion(t *testing.T) {
	s := servertest.RunServer(t, server.Options{Version: "dev"})
	resp, err := http.Get("http://" + s.Addr() + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := resp.Header.Get("X-Influxdb-Version"); resp.StatusCode != 204 || !strings.HasPrefix(v, "1.") || resp.Header.Get("X-Chronostream-Version") != "dev" {
		t.Errorf("/ping: %d %v", resp.StatusCode, resp.Header)
	}
	resp, err = http.Get("http://" + s.Addr() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Version string }
	err = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if err != nil || h.Version != "dev" {
		t.Errorf("/health version %q, %v", h.Version, err)
	}
}
