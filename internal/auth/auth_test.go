package auth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRequire(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := New([]string{" secret ", ""}).Require(ok)
	tests := []struct {
		name string
		set  func(*http.Request)
		want int
	}{
		{"none", func(*http.Request) {}, http.StatusUnauthorized},
		{"influx token", func(r *http.Request) { r.Header.Set("Authorization", "Token secret") }, http.StatusNoContent},
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "bearer secret") }, http.StatusNoContent},
		{"basic password", func(r *http.Request) { r.SetBasicAuth("anyone", "secret") }, http.StatusNoContent},
		{"wrong", func(r *http.Request) { r.Header.Set("Authorization", "Bearer secreT") }, http.StatusUnauthorized},
		{"prefix", func(r *http.Request) { r.Header.Set("Authorization", "Bearer secre") }, http.StatusUnauthorized},
		{"empty", func(r *http.Request) { r.Header.Set("Authorization", "Bearer ") }, http.StatusUnauthorized},
		// Tokens in URLs are taken only on InfluxDB 1.x routes (TestQueryToken).
		{"v1 u and p", func(r *http.Request) { r.URL.RawQuery = "db=x&u=anyone&p=secret" }, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		tt.set(r)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, w.Code, tt.want)
		}
		if w.Code == http.StatusUnauthorized && (w.Header().Get("WWW-Authenticate") == "" || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain")) {
			t.Errorf("%s: 401 headers %v", tt.name, w.Header())
		}
	}
	// No tokens configured: everything passes (the server allows that only on loopback).
	w := httptest.NewRecorder()
	New(nil).Require(ok).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != http.StatusNoContent {
		t.Errorf("without tokens: status %d", w.Code)
	}
}

// TestQueryToken: InfluxDB 1.x's ?u=&p= carries the token on the routes
// that take it (Route.QueryToken), and only there.
func TestQueryToken(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	tokens := New([]string{"secret"})
	v1 := tokens.Guard(Route{QueryToken: true})(ok)
	api := tokens.Guard(Route{Deny: Problem})(ok)
	for _, tt := range []struct {
		query   string
		v1, api int
	}{
		{"db=x&u=anyone&p=secret", 204, 401},
		{"p=secret", 204, 401},
		{"u=secret&p=nope", 401, 401},
		{"u=secret", 401, 401},
		{"u=a&p=s%65cret", 204, 401},
	} {
		for _, h := range []struct {
			name    string
			handler http.Handler
			want    int
		}{{"v1", v1, tt.v1}, {"api", api, tt.api}} {
			w := httptest.NewRecorder()
			h.handler.ServeHTTP(w, httptest.NewRequest("GET", "/x?"+tt.query, nil))
			if w.Code != h.want {
				t.Errorf("%s ?%s: status %d, want %d", h.name, tt.query, w.Code, h.want)
			}
		}
	}
}

// TestDeny: a route answers 401 in its clients' format, with
// WWW-Authenticate either way.
func TestDeny(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	w := httptest.NewRecorder()
	New([]string{"secret"}).Guard(Route{Deny: Problem})(ok).ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/chronicles", nil))
	var p struct {
		Type, Title, Detail, Instance string
		Status                        int
	}
	if w.Code != 401 || w.Header().Get("Content-Type") != "application/problem+json" || w.Header().Get("WWW-Authenticate") == "" ||
		json.Unmarshal(w.Body.Bytes(), &p) != nil || p.Status != 401 || p.Title != "Unauthorized" || p.Instance != "/api/v1/chronicles" {
		t.Errorf("problem: %d %v %s", w.Code, w.Header(), w.Body)
	}
}
