package auth

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestFormToken: InfluxDB 1.x clients POST /query with u and p in the form
// body; a route with FormToken takes that p, and its handler still reads
// the form. Other bodies are left alone.
func TestFormToken(t *testing.T) {
	var gotQ, gotBody string
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotQ = r.FormValue("q")
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		w.WriteHeader(http.StatusNoContent)
	})
	tokens := New([]string{"secret"})
	query := tokens.Guard(Route{QueryToken: true, FormToken: true})(ok)
	write := tokens.Guard(Route{QueryToken: true})(ok)
	const form = "application/x-www-form-urlencoded"
	for _, tt := range []struct {
		name        string
		handler     http.Handler
		ctype, body string
		want        int
		wantQ       string
	}{
		{"form p", query, form, "q=SHOW+DATABASES&u=me&p=secret", 204, "SHOW DATABASES"},
		{"form p with charset", query, form + "; charset=utf-8", "p=secret&q=x", 204, "x"},
		{"form wrong p", query, form, "q=x&p=nope", 401, ""},
		{"form without p", query, form, "q=x", 401, ""},
		{"route without FormToken", write, form, "q=x&p=secret", 401, ""},
		{"not a form", query, "text/plain", "p=secret", 401, ""},
		{"form over the bound", query, form, "p=secret&q=" + strings.Repeat("a", maxFormBytes), 401, ""},
	} {
		gotQ = ""
		r := httptest.NewRequest("POST", "/query", strings.NewReader(tt.body))
		r.Header.Set("Content-Type", tt.ctype)
		w := httptest.NewRecorder()
		tt.handler.ServeHTTP(w, r)
		if w.Code != tt.want || gotQ != tt.wantQ {
			t.Errorf("%s: status %d, q %q; want %d, %q", tt.name, w.Code, gotQ, tt.want, tt.wantQ)
		}
	}
	// A body that is not a form reaches the handler whole.
	r := httptest.NewRequest("POST", "/write?p=secret", strings.NewReader("cpu v=1"))
	r.Header.Set("Content-Type", "text/plain")
	w := httptest.NewRecorder()
	query.ServeHTTP(w, r)
	if w.Code != 204 || gotBody != "cpu v=1" {
		t.Errorf("line protocol body: status %d, body %q", w.Code, gotBody)
	}
}
