package tsdb

import (
	"context"
	"fmt"
	"testing"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
)

// BenchmarkRebuild measures what a restart costs: a new index reading a
// chronicle of 100 hosts × 10 fields × 2,000 times (2 million points)
// from the log until Sync answers. Reported as points/s.
func BenchmarkRebuild(b *testing.B) {
	s := testutil.OpenStore(b, store.Options{})
	const hosts, fields, times = 100, 10, 2000
	for t := range times / 100 {
		evs := make([]event.Event, 0, hosts*100)
		for i := range 100 {
			for h := range hosts {
				f := make(map[string]event.Value, fields)
				for k := range fields {
					f[fmt.Sprintf("usage_%d", k)] = event.Float(float64(h*k + i))
				}
				evs = append(evs, event.Event{Time: int64(t*100+i+1) * 1e10, Tags: map[string]string{"hostname": fmt.Sprintf("host_%d", h), "region": "r1"}, Fields: f})
			}
		}
		if _, err := s.Append("big", "cpu", evs).Wait(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		ix := New(Options{Log: s})
		ix.Start(context.Background())
		db, err := ix.Sync(context.Background(), "big")
		if err != nil {
			b.Fatal(err)
		}
		db.RLock()
		n := db.Points()
		db.RUnlock()
		ix.Close()
		if n != hosts*fields*times {
			b.Fatalf("%d points, want %d", n, hosts*fields*times)
		}
	}
	b.ReportMetric(float64(hosts*fields*times)*float64(b.N)/b.Elapsed().Seconds(), "points/s")
}
