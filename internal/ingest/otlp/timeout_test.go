package otlp_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/ingest/otlp"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
)

// TestLogTimeoutIs503: a log that times out is the log unavailable — 503
// with Retry-After and a Status body, which OTLP exporters retry — not an
// empty 200 (which net/http sends when the handler writes nothing, and the
// SDK takes as success, dropping the batch).
func TestLogTimeoutIs503(t *testing.T) {
	h := otlp.NewHandler(otlp.Config{Config: ingest.Config{Log: testutil.TimeoutLog{Store: testutil.OpenStore(t, store.Options{})}}})
	req := httptest.NewRequest("POST", "/v1/logs", strings.NewReader(jsonLogs))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeLogs(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || rec.Body.Len() == 0 {
		t.Fatalf("POST = %d (Retry-After %q) %q, want 503 with Retry-After and a Status body", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}

	// A client that went away is not answered (499 in logs and metrics).
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if f := ingest.ClassifyStoreError(ctx, fmt.Errorf("x: %w", context.Canceled)); f.Status != ingest.StatusClientClosed {
		t.Errorf("client gone: %+v, want 499", f)
	}
}
