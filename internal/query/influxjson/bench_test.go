package influxjson_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chronostream/chronostream/internal/query/influxjson"
)

// discard is a ResponseWriter that counts bytes, so the benchmark measures
// the encoding, not a buffer's growth.
type discard struct {
	h http.Header
	n int64
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Write(b []byte) (int, error) { d.n += int64(len(b)); return len(b), nil }
func (d *discard) Flush()                      {}

var _ io.Writer = (*discard)(nil)

// benchResult is 10 series of 1,000 rows (time and three fields: float,
// integer, string), about what a Grafana panel of 10 hosts asks for.
func benchResult() []influxjson.Result {
	var series []influxjson.Series
	for s := range 10 {
		ser := influxjson.Series{Name: "cpu", Tags: map[string]string{"host": "host_" + string(rune('0'+s))}, Columns: []string{"time", "usage", "n", "msg"}}
		for i := range 1000 {
			ser.Values = append(ser.Values, []any{int64(1_700_000_000_000_000_000 + i*10_000_000_000), float64(i) * 0.37, int64(i), "ok"})
		}
		series = append(series, ser)
	}
	return []influxjson.Result{{Series: series}}
}

// BenchmarkWriteResponse: ns/row of the /query answer's encoding, RFC 3339
// times and epoch=ms.
func BenchmarkWriteResponse(b *testing.B) {
	res := benchResult()
	req := httptest.NewRequest("GET", "/query", nil)
	for _, epoch := range []string{"", "ms"} {
		b.Run("epoch="+epoch, func(b *testing.B) {
			w := &discard{h: http.Header{}}
			for b.Loop() {
				influxjson.WriteResponse(w, req, res, epoch, false)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/row")
			b.SetBytes(w.n / int64(b.N))
		})
	}
	b.Run("chunked", func(b *testing.B) {
		w := &discard{h: http.Header{}}
		for b.Loop() {
			cw := influxjson.NewChunkedWriter(w, req, "ms", 1000)
			for _, r := range res {
				if err := cw.WriteResult(r); err != nil {
					b.Fatal(err)
				}
			}
			cw.Close()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/row")
	})
}
