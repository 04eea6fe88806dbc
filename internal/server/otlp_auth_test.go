package server_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

// TestOTLPExporterTokens drives OpenTelemetry's own OTLP/HTTP trace
// exporter with scoped tokens in its headers: a token of another chronicle
// is refused (the exporter reports the 403, which it does not retry), the
// right one stores the spans, and over the token's rate the exporter
// takes the 429 as retryable, waits out Retry-After and gets them stored.
func TestOTLPExporterTokens(t *testing.T) {
	const admin = "otlp-admin"
	s := servertest.RunServer(t, server.Options{Tokens: []string{admin}, AutoCreate: true, OTLPChronicle: "app"})
	c := scopeClient{t, "http://" + s.Addr()}
	mk := func(name string, l auth.Limits, chronicles ...string) string {
		body, _ := json.Marshal(auth.Request{Name: name, Scopes: auth.ScopeWrite, Chronicles: chronicles, Limits: l})
		code, out := c.do("POST", "/api/v1/tokens", admin, body, nil)
		var r struct{ Secret string }
		if code != 201 || json.Unmarshal([]byte(out), &r) != nil {
			t.Fatalf("create %s: %d %s", name, code, out)
		}
		return r.Secret
	}
	spans := func(n int) tracetest.SpanStubs {
		res := resource.NewSchemaless(semconv.ServiceName("checkout"))
		out := make(tracetest.SpanStubs, n)
		for i := range out {
			out[i] = tracetest.SpanStub{Name: "op", Resource: res, StartTime: time.Unix(1, 0), EndTime: time.Unix(2, 0),
				SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{byte(i + 1)}})}
		}
		return out
	}
	export := func(token string, n int, retry bool) error {
		exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpoint(s.Addr()), otlptracehttp.WithInsecure(),
			otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer " + token}),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: retry, InitialInterval: 50 * time.Millisecond,
				MaxInterval: time.Second, MaxElapsedTime: 30 * time.Second}))
		if err != nil {
			t.Fatal(err)
		}
		defer exp.Shutdown(context.Background())
		return exp.ExportSpans(context.Background(), spans(n).Snapshots())
	}
	if err := export(mk("other", auth.Limits{}, "other"), 1, true); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("a token of another chronicle: %v, want a 403", err)
	}
	if err := export(mk("app", auth.Limits{}, "app"), 2, false); err != nil {
		t.Fatalf("the right token: %v", err)
	}
	slow := mk("slow", auth.Limits{EventsPerSecond: 10}, "app")
	if err := export(slow, 20, false); err != nil {
		t.Fatalf("first batch at the rate: %v", err)
	}
	if err := export(slow, 1, false); err == nil || !strings.Contains(err.Error(), "retry-able") {
		t.Errorf("over the rate without retries: %v, want a retryable failure (429)", err)
	}
	if err := export(slow, 3, true); err != nil {
		t.Fatalf("over the rate with the exporter's retries: %v", err)
	}
	if n := countStory(t, s, "app", "checkout"); n != 25 {
		t.Errorf("stored %d spans, want 25 (2 + 20 + 3)", n)
	}
}
