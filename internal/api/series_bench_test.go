package api

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/testutil"
)

// benchSeries stores total samples in a story, in the given body format,
// and times GET .../series over all of them at a chart's width: the log
// read, the expansion of bodies and the downsampling together.
func benchSeries(b *testing.B, total int, format event.Format, axis string) {
	benchSeriesOn(b, total, format, axis, false)
}

func benchSeriesOn(b *testing.B, total int, format event.Format, axis string, indexed bool) {
	e := newEnv(b, Config{})
	evs := make([]event.Event, 1000)
	for i := 0; i < total; i += len(evs) {
		for j := range evs {
			n := i + j
			t := t0 + int64(n)*int64(time.Second)
			evs[j] = event.Event{Time: t, Kind: event.KindMetric, Format: format}
			switch format {
			case event.FormatLine: // as InfluxDB line protocol stores it
				evs[j].Body = fmt.Appendf(nil, "cpu,host=web-%d usage_user=%d.%d %d", n%8, n%100, n%7, t)
			case event.FormatJSON: // as NDJSON and Trendlines store it
				evs[j].Body = fmt.Appendf(nil, `{"usage_user":%d.%d,"tags":{"host":"web-%d"}}`, n%100, n%7, n%8)
			default: // fields stored with the event
				evs[j].Fields = map[string]event.Value{"usage_user": event.Float(float64(n%100) + float64(n%7)/10)}
				evs[j].Tags = map[string]string{"host": fmt.Sprint("web-", n%8)}
			}
		}
		e.append("bench", "cpu", evs...)
	}
	base := e.srv.URL
	if indexed {
		base = e.indexed(b)
	}
	url := base + "/api/v1/chronicles/bench/stories/cpu/series?field=usage_user&width=1000&x=" + axis
	if indexed { // wait for the index to have read the log
		testutil.Eventually(b, 2*time.Minute, func() bool {
			resp, err := e.srv.Client().Get(url)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			var out struct{ Source string }
			return json.NewDecoder(resp.Body).Decode(&out) == nil && out.Source == "index"
		}, "the index serves the series")
	}
	b.ResetTimer()
	for b.Loop() {
		resp, err := e.srv.Client().Get(url)
		if err != nil {
			b.Fatal(err)
		}
		var out struct {
			Points int
			Source string
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || out.Points != total || indexed != (out.Source == "index") {
			b.Fatalf("series read %d points of %d from the %s: %v", out.Points, total, out.Source, err)
		}
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "points/s")
}

func BenchmarkSeriesFields(b *testing.B)       { benchSeries(b, 200_000, event.FormatRaw, "time") }
func BenchmarkSeriesLineProtocol(b *testing.B) { benchSeries(b, 200_000, event.FormatLine, "time") }
func BenchmarkSeriesJSON(b *testing.B)         { benchSeries(b, 200_000, event.FormatJSON, "seq") }

// BenchmarkSeriesIndex draws a million points of the time axis from the
// query index (the index built beforehand, as the server keeps it);
// CHRONOSTREAM_BENCH_POINTS=10000000 draws ten million.
func BenchmarkSeriesIndex(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("CHRONOSTREAM_BENCH_POINTS")); err == nil && v > 0 {
		n = v - v%1000
	}
	benchSeriesOn(b, n, event.FormatRaw, "time", true)
}
