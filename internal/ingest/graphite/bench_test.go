package graphite

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct{ name, line string }{
		{"plain", "servers.web01.cpu.load.shortterm 0.52 1700000000"},
		{"fractional", "servers.web01.cpu.load.shortterm 0.52 1700000000.123456"},
		{"tagged", "cpu.load;host=web01;dc=eu-west-1;role=frontend 0.52 1700000000"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			line := []byte(bc.line)
			var s Sample
			b.SetBytes(int64(len(line) + 1))
			b.ReportAllocs()
			for b.Loop() {
				if err := Parse(line, &s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLines decodes a datagram-sized buffer of lines.
func BenchmarkLines(b *testing.B) {
	var buf []byte
	for i := range 500 {
		buf = fmt.Appendf(buf, "servers.web%02d.cpu.load %d.5 17000000%02d\n", i%100, i, i%100)
	}
	var s Sample
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		Lines(buf, func(l []byte) {
			if err := Parse(l, &s); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkTCPIngest measures lines per second from receipt to durable,
// through one or several TCP connections into the embedded log, with 100
// metric names per connection (collectd-like). ns/op is per line.
func BenchmarkTCPIngest(b *testing.B) {
	for _, conns := range []int{1, 4} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			f := newFixture(b, Config{})
			per := b.N/conns + 1
			b.ResetTimer()
			var wg sync.WaitGroup
			for c := range conns {
				wg.Go(func() {
					conn, err := net.Dial("tcp", f.srv.TCPAddr())
					if err != nil {
						b.Error(err)
						return
					}
					defer conn.Close()
					w := bufio.NewWriterSize(conn, 64<<10)
					for i := range per {
						fmt.Fprintf(w, "bench.c%d.host%02d.cpu.load %d.5 %d\n", c, i%100, i, 1700000000+i/100)
					}
					if err := w.Flush(); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
			want := float64(per * conns)
			for {
				var m dto.Metric
				_ = f.metrics.IngestEvents.WithLabelValues(MetricProtocol).Write(&m)
				if m.GetCounter().GetValue() >= want {
					break
				}
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			b.ReportMetric(want/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
