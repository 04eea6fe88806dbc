package otlp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

// otelErrors collects what the SDKs report to OpenTelemetry's global error
// handler (a failed export, a rejected item); tests fail on any.
var otelErrors = struct {
	sync.Mutex
	errs []error
}{}

func init() {
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		otelErrors.Lock()
		otelErrors.errs = append(otelErrors.errs, err)
		otelErrors.Unlock()
	}))
}

func checkOtelErrors(t *testing.T) {
	t.Helper()
	otelErrors.Lock()
	defer otelErrors.Unlock()
	for _, err := range otelErrors.errs {
		t.Errorf("OpenTelemetry SDK error: %v", err)
	}
	otelErrors.errs = nil
}

func testResource(service string) *resource.Resource {
	return resource.NewSchemaless(attribute.String("service.name", service), attribute.String("host.name", "web-1"),
		attribute.Int("pid", 42))
}

type apiEvent struct {
	Seq    uint64            `json:"seq"`
	Time   time.Time         `json:"time"`
	Story  string            `json:"story"`
	Kind   string            `json:"kind"`
	Tags   map[string]string `json:"tags"`
	Fields map[string]any    `json:"fields"`
	Body   json.RawMessage   `json:"body"`
	Source string            `json:"source"`
}

func getJSON(t *testing.T, u string, v any) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
	}
	return resp.StatusCode
}

func readStory(t *testing.T, s *server.Server, chronicle, story, query string) []apiEvent {
	t.Helper()
	var page struct{ Events []apiEvent }
	u := fmt.Sprintf("http://%s/api/v1/chronicles/%s/stories/%s/events?%s", s.Addr(), chronicle, url.PathEscape(story), query)
	if code := getJSON(t, u, &page); code != http.StatusOK {
		t.Fatalf("GET %s: %d", u, code)
	}
	return page.Events
}

type traceNode struct {
	apiEvent
	Depth         int    `json:"depth"`
	SpanID        string `json:"span_id"`
	ParentSpanID  string `json:"parent_span_id"`
	MissingParent bool   `json:"missing_parent"`
	Duplicate     bool   `json:"duplicate"`
}

type traceDoc struct {
	TraceID   string      `json:"trace_id"`
	Truncated bool        `json:"truncated"`
	Spans     []traceNode `json:"spans"`
}

