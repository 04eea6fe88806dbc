package otlp_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

func post(t *testing.T, s *server.Server, path, contentType string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", "http://"+s.Addr()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// A hand-written request in OTLP's JSON encoding: hex ids, lowerCamelCase,
// 64-bit integers as strings, enums as numbers and names, unknown members.
const jsonLogs = `{"resourceLogs":[{"resource":{"attributes":[
  {"key":"service.name","value":{"stringValue":"shop"}},
  {"key":"host.name","value":{"stringValue":"web-2"}}]},
 "scopeLogs":[{"scope":{"name":"hand"},"logRecords":[
  {"timeUnixNano":"1720000000000000001","severityNumber":17,"severityText":"ERROR",
   "body":{"stringValue":"payment failed"},
   "traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"eee19b7ec3c1b174",
   "attributes":[{"key":"amount","value":{"doubleValue":12.5}},{"key":"tries","value":{"intValue":"3"}}],
   "someFutureField":{"x":1}},
  {"observedTimeUnixNano":1720000000000000002,"severityNumber":"SEVERITY_NUMBER_INFO",
   "body":{"kvlistValue":{"values":[{"key":"msg","value":{"stringValue":"ok"}}]}}}
 ]}]}]}`

func TestJSONLogs(t *testing.T) {
	s := servertest.RunServer(t, server.Options{AutoCreate: true})
	resp, body := post(t, s, "/v1/logs", "application/json", []byte(jsonLogs), nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s: %s", resp.Status, body)
	}
	var out collogspb.ExportLogsServiceResponse
	if err := protojson.Unmarshal(body, &out); err != nil || out.PartialSuccess != nil {
		t.Fatalf("response %s: %v", body, err)
	}
	evs := readStory(t, s, "otel", "shop", "tag.host.name=web-2")
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	e := evs[0]
	if e.Time.UnixNano() != 1720000000000000001 || e.Kind != "log" || e.Fields["trace_id"] != "5b8efff798038103d269b633813fc60c" ||
		e.Fields["span_id"] != "eee19b7ec3c1b174" || e.Fields["body"] != "payment failed" || e.Fields["severity_number"] != float64(17) {
		t.Errorf("first: %+v", e)
	}
	if !strings.Contains(string(e.Body), `"attributes":{"amount":12.5,"tries":3}`) {
		t.Errorf("first body: %s", e.Body)
	}
	if e := evs[1]; e.Time.UnixNano() != 1720000000000000002 || !strings.Contains(string(e.Body), `"body":{"msg":"ok"}`) {
		t.Errorf("second (observed time only): %+v %s", e, e.Body)
	}
}

func span(name string, traceID, spanID []byte) *tracepb.Span {
	return &tracepb.Span{TraceId: traceID, SpanId: spanID, Name: name, StartTimeUnixNano: 1720000000000000000, EndTimeUnixNano: 1720000000000001000}
}

func resourceOf(service string) *resourcepb.Resource {
	return &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: service}}}}}
}

// Invalid items are rejected one by one and counted in partial_success;
// the rest of the request is stored.
func TestPartialSuccess(t *testing.T) {
	s := servertest.RunServer(t, server.Options{AutoCreate: true})
	tid := bytes.Repeat([]byte{7}, 16)
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		{Resource: resourceOf("ok"), ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
			span("good", tid, []byte{1, 2, 3, 4, 5, 6, 7, 8}),
			span("short span id", tid, []byte{1, 2, 3}),
			span("zero trace id", make([]byte, 16), []byte{1, 2, 3, 4, 5, 6, 7, 9}),
		}}}},
		{Resource: resourceOf(strings.Repeat("x", 2000)), ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
			span("story name too long", tid, []byte{1, 2, 3, 4, 5, 6, 7, 10}),
		}}}},
		{Resource: &resourcepb.Resource{}, ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
			span("no service", tid, []byte{1, 2, 3, 4, 5, 6, 7, 11}),
		}}}},
	}}
	for _, enc := range []string{"application/x-protobuf", "application/json"} {
		t.Run(enc, func(t *testing.T) {
			var b []byte
			if enc == "application/json" {
				b, _ = protojson.Marshal(req) // base64 ids: rewrite them as OTLP's hex
				b = hexIDs(t, b)
			} else {
				b, _ = proto.Marshal(req)
			}
			resp, body := post(t, s, "/v1/traces", enc, b, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %s", resp.Status, body)
			}
			var out coltracepb.ExportTraceServiceResponse
			if enc == "application/json" {
				if err := protojson.Unmarshal(body, &out); err != nil {
					t.Fatal(err)
				}
			} else if err := proto.Unmarshal(body, &out); err != nil {
				t.Fatal(err)
			}
			ps := out.GetPartialSuccess()
			if ps.GetRejectedSpans() != 3 || !strings.Contains(ps.GetErrorMessage(), "short span id") {
				t.Fatalf("partial success: %v", ps)
			}
		})
	}
	if evs := readStory(t, s, "otel", "ok", ""); len(evs) != 2 {
		t.Errorf("ok: %d events, want 2", len(evs))
	}
	if evs := readStory(t, s, "otel", "unknown_service", ""); len(evs) != 2 {
		t.Errorf("unknown_service: %d events, want 2", len(evs))
	}
}

