package api

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/chronostream/chronostream/event"
)

// benchSeries stores total samples in a story, in the given body format,
// and times GET .../series over all of them at a chart's width: the log
// read, the expansion of bodies and the downsampling together.
func benchSeries(b *testing.B, total int, format event.Format, axis string) {
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
	url := e.srv.URL + "/api/v1/chronicles/bench/stories/cpu/series?field=usage_user&width=1000&x=" + axis
	b.ResetTimer()
	for b.Loop() {
		resp, err := e.srv.Client().Get(url)
		if err != nil {
			b.Fatal(err)
		}
		var out struct{ Points int }
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || out.Points != total {
			b.Fatalf("series read %d points of %d: %v", out.Points, total, err)
		}
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "points/s")
}

func BenchmarkSeriesFields(b *testing.B)       { benchSeries(b, 200_000, event.FormatRaw, "time") }
func BenchmarkSeriesLineProtocol(b *testing.B) { benchSeries(b, 200_000, event.FormatLine, "time") }
func BenchmarkSeriesJSON(b *testing.B)         { benchSeries(b, 200_000, event.FormatJSON, "seq") }
