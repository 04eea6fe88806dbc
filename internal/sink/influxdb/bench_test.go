package influxdb

import (
	"fmt"
	"testing"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest/lineproto"
	"github.com/chronostream/chronostream/internal/sink"
)

// BenchmarkEncode measures the line-protocol rendering of a 5,000-event
// batch of TSBS-like points (expanded from stored lines, as the runner
// hands them over), the sink's CPU cost per event before the request.
func BenchmarkEncode(b *testing.B) {
	evs := make([]event.Event, 5000)
	for i := range evs {
		evs[i] = event.Event{Seq: uint64(100001 + i), Story: "cpu", Time: int64(1_700_000_000_000_000_000 + i), Format: event.FormatLine,
			Body: fmt.Appendf(nil, "cpu,hostname=host_%d,region=eu-west-1,datacenter=eu-west-1a,rack=%d usage_user=%d.5,usage_system=%d.25,usage_idle=%di", i%1000, i%100, i%97, i%89, i%83)}
		if err := lineproto.Expand(&evs[i]); err != nil {
			b.Fatal(err)
		}
	}
	s, err := NewSink(Config{URL: "http://127.0.0.1:1/write?db=x"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range evs {
			evs[j].Seq += uint64(len(evs)) // new events, as the runner sends them
		}
		body, err := s.encode(sink.Batch{Chronicle: "c", Events: evs})
		if err != nil || len(body) == 0 {
			b.Fatal(err)
		}
		if _, err := s.compress(body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
}
