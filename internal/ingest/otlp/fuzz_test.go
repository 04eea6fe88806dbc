package otlp

import (
	"encoding/json"
	"testing"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/chronostream/chronostream/event"
)

// FuzzDecode feeds arbitrary bodies, as protobuf and as JSON, to the
// decoder and mapper of every signal: neither may panic, and every body
// stored must be valid JSON.
func FuzzDecode(f *testing.F) {
	pb, _ := proto.Marshal(logsRequest(3))
	f.Add(pb, false)
	f.Add([]byte(`{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"a"}}]},"scopeLogs":[{"logRecords":[{"timeUnixNano":"1","body":{"arrayValue":{"values":[{"bytesValue":"AAE="},{"doubleValue":"NaN"}]}},"traceId":"5b8efff798038103d269b633813fc60c"}]}]}]}`), true)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","parentSpanId":"","name":"x","kind":2,"links":[{"traceId":"00","spanId":"ab"}],"status":{"code":"STATUS_CODE_ERROR"}}]}]}]}`), true)
	f.Add([]byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"h","histogram":{"dataPoints":[{"count":"2","bucketCounts":["1","1"],"explicitBounds":[1.5],"exemplars":[{"asInt":"3","spanId":"eee19b7ec3c1b174"}]}]}},{"name":"e","exponentialHistogram":{"dataPoints":[{"positive":{"offset":-2,"bucketCounts":["1"]}}]}},{"name":"s","summary":{"dataPoints":[{"quantileValues":[{"quantile":0.5,"value":"Infinity"}]}]}},{"name":"g","gauge":{"dataPoints":[{"asDouble":1}]}}]}]}]}`), true)
	f.Add([]byte{0x0a, 0x80, 0x01}, false)
	f.Fuzz(func(t *testing.T, body []byte, isJSON bool) {
		enc := Protobuf
		if isJSON {
			enc = JSON
		}
		m := Mapper{MaxBodyBytes: 1 << 20}
		emit := func(story string, e *event.Event, b []byte) error {
			if !json.Valid(b) {
				t.Fatalf("stored body is not JSON: %q", b)
			}
			if err := event.ValidateStory(story); err != nil {
				t.Fatalf("story %q: %v", story, err)
			}
			return nil
		}
		var lr collogspb.ExportLogsServiceRequest
		if Decode(enc, body, &lr) == nil {
			_, _ = m.Logs(&lr, emit)
		}
		var mr colmetricspb.ExportMetricsServiceRequest
		if Decode(enc, body, &mr) == nil {
			_, _ = m.Metrics(&mr, emit)
		}
		var tr coltracepb.ExportTraceServiceRequest
		if Decode(enc, body, &tr) == nil {
			_, _ = m.Traces(&tr, emit)
		}
	})
}
