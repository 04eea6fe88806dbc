package webhook_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chronostream/chronostream/internal/sink/webhook"
)

// BenchmarkDeliver: batches of 1,000 log events (~150-byte bodies, expanded
// as the runner passes them) POSTed to a loopback receiver that reads the
// whole body. Reports events/s; the receiver's own cost is included.
func BenchmarkDeliver(b *testing.B) {
	for _, gz := range []bool{false, true} {
		name := "plain"
		if gz {
			name = "gzip"
		}
		b.Run(name, func(b *testing.B) {
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
			}))
			defer hs.Close()
			s := newSink(b, map[string]any{"url": hs.URL, "secret": "k", "gzip": gz})
			bt := batch(1, 1000)
			b.SetBytes(int64(len(webhook.Body(bt))))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := s.Deliver(b.Context(), bt); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(bt.Events))/b.Elapsed().Seconds(), "events/s")
		})
	}
}
