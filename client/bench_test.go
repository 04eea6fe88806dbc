package client_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chronostream/chronostream/client"
	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

// BenchmarkClient measures end-to-end throughput to a real server on
// loopback: b.N log events of about 250 bytes, from Send until Close has
// every one acknowledged (durable). Run:
//
//	go test -run '^$' -bench BenchmarkClient -benchtime 200000x ./client/
func BenchmarkClient(b *testing.B) {
	s := servertest.RunServer(b, server.Options{AutoCreate: true})
	for _, tr := range []struct{ name, url string }{{"ws", "ws://" + s.Addr()}, {"http", "http://" + s.Addr()}} {
		b.Run(tr.name, func(b *testing.B) {
			payloads := make([][]byte, 1000)
			for i := range payloads {
				payloads[i] = fmt.Appendf(nil, `{"time":"2024-07-03T15:16:55.563839Z","level":"INFO","msg":"request served","method":"GET","path":"/api/v1/orders/%d","status":200,"duration_ms":12.5,"tags":{"host":"web-1","region":"eu-west"}}`, i)
			}
			c, err := client.New(tr.url, client.Chronicle("bench"), client.Story(tr.name+fmt.Sprint(b.N)), client.BufferSize(50000), client.Batch(5000, 5*time.Millisecond))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.SetBytes(int64(len(payloads[0])))
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				if err := c.Send(ctx, payloads[i%len(payloads)]); err != nil {
					b.Fatal(err)
				}
			}
			if err := c.Close(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}
