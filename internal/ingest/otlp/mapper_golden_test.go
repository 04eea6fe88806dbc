package otlp

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/chronostream/chronostream/event"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestMapperGolden pins the stored bodies byte for byte: one request per
// signal with every member the mapper writes (span events and links,
// exemplars, each kind of metric point), its events one per line in
// testdata/*.golden. Run with -update after a deliberate change.
func TestMapperGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		mapf func(m *Mapper, data []byte, emit Emit) (Result, error)
	}{
		{"traces", func(m *Mapper, data []byte, emit Emit) (Result, error) {
			var req coltracepb.ExportTraceServiceRequest
			if err := Decode(JSON, data, &req); err != nil {
				return Result{}, err
			}
			return m.Traces(&req, emit)
		}},
		{"metrics", func(m *Mapper, data []byte, emit Emit) (Result, error) {
			var req colmetricspb.ExportMetricsServiceRequest
			if err := Decode(JSON, data, &req); err != nil {
				return Result{}, err
			}
			return m.Metrics(&req, emit)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tc.name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			var m Mapper
			res, err := tc.mapf(&m, data, func(story string, e *event.Event, body []byte) error {
				out.WriteString(story + " " + e.Kind.String() + " ")
				out.Write(body)
				out.WriteByte('\n')
				return nil
			})
			if err != nil || res.Rejected != 0 {
				t.Fatalf("result %+v, err %v", res, err)
			}
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != string(want) {
				t.Errorf("mapped bodies differ from %s:\n got %s\nwant %s", golden, got, strings.TrimSpace(string(want)))
			}
		})
	}
}

// BenchmarkMapTraces maps the golden traces request (span events, links)
// again and again: the cost of writing the bodies alone.
func BenchmarkMapTraces(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "traces.json"))
	if err != nil {
		b.Fatal(err)
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := Decode(JSON, data, &req); err != nil {
		b.Fatal(err)
	}
	var m Mapper
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Traces(&req, func(string, *event.Event, []byte) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
