package api

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/chronostream/chronostream/event"
)

// countingWriter counts newlines: one per exported event.
type countingWriter struct{ lines int }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.lines += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}

// BenchmarkExportNDJSON exports a story of 200–400 byte JSON log events
// (expanded into tags and fields as every read does) over HTTP.
func BenchmarkExportNDJSON(b *testing.B) {
	const total = 100_000
	e := newEnv(b, Config{})
	evs := make([]event.Event, 1000)
	for i := 0; i < total; i += len(evs) {
		for j := range evs {
			n := i + j
			evs[j] = event.Event{Kind: event.KindLog, Format: event.FormatJSON, Body: fmt.Appendf(nil,
				`{"time":"2024-01-02T03:04:05.%09dZ","level":"info","msg":"request served %d","tags":{"host":"web-%d","region":"eu-west-1"},"method":"GET","path":"/api/v1/items/%d","status":200,"duration_ms":%d.%03d,"bytes":%d,"user_agent":"Mozilla/5.0 (X11; Linux x86_64)"}`,
				n, n, n%16, n, n%500, n%1000, 1000+n%9000)}
		}
		e.append("bench", "logs", evs...)
	}
	url := e.srv.URL + "/api/v1/chronicles/bench/stories/logs/events?format=ndjson"
	var bytesOut int64
	b.ResetTimer()
	for b.Loop() {
		resp, err := e.srv.Client().Get(url)
		if err != nil {
			b.Fatal(err)
		}
		var c countingWriter
		n, err := io.Copy(&c, resp.Body)
		resp.Body.Close()
		if err != nil || c.lines != total {
			b.Fatalf("exported %d lines: %v", c.lines, err)
		}
		bytesOut += n
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.SetBytes(bytesOut / int64(b.N))
}
