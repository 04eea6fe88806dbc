package query

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// The handler's bounds: a query text over MaxQueryBytes is a 413 with
// InfluxDB's JSON error, GROUP BY time windows beyond maxWindows are the
// statement's max-select-buckets error; what was accepted is unchanged.
func TestHandlerBounds(t *testing.T) {
	db := testDB(t, 3)
	h := NewHandler(&Engine{Index: memSource{"db": db}, Catalog: memCatalog{}}, nil, nil)
	do := func(method, q string) (int, string) {
		form := url.Values{"db": {"db"}, "q": {q}}
		var r *http.Request
		if method == "POST" {
			r = httptest.NewRequest("POST", "/query", strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			r = httptest.NewRequest("GET", "/query?"+form.Encode(), nil)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	long := "SELECT count(f) FROM cpu WHERE host = '" + strings.Repeat("x", MaxQueryBytes) + "'"
	for _, m := range []string{"POST", "GET"} {
		if code, body := do(m, long); code != http.StatusRequestEntityTooLarge || !strings.Contains(body, `"error"`) {
			t.Errorf("%s of a %d-byte query: %d %s", m, len(long), code, body[:min(len(body), 200)])
		}
	}
	if code, body := do("GET", "SELECT count(f) FROM cpu WHERE time >= 1000000000000000000 AND time < 1000000000000200000 GROUP BY time(1ns)"); code != http.StatusOK || !strings.Contains(body, "max-select-buckets limit exceeded") {
		t.Errorf("200,001 windows: %d %s", code, body)
	}
	if code, body := do("GET", "SELECT count(f) FROM cpu"); code != http.StatusOK || !strings.Contains(body, `"count"`) {
		t.Errorf("after the refusals: %d %s", code, body)
	}
}
