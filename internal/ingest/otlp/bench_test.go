package otlp

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"testing"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
)

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// logsRequest is n log records as an SDK batches them: one resource, one
// scope, records of about 300 bytes once stored.
func logsRequest(n int) *collogspb.ExportLogsServiceRequest {
	recs := make([]*logspb.LogRecord, n)
	for i := range recs {
		recs[i] = &logspb.LogRecord{
			TimeUnixNano:   1720000000000000000 + uint64(i)*1000,
			SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_INFO, SeverityText: "INFO",
			Body:    &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: fmt.Sprintf("request served in %d ms", i%250)}},
			TraceId: bytes.Repeat([]byte{byte(i) | 1}, 16), SpanId: bytes.Repeat([]byte{byte(i) | 2}, 8),
			Attributes: []*commonpb.KeyValue{str("http.method", "GET"), str("http.route", "/api/v1/orders"),
				{Key: "http.status_code", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 200}}}},
		}
	}
	return &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource:  &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "checkout"), str("host.name", "web-1")}},
		ScopeLogs: []*logspb.ScopeLogs{{Scope: &commonpb.InstrumentationScope{Name: "app"}, LogRecords: recs}},
	}}}
}

// BenchmarkMapLogs is the pure decoder: protobuf to stored JSON bodies.
func BenchmarkMapLogs(b *testing.B) {
	const n = 1000
	data, _ := proto.Marshal(logsRequest(n))
	var m Mapper
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var req collogspb.ExportLogsServiceRequest
		if err := Decode(Protobuf, data, &req); err != nil {
			b.Fatal(err)
		}
		res, err := m.Logs(&req, func(string, *event.Event, []byte) error { return nil })
		if err != nil || res.Accepted != n {
			b.Fatal(res, err)
		}
	}
	b.ReportMetric(float64(b.N)*n/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkIngestLogs measures durable OTLP logs ingest through the
// handler into an embedded, fsyncing log, with producers posting SDK-sized
// batches (512 records) concurrently, as a fleet of services does.
func BenchmarkIngestLogs(b *testing.B) {
	const perRequest = 512
	data, _ := proto.Marshal(logsRequest(perRequest))
	s := testutil.OpenStore(b, store.Options{})
	h := NewHandler(Config{Config: ingest.Config{Log: s}})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequestWithContext(context.Background(), "POST", "/v1/logs", bytes.NewReader(data))
			req.Header.Set("Content-Type", "application/x-protobuf")
			rec := httptest.NewRecorder()
			h.ServeLogs(rec, req)
			if rec.Code != 200 {
				b.Errorf("%d %s", rec.Code, rec.Body)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)*perRequest/b.Elapsed().Seconds(), "events/s")
}