// TestSDKTraceTree sends a nested trace through the OpenTelemetry SDK's
// OTLP/HTTP exporter (protobuf, gzip) from two services and reads it back
// as a tree through the trace API.
func TestSDKTraceTree(t *testing.T) {
	s := servertest.RunServer(t, server.Options{AutoCreate: true})
	ctx := context.Background()
	newTP := func(service string, compress bool) *sdktrace.TracerProvider {
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(s.Addr()), otlptracehttp.WithInsecure()}
		if compress {
			opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(testResource(service)))
	}
	front, back := newTP("frontend", true), newTP("backend", false)
	tr, btr := front.Tracer("test"), back.Tracer("test")

	// root ─┬─ auth
	//       └─ checkout (backend, server) ─┬─ db query
	//                                       └─ charge (with an event and a link)
	rootCtx, root := tr.Start(ctx, "GET /checkout", trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attribute.String("http.route", "/checkout")))
	_, auth := tr.Start(rootCtx, "auth")
	time.Sleep(time.Millisecond)
	auth.End()
	coCtx, co := btr.Start(rootCtx, "checkout", trace.WithSpanKind(trace.SpanKindServer))
	_, db := btr.Start(coCtx, "db query", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attribute.Int("db.rows", 3)))
	db.End()
	time.Sleep(time.Millisecond)
	linked := trace.SpanContextConfig{TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}}
	_, charge := btr.Start(coCtx, "charge", trace.WithLinks(trace.Link{SpanContext: trace.NewSpanContext(linked)}))
	charge.AddEvent("card declined", trace.WithAttributes(attribute.String("reason", "insufficient funds")))
	charge.SetStatus(codes.Error, "declined")
	charge.End()
	co.End()
	root.End()
	for _, tp := range []*sdktrace.TracerProvider{front, back} {
		if err := tp.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	checkOtelErrors(t)

	traceID := root.SpanContext().TraceID().String()
	var doc traceDoc
	u := fmt.Sprintf("http://%s/api/v1/chronicles/otel/traces/%s", s.Addr(), traceID)
	if code := getJSON(t, u, &doc); code != http.StatusOK {
		t.Fatalf("GET %s: %d", u, code)
	}
	var got []string
	for _, n := range doc.Spans {
		got = append(got, fmt.Sprintf("%d %s", n.Depth, n.Fields["name"]))
		if n.Kind != "trace" || n.Fields["trace_id"] != traceID || n.MissingParent || n.Duplicate {
			t.Errorf("span %+v", n)
		}
	}
	want := []string{"0 GET /checkout", "1 auth", "1 checkout", "2 db query", "2 charge"}
	if !slices.Equal(got, want) {
		t.Fatalf("tree:\n got %q\nwant %q", got, want)
	}
	byName := map[string]traceNode{}
	for _, n := range doc.Spans {
		byName[n.Fields["name"].(string)] = n
	}
	if r := byName["GET /checkout"]; r.Story != "frontend" || r.Fields["span_kind"] != "server" || r.ParentSpanID != "" ||
		r.Tags["service.name"] != "frontend" || r.Tags["host.name"] != "web-1" || r.Tags["pid"] != "42" {
		t.Errorf("root: %+v", r)
	}
	if r := byName["GET /checkout"]; r.Time.UnixNano() != int64(r.Fields["start_time_unix_nano"].(float64)) &&
		r.Time.Sub(time.Unix(0, int64(r.Fields["start_time_unix_nano"].(float64)))).Abs() > time.Microsecond {
		t.Errorf("root: event time %v is not its start", r.Time)
	}
	if c := byName["checkout"]; c.Story != "backend" || c.ParentSpanID != root.SpanContext().SpanID().String() {
		t.Errorf("checkout: %+v", c)
	}
	var body struct {
		DurationNS int64 `json:"duration_ns"`
		Events     []struct {
			Name       string         `json:"name"`
			Attributes map[string]any `json:"attributes"`
		} `json:"events"`
		Links []struct {
			TraceID string `json:"trace_id"`
			SpanID  string `json:"span_id"`
		} `json:"links"`
		StatusCode    string         `json:"status_code"`
		StatusMessage string         `json:"status_message"`
		Resource      map[string]any `json:"resource"`
		Scope         struct{ Name string }
	}
	ch := byName["charge"]
	if err := json.Unmarshal(ch.Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.StatusCode != "error" || body.StatusMessage != "declined" || len(body.Events) != 1 || body.Events[0].Name != "card declined" ||
		body.Events[0].Attributes["reason"] != "insufficient funds" || len(body.Links) != 1 ||
		body.Links[0].TraceID != "01020300000000000000000000000000" || body.Links[0].SpanID != "0405060000000000" ||
		body.Resource["service.name"] != "backend" || body.Resource["pid"] != float64(42) || body.Scope.Name != "test" || body.DurationNS <= 0 {
		t.Errorf("charge body: %s", ch.Body)
	}
	if ch.Fields["status_code"] != "error" || ch.Fields["parent_span_id"] != byName["checkout"].SpanID {
		t.Errorf("charge fields: %v", ch.Fields)
	}

	// The spans are filterable like any events.
	evs := readStory(t, s, "otel", "backend", "kind=trace&field.name=db%20query&tag.host.name=web-1")
	if len(evs) != 1 || evs[0].Fields["db.rows"] != nil {
		t.Fatalf("filtered: %+v", evs)
	}

	// Unknown and malformed trace ids.
	if code := getJSON(t, fmt.Sprintf("http://%s/api/v1/chronicles/otel/traces/%032x", s.Addr(), 7), &doc); code != http.StatusNotFound {
		t.Errorf("unknown trace: %d", code)
	}
	if code := getJSON(t, fmt.Sprintf("http://%s/api/v1/chronicles/otel/traces/xyz", s.Addr()), &doc); code != http.StatusBadRequest {
		t.Errorf("bad trace id: %d", code)
	}
}

// TestSDKMetrics exports every kind of instrument through the SDK's
// OTLP/HTTP metric exporter (protobuf, with and without gzip).
func TestSDKMetrics(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			s := servertest.RunServer(t, server.Options{AutoCreate: true})
			ctx := context.Background()
			opts := []otlpmetrichttp.Option{otlpmetrichttp.WithEndpoint(s.Addr()), otlpmetrichttp.WithInsecure()}
			if gz {
				opts = append(opts, otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression))
			}
			exp, err := otlpmetrichttp.New(ctx, opts...)
			if err != nil {
				t.Fatal(err)
			}
			expView := sdkmetric.NewView(sdkmetric.Instrument{Name: "latency.exp"},
				sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}})
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(testResource("billing")),
				sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))), sdkmetric.WithView(expView))
			m := mp.Meter("test")
			requests, _ := m.Int64Counter("requests", metric.WithUnit("{request}"), metric.WithDescription("requests served"))
			requests.Add(ctx, 5, metric.WithAttributes(attribute.String("route", "/a")))
			inflight, _ := m.Int64UpDownCounter("inflight")
			inflight.Add(ctx, -2)
			temp, _ := m.Float64Gauge("temperature")
			temp.Record(ctx, 21.5)
			lat, _ := m.Float64Histogram("latency", metric.WithExplicitBucketBoundaries(1, 10, 100))
			for _, v := range []float64{0.5, 5, 50, 500} {
				lat.Record(ctx, v)
			}
			exph, _ := m.Float64Histogram("latency.exp")
			exph.Record(ctx, 3)
			exph.Record(ctx, 30)
			// Shutdown collects and exports once.
			if err := mp.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			checkOtelErrors(t)

			evs := readStory(t, s, "otel", "billing", "kind=metric")
			byName := map[string]apiEvent{}
			for _, e := range evs {
				byName[e.Fields["name"].(string)] = e
			}
			if len(evs) != 5 {
				t.Fatalf("%d events, want 5", len(evs))
			}
			check := func(name string, want map[string]any) {
				t.Helper()
				e, ok := byName[name]
				if !ok {
					t.Fatalf("no %s", name)
				}
				var body map[string]any
				if err := json.Unmarshal(e.Body, &body); err != nil {
					t.Fatal(err)
				}
				for k, v := range want {
					if got, _ := json.Marshal(body[k]); string(got) != fmt.Sprint(v) {
						t.Errorf("%s: %s = %s, want %v (body %s)", name, k, got, v, e.Body)
					}
				}
				if e.Tags["service.name"] != "billing" || e.Time.IsZero() || e.Time.Year() < 2020 {
					t.Errorf("%s: %+v", name, e)
				}
			}
			check("requests", map[string]any{"metric_type": `"sum"`, "value": 5, "is_monotonic": true,
				"aggregation_temporality": `"cumulative"`, "unit": `"{request}"`, "attributes": `{"route":"/a"}`})
			check("inflight", map[string]any{"metric_type": `"sum"`, "value": -2, "is_monotonic": false})
			check("temperature", map[string]any{"metric_type": `"gauge"`, "value": 21.5})
			check("latency", map[string]any{"metric_type": `"histogram"`, "count": 4, "sum": 555.5, "min": 0.5, "max": 500,
				"bucket_counts": "[1,1,1,1]", "explicit_bounds": "[1,10,100]"})
			check("latency.exp", map[string]any{"metric_type": `"exponential_histogram"`, "count": 2, "sum": 33, "zero_count": 0})
			if v := byName["temperature"].Fields["value"]; v != 21.5 {
				t.Errorf("temperature field value = %v", v)
			}
		})
	}
}

