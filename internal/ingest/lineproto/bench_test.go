package lineproto

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/store"
	tu "github.com/chronostream/chronostream/internal/testutil"
)

// tsbsBatch is a write of TSBS cpu-only: 5,000 lines from 1,000 hosts.
func tsbsBatch(first int) []byte {
	var b bytes.Buffer
	for i := range 5000 {
		b.WriteString(tsbsLine(i%1000, first+i/1000))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func BenchmarkParse(b *testing.B) {
	line := []byte(tsbsLine(42, 1))
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Parse(line, Nanosecond, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExpand(b *testing.B) {
	line := []byte(tsbsLine(42, 1))
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		e := event.Event{Format: event.FormatLine, Body: line}
		if err := Expand(&e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScanParse is the decoder's share of a write: scanning and
// parsing a 5,000-line batch, without the log.
func BenchmarkScanParse(b *testing.B) {
	body := tsbsBatch(0)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		sc := NewScanner(bytes.NewReader(body), DefaultMaxLine)
		for {
			line, _, err := sc.Next()
			if err == io.EOF {
				break
			}
			if _, _, err := Parse(line, Nanosecond, 0); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N)*5000/time.Since(start).Seconds(), "lines/s")
}

// BenchmarkHandler writes TSBS batches of 5,000 lines over HTTP into a
// real (durable, fsyncing) store, with 4 concurrent writers as the
// benchmark of issue 3 does.
func BenchmarkHandler(b *testing.B) {
	for _, writers := range []int{1, 4} {
		b.Run(map[int]string{1: "writers=1", 4: "writers=4"}[writers], func(b *testing.B) {
			s := tu.OpenStore(b, store.Options{})
			h := NewHandler(Config{Config: ingest.Config{Log: s}})
			srv := httptest.NewServer(http.HandlerFunc(h.ServeWriteV1))
			defer srv.Close()
			body := tsbsBatch(0)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.SetParallelism(writers)
			start := time.Now()
			var n int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := http.Post(srv.URL+"/write?db=bench", "text/plain", bytes.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					msg, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusNoContent {
						b.Errorf("%d %s", resp.StatusCode, strings.TrimSpace(string(msg)))
						return
					}
				}
			})
			n = int64(b.N) * 5000
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "lines/s")
		})
	}
}
