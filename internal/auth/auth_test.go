package auth

import (
	"net/http"
	"net/http/httptest"
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
		{"v1 u and p", func(r *http.Request) { r.URL.RawQuery = "db=x&u=anyone&p=secret" }, http.StatusNoContent},
		{"v1 p alone", func(r *http.Request) { r.URL.RawQuery = "p=secret" }, http.StatusNoContent},
		{"v1 wrong p", func(r *http.Request) { r.URL.RawQuery = "u=secret&p=nope" }, http.StatusUnauthorized},
		{"v1 u is not the token", func(r *http.Request) { r.URL.RawQuery = "u=secret" }, http.StatusUnauthorized},
		{"v1 escaped p", func(r *http.Request) { r.URL.RawQuery = "u=a&p=s%65cret" }, http.StatusNoContent},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		tt.set(r)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, w.Code, tt.want)
		}
	}
	// No tokens configured: everything passes (the server allows that only on loopback).
	w := httptest.NewRecorder()
	New(nil).Require(ok).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != http.StatusNoContent {
		t.Errorf("without tokens: status %d", w.Code)
	}
}
