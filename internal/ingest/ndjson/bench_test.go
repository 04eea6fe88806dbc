package ndjson

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chronostream/chronostream/internal/ingest"
)

// logEvents returns n realistic JSON log events of 200–400 bytes, one per line.
func logEvents(n int) []byte {
	levels := []string{"INFO", "WARN", "ERROR", "DEBUG"}
	paths := []string{"/api/v1/orders", "/api/v1/users/12345/profile", "/healthz", "/static/app.8f3a1c.js", "/api/v1/search?q=telemetry+hub"}
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"time":"2024-07-03T15:16:%02d.%06d+10:00","level":%q,"msg":"request served","service":"checkout","host":"web-%02d.eu-west-1.internal","method":"GET","path":%q,"status":%d,"duration_ms":%d.%03d,"bytes":%d,"trace_id":"%032x","user_agent":"Mozilla/5.0 (X11; Linux x86_64)","tags":{"env":"prod","region":"eu-west-1"}}`,
			i%60, i%1000000, levels[i%len(levels)], i%16, paths[i%len(paths)], 200+(i%5)*100, i%250, i%1000, 512+i%40000, uint64(i)*0x9e3779b97f4a7c15)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func BenchmarkDecoder(b *testing.B) {
	data := logEvents(10000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	r := bytes.NewReader(data)
	for b.Loop() {
		r.Reset(data)
		d := NewDecoder(r, Options{})
		n := 0
		for {
			_, err := d.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 10000 {
			b.Fatalf("decoded %d values", n)
		}
	}
	b.ReportMetric(float64(b.N)*10000/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkIngest measures durable ingest through the handler into an
// embedded, fsyncing log: each request is acknowledged only once stored.
func BenchmarkIngest(b *testing.B) {
	const perRequest = 50000
	data := logEvents(perRequest)
	f := newFixture(b, ingest.Limits{}, true)
	h := http.Header{}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequestWithContext(context.Background(), "POST", "/", bytes.NewReader(data))
		req.Header = h
		rec := httptest.NewRecorder()
		f.handler.ServeRoot(rec, req)
		if rec.Code != 200 || rec.Body.String() != fmt.Sprintf("%d\n", perRequest) {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(b.N)*perRequest/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkIngestConcurrent has four producers post to one story at once,
// as many anacrolix clients do: their batches share the log's group commits.
func BenchmarkIngestConcurrent(b *testing.B) {
	const perRequest = 10000
	data := logEvents(perRequest)
	f := newFixture(b, ingest.Limits{}, true)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.SetParallelism(2) // with GOMAXPROCS=2: four producers
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequestWithContext(context.Background(), "POST", "/", bytes.NewReader(data))
			rec := httptest.NewRecorder()
			f.handler.ServeRoot(rec, req)
			if rec.Code != 200 {
				b.Errorf("%d %s", rec.Code, rec.Body)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)*perRequest/b.Elapsed().Seconds(), "events/s")
}
