package forward

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/obs"
	"github.com/chronostream/chronostream/internal/store"
	tu "github.com/chronostream/chronostream/internal/testutil"
)

// benchChunk is a PackedForward message of n records of about 300 bytes
// (a Fluent Bit tail record: log line plus Kubernetes-ish metadata), with
// the chunk option.
func benchChunk(n int, chunk string) []byte {
	var stream []byte
	for i := range n {
		stream = msgp.AppendArrayHeader(stream, 2)
		stream = append(stream, 0xd7, 0, 0x65, 0x5c, 0xc0, byte(i>>8), 0, 0, byte(i), 0)
		stream = msgp.AppendMapHeader(stream, 4)
		stream = msgp.AppendString(stream, "log")
		stream = msgp.AppendString(stream, fmt.Sprintf("%s 10.0.%d.%d - - \"GET /api/v1/items/%d HTTP/1.1\" 200 %d \"-\" \"curl/8.5.0\"",
			"2024-01-02T03:04:05Z", i%256, i%7, i, 1000+i%5000))
		stream = msgp.AppendString(stream, "stream")
		stream = msgp.AppendString(stream, "stdout")
		stream = msgp.AppendString(stream, "level")
		stream = msgp.AppendString(stream, "info")
		stream = msgp.AppendString(stream, "kubernetes")
		stream = msgp.AppendMapStrStr(stream, map[string]string{"pod_name": "web-7d9f8c6b5-x2x4q", "namespace_name": "default",
			"container_name": "web"})
	}
	b := msgp.AppendArrayHeader(nil, 3)
	b = msgp.AppendString(b, "kube.var.log.containers.web")
	b = msgp.AppendBytes(b, stream)
	b = msgp.AppendMapHeader(b, 2)
	b = msgp.AppendString(b, "chunk")
	b = msgp.AppendString(b, chunk)
	b = msgp.AppendString(b, "size")
	return msgp.AppendInt(b, n)
}

func BenchmarkDecodePacked(b *testing.B) {
	msg := benchChunk(2000, "c")
	d := NewDecoder(Limits{})
	var m Message
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Decode(msg, &m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(2000*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkPackedForwardIngest measures records per second from receipt to
// durable and acknowledged: clients send PackedForward chunks of 2,000
// records with the chunk option and wait for each ack (as Fluent Bit with
// Require_ack_response), into the embedded log with fsync on every write.
// ns/op is per record.
func BenchmarkPackedForwardIngest(b *testing.B) {
	const perChunk = 2000
	for _, conns := range []int{1, 4} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			st := tu.OpenStore(b, store.Options{})
			s, err := New(Config{Config: ingest.Config{Log: st, Metrics: obs.New(), Logger: tu.Logger(b, 0)}})
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Start("127.0.0.1:0"); err != nil {
				b.Fatal(err)
			}
			defer s.Shutdown(context.Background())
			msg := benchChunk(perChunk, "bench-chunk-id")
			chunks := b.N/(perChunk*conns) + 1
			b.SetBytes(int64(len(msg) / perChunk))
			b.ResetTimer()
			var wg sync.WaitGroup
			for range conns {
				wg.Go(func() {
					c, err := net.Dial("tcp", s.Addr())
					if err != nil {
						b.Error(err)
						return
					}
					defer c.Close()
					rd := msgp.NewReader(bufio.NewReader(c))
					for range chunks {
						if _, err := c.Write(msg); err != nil {
							b.Error(err)
							return
						}
						_ = c.SetReadDeadline(time.Now().Add(time.Minute))
						v, err := rd.ReadIntf()
						if m, _ := v.(map[string]any); err != nil || m["ack"] != "bench-chunk-id" {
							b.Errorf("ack: %#v, %v", v, err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			total := float64(chunks * perChunk * conns)
			b.ReportMetric(total/b.Elapsed().Seconds(), "records/s")
		})
	}
}
