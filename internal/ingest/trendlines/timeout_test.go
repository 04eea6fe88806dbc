package trendlines

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/obs"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
)

// TestLogTimeoutIs503: a log timing out is the log unavailable, a
// retryable 503 with Retry-After, not 499 (the client's cancellation,
// which nobody would read) as it once was.
func TestLogTimeoutIs503(t *testing.T) {
	h := NewHandler(Config{Config: ingest.Config{Metrics: obs.New(), Logger: testutil.Logger(t, 0)},
		Store: testutil.TimeoutLog{Store: testutil.OpenStore(t, store.Options{})}, Chronicle: "metrics"})
	mux := http.NewServeMux()
	h.Register(mux, func(h http.Handler) http.Handler { return h })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	code, hdr, body := do(t, "POST", srv.URL+"/api/v1/data", `{"metric":"a.b","value":1}`)
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("POST = %d (Retry-After %q) %s, want 503 with Retry-After", code, hdr.Get("Retry-After"), body)
	}
}