// hexIDs turns protojson's base64 ids into OTLP/JSON's hex ones.
func hexIDs(t *testing.T, b []byte) []byte {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, mv := range x {
				if s, ok := mv.(string); ok && (k == "traceId" || k == "spanId" || k == "parentSpanId") {
					raw, err := base64Decode(s)
					if err != nil {
						t.Fatal(err)
					}
					x[k] = fmt.Sprintf("%x", raw)
					continue
				}
				walk(mv)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	out, _ := json.Marshal(v)
	return out
}

func TestErrors(t *testing.T) {
	s := servertest.RunServer(t, server.Options{AutoCreate: true, Limits: ingest.Limits{MaxBodyBytes: 64 << 10, MaxEventBytes: 16 << 10}})
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	bomb := gz(make([]byte, 100<<20)) // 100 MiB of zeros in ~100 KiB... and over the limit once inflated
	for _, tc := range []struct {
		name, path, ct string
		body           []byte
		hdr            map[string]string
		status         int
		msg            string
	}{
		{"text/plain", "/v1/logs", "text/plain", []byte("hi"), nil, 415, "content type"},
		{"no content type", "/v1/metrics", "", []byte("hi"), nil, 415, "content type"},
		{"brotli", "/v1/logs", "application/json", []byte("{}"), map[string]string{"Content-Encoding": "br"}, 415, "content encoding"},
		{"bad protobuf", "/v1/traces", "application/x-protobuf", []byte{0xff, 0xff, 0xff}, nil, 400, "invalid OTLP request"},
		{"bad json", "/v1/logs", "application/json", []byte(`{"resourceLogs":[`), nil, 400, "invalid OTLP request"},
		{"wrong json type", "/v1/logs", "application/json", []byte(`{"resourceLogs":{}}`), nil, 400, "invalid OTLP request"},
		{"bad hex id", "/v1/traces", "application/json", []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"eee19b7ec3c1b174"}]}]}]}`), nil, 400, "traceId"},
		{"bad gzip", "/v1/logs", "application/x-protobuf", []byte("not gzip"), map[string]string{"Content-Encoding": "gzip"}, 400, "gzip"},
		{"truncated gzip", "/v1/logs", "application/x-protobuf", gz([]byte("abcdefgh"))[:12], map[string]string{"Content-Encoding": "gzip"}, 400, "gzip"},
		{"too large", "/v1/logs", "application/x-protobuf", make([]byte, 65<<10), nil, 413, "limit"},
		{"gzip bomb", "/v1/logs", "application/x-protobuf", bomb, map[string]string{"Content-Encoding": "gzip"}, 413, "after decompression"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, s, tc.path, tc.ct, tc.body, tc.hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %s, want %d: %s", resp.Status, tc.status, body)
			}
			var st statuspb.Status
			if resp.Header.Get("Content-Type") == "application/json" {
				if err := protojson.Unmarshal(body, &st); err != nil {
					t.Fatalf("body %q: %v", body, err)
				}
			} else if err := proto.Unmarshal(body, &st); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if !strings.Contains(st.Message, tc.msg) {
				t.Errorf("message %q, want it to mention %q", st.Message, tc.msg)
			}
			if resp.Header.Get("Retry-After") != "" {
				t.Errorf("Retry-After on a %d", resp.StatusCode)
			}
		})
	}

	// An item larger than an event may be is rejected alone.
	huge := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspbResourceLogs{{
		ScopeLogs: []*logspbScopeLogs{{LogRecords: []*logspbLogRecord{
			{Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: strings.Repeat("y", 20<<10)}}},
			{Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "small"}}},
		}}},
	}}}
	b, _ := proto.Marshal(huge)
	resp, body := post(t, s, "/v1/logs", "application/x-protobuf", b, nil)
	var out collogspb.ExportLogsServiceResponse
	if err := proto.Unmarshal(body, &out); resp.StatusCode != 200 || err != nil || out.GetPartialSuccess().GetRejectedLogRecords() != 1 {
		t.Fatalf("%s %v %v", resp.Status, err, out.GetPartialSuccess())
	}
}

// A chronicle that does not exist (auto-create off) is not worth retrying;
// only unavailability is, with Retry-After.
func TestStatusRetryable(t *testing.T) {
	s := servertest.RunServer(t, server.Options{})
	b, _ := proto.Marshal(&collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspbResourceLogs{{
		ScopeLogs: []*logspbScopeLogs{{LogRecords: []*logspbLogRecord{{SeverityText: "INFO"}}}}}}})
	resp, body := post(t, s, "/v1/logs", "application/x-protobuf", b, nil)
	if resp.StatusCode != 404 || resp.Header.Get("Retry-After") != "" {
		t.Fatalf("%s %q", resp.Status, body)
	}
	s.Store().Close() // the log goes away
	resp, body = post(t, s, "/v1/logs", "application/x-protobuf", b, nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("%s %q", resp.Status, body)
	}
}

type (
	logspbResourceLogs = logspb.ResourceLogs
	logspbScopeLogs    = logspb.ScopeLogs
	logspbLogRecord    = logspb.LogRecord
)

func base64Decode(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
