package auth

import (
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkGuard is what the guard adds to each request: hashing the
// presented token, finding it, checking scope and chronicle.
func BenchmarkGuard(b *testing.B) {
	t := New([]string{"config-token"})
	s := &Store{byHash: map[string]*stored{}, byName: map[string]*stored{}}
	s.remember(Token{Name: "ci", Scopes: ScopeWrite, Chronicles: []string{"app"}, Hash: hashOf("scoped-token")})
	s.byName["ci"].touched.Store(math.MaxInt64) // no KV here to record last use in
	t.UseStore(s)
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	h := t.Guard(Route{})(ok)
	for _, tok := range []string{"config-token", "scoped-token"} {
		b.Run(tok, func(b *testing.B) {
			r := httptest.NewRequest("POST", "/write?db=app", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
			if w.Code != 200 {
				b.Fatalf("status %d", w.Code)
			}
		})
	}
	// The UI's reads: a session id resolved to its token.
	s.sessions = map[string]sessionRecord{hashOf("css_session"): {Token: hashOf("scoped-token"), Expires: time.Now().Add(time.Hour)}}
	s.byName["ci"].Scopes |= ScopeRead
	b.Run("session-cookie", func(b *testing.B) {
		r := httptest.NewRequest("GET", "/api/v1/chronicles/app/events", nil)
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: "css_session"})
		w := httptest.NewRecorder()
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(w, r)
		}
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	})
}
