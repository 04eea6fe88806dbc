package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/sink"
)

// fakeSinks is a SinkControl of fixed sinks (the sink manager has its own
// tests; here only what the API shows whom matters).
type fakeSinks []sink.Status

func (f fakeSinks) List(context.Context) []sink.Status { return append([]sink.Status(nil), f...) }
func (f fakeSinks) Status(_ context.Context, name string) (sink.Status, error) {
	for _, s := range f {
		if s.Name == name {
			return s, nil
		}
	}
	return sink.Status{}, sink.ErrUnknownSink
}
func (f fakeSinks) Cursor(ctx context.Context, name string) (sink.Cursor, error) {
	st, err := f.Status(ctx, name)
	return sink.Cursor{Seq: st.Cursor, Chronicle: st.Chronicle}, err
}
func (f fakeSinks) SetPaused(context.Context, string, bool) (sink.Cursor, error) {
	return sink.Cursor{}, nil
}
func (f fakeSinks) SetCursor(context.Context, string, string, string) (sink.Cursor, error) {
	return sink.Cursor{}, nil
}

// TestSinksShownByChronicle: a token limited to chronicles lists only their
// sinks and is refused the status and cursor of the others.
func TestSinksShownByChronicle(t *testing.T) {
	a := New(Config{})
	mux := http.NewServeMux()
	as := func(p *auth.Principal) func(http.Handler) http.Handler {
		return func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
			})
		}
	}
	a.RegisterSinks(mux, as(&auth.Principal{Name: "r-app", Scopes: auth.ScopeRead, Chronicles: []string{"app"}}),
		fakeSinks{{Name: "mine", Chronicle: "app"}, {Name: "theirs", Chronicle: "other"}})
	get := func(path string) (int, string) {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		return w.Code, w.Body.String()
	}
	code, body := get("/api/v1/sinks")
	var list struct{ Sinks []sink.Status }
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil || len(list.Sinks) != 1 || list.Sinks[0].Name != "mine" {
		t.Errorf("list: %d %s", code, body)
	}
	for path, want := range map[string]int{
		"/api/v1/sinks/mine": 200, "/api/v1/sinks/mine/cursor": 200,
		"/api/v1/sinks/theirs": 403, "/api/v1/sinks/theirs/cursor": 403,
	} {
		if code, body := get(path); code != want {
			t.Errorf("%s: %d %s, want %d", path, code, body, want)
		}
	}
}