// TestSDKLogs sends log records through the SDK's OTLP/HTTP log exporter.
func TestSDKLogs(t *testing.T) {
	s := servertest.RunServer(t, server.Options{AutoCreate: true, OTLPChronicle: "telemetry"})
	ctx := context.Background()
	exp, err := otlploghttp.New(ctx, otlploghttp.WithEndpoint(s.Addr()), otlploghttp.WithInsecure(),
		otlploghttp.WithCompression(otlploghttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(testResource("api")), sdklog.WithProcessor(sdklog.NewBatchProcessor(exp)))
	logger := lp.Logger("applog", otellog.WithInstrumentationVersion("1.2.3"))
	t0 := time.Date(2024, 7, 3, 12, 0, 0, 123, time.UTC)
	for i := range 3 {
		var rec otellog.Record
		rec.SetTimestamp(t0.Add(time.Duration(i) * time.Second))
		rec.SetSeverity(otellog.SeverityWarn)
		rec.SetSeverityText("WARN")
		rec.SetBody(attribute.StringValue(fmt.Sprintf("disk %d%% full", 90+i)))
		rec.AddAttributes(attribute.String("disk", "/dev/sda"), attribute.Int("n", i),
			attribute.Map("nested", attribute.Bool("ok", true), attribute.ByteSlice("raw", []byte{0xff, 0})))
		logger.Emit(ctx, rec)
	}
	if err := lp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	checkOtelErrors(t)
	evs := readStory(t, s, "telemetry", "api", "")
	if len(evs) != 3 {
		t.Fatalf("%d events", len(evs))
	}
	for i, e := range evs {
		if e.Kind != "log" || !e.Time.Equal(t0.Add(time.Duration(i)*time.Second)) || e.Fields["body"] != fmt.Sprintf("disk %d%% full", 90+i) ||
			e.Fields["severity_text"] != "WARN" || e.Fields["severity_number"] != float64(otellog.SeverityWarn) || e.Tags["service.name"] != "api" {
			t.Errorf("event %d: %+v", i, e)
		}
		var body struct {
			Attributes map[string]any
			Scope      struct{ Name, Version string }
		}
		if err := json.Unmarshal(e.Body, &body); err != nil {
			t.Fatal(err)
		}
		if body.Scope.Name != "applog" || body.Scope.Version != "1.2.3" || body.Attributes["disk"] != "/dev/sda" ||
			fmt.Sprint(body.Attributes["nested"]) != "map[ok:true raw:/wA=]" {
			t.Errorf("body %d: %s", i, e.Body)
		}
	}
	// The requests are counted in the client's source, soon after.
	var src struct {
		Protocol string `json:"protocol"`
		Count    int    `json:"count"`
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		code := getJSON(t, fmt.Sprintf("http://%s/api/v1/sources/%s", s.Addr(), evs[0].Source), &src)
		return code == http.StatusOK && src.Count == 3
	}, "the client's count")
	if src.Protocol != "otlp-http" {
		t.Errorf("source: %+v", src)
	}
}
