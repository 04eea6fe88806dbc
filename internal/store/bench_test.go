package store

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/chronostream/chronostream/event"
)

// benchEvents returns n JSON log events of about 300 bytes.
func benchEvents(n int) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{Kind: event.KindLog, Format: event.FormatJSON, Source: "bench-source-0001",
			Body: fmt.Appendf(nil, `{"time":"2026-11-22T10:00:00.%09dZ","level":"INFO","msg":"request served","service":"checkout","method":"GET","path":"/api/v1/orders/%d","status":200,"duration_ms":%d.5,"bytes":%d,"user_agent":"Mozilla/5.0 (X11; Linux x86_64)","trace_id":"4bf92f3577b34da6a3ce929d0e0e%04d"}`, i, i, i%300, i*7, i%10000)}
	}
	return evs
}

// BenchmarkAppendDurable measures group-committed, fsynced appends: several
// producers each appending batches to their own story, as concurrent NDJSON
// requests do. Reported: events/s acknowledged durable.
func BenchmarkAppendDurable(b *testing.B) {
	for _, tc := range []struct{ producers, batch int }{{1, 1000}, {4, 1000}, {16, 100}, {64, 10}} {
		b.Run(fmt.Sprintf("producers=%d/batch=%d", tc.producers, tc.batch), func(b *testing.B) {
			s := openStore(b, Options{})
			evs := benchEvents(tc.batch)
			b.SetBytes(int64(len(evs[0].Body) * tc.batch))
			b.ResetTimer()
			var wg sync.WaitGroup
			var mu sync.Mutex
			next := 0
			for p := 0; p < tc.producers; p++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					story := fmt.Sprintf("s%d", p%4)
					batch := make([]event.Event, len(evs))
					for {
						mu.Lock()
						if next >= b.N {
							mu.Unlock()
							return
						}
						next++
						mu.Unlock()
						copy(batch, evs)
						if _, err := s.Append("bench", story, batch).Wait(context.Background()); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N*tc.batch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
