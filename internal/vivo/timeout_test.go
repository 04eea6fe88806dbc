package vivo

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
)

// TestInputLogTimeoutIs503: Fluent Bit drops a chunk answered with a 4xx
// and retries a 5xx; a log timeout must be the latter.
func TestInputLogTimeoutIs503(t *testing.T) {
	h, err := New(Config{Config: ingest.Config{Log: testutil.TimeoutLog{Store: testutil.OpenStore(t, store.Options{})}}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.RegisterInput(mux, "", func(h http.Handler) http.Handler { return h })
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("POST", "/input/app", strings.NewReader(`{"msg":"hi"}`)))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("POST = %d %q, want 503", rec.Code, rec.Body)
	}
}
