package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/query/tsdb"
	"github.com/chronostream/chronostream/internal/testutil"
)

type seriesOut struct {
	X      string  `json:"x"`
	Points int     `json:"points"`
	FromMS float64 `json:"from_ms"`
	ToMS   float64 `json:"to_ms"`
	Series []struct {
		Tags  map[string]string `json:"tags"`
		Count int               `json:"count"`
		Min   float64           `json:"min"`
		Max   float64           `json:"max"`
		X     []float64         `json:"x"`
		Y     []float64         `json:"y"`
	} `json:"series"`
	GroupsTruncated bool `json:"groups_truncated"`
}

var t0 = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC).UnixNano()

// metricEvents are n samples of field v, one a second from t0, over hosts
// in turn; sample spike is 1000, every other sample i%10.
func metricEvents(n, spike int, hosts ...string) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		y := float64(i % 10)
		if i == spike {
			y = 1000
		}
		evs[i] = event.Event{Time: t0 + int64(i)*int64(time.Second), Kind: event.KindMetric,
			Fields: map[string]event.Value{"v": event.Float(y), "s": event.String("x")}}
		if len(hosts) > 0 {
			evs[i].Tags = map[string]string{"host": hosts[i%len(hosts)]}
		}
	}
	return evs
}

func TestSeriesTimeAxisKeepsMinMaxPerColumn(t *testing.T) {
	e := newEnv(t, Config{})
	e.append("m", "cpu", metricEvents(2000, 1234)...)
	var out seriesOut
	e.getJSON("/api/v1/chronicles/m/stories/cpu/series?field=v&width=20", 200, &out)
	if out.X != "time" || out.Points != 2000 || len(out.Series) != 1 {
		t.Fatalf("got x=%s points=%d series=%d, want time, 2000, 1", out.X, out.Points, len(out.Series))
	}
	s := out.Series[0]
	if s.Count != 2000 || s.Max != 1000 || s.Min != 0 {
		t.Fatalf("stats count=%d min=%v max=%v", s.Count, s.Min, s.Max)
	}
	if len(s.X) > 4*20 || len(s.X) < 20 {
		t.Fatalf("%d points for 20 columns, want 20..80", len(s.X))
	}
	colMS := (out.ToMS - out.FromMS) / 20
	perCol := map[int][2]float64{}
	spike := false
	for i := range s.X {
		if i > 0 && s.X[i] < s.X[i-1] {
			t.Fatalf("x not ascending at %d", i)
		}
		c := min(int((s.X[i]-out.FromMS)/colMS), 19)
		m, ok := perCol[c]
		if !ok {
			m = [2]float64{s.Y[i], s.Y[i]}
		}
		perCol[c] = [2]float64{min(m[0], s.Y[i]), max(m[1], s.Y[i])}
		if s.Y[i] == 1000 && s.X[i] == float64(t0)/1e6+1234*1000 {
			spike = true
		}
	}
	if !spike {
		t.Errorf("the spike at sample 1234 was not kept at its time")
	}
	for c := 0; c < 20; c++ {
		if m := perCol[c]; m[0] != 0 || (m[1] != 9 && m[1] != 1000) {
			t.Errorf("column %d keeps min/max %v, want 0 and 9 (or the spike)", c, m)
		}
	}
	// from/to bound the range: the last 100 samples.
	from := url.QueryEscape(time.Unix(0, t0+1900*int64(time.Second)).UTC().Format(time.RFC3339))
	e.getJSON("/api/v1/chronicles/m/stories/cpu/series?field=v&width=1000&from="+from, 200, &out)
	if out.Points != 100 || len(out.Series[0].X) != 100 {
		t.Fatalf("from=%s: %d points read, %d kept; want 100 and 100", from, out.Points, len(out.Series[0].X))
	}
}

func TestSeriesSeqAxisAndGroupBy(t *testing.T) {
	e := newEnv(t, Config{})
	e.append("m", "cpu", metricEvents(300, 7, "a", "b", "c")...)
	var out seriesOut
	e.getJSON("/api/v1/chronicles/m/stories/cpu/series?field=v&x=seq&group_by=host", 200, &out)
	if out.X != "seq" || len(out.Series) != 3 {
		t.Fatalf("x=%s with %d series, want seq and 3", out.X, len(out.Series))
	}
	for i, host := range []string{"a", "b", "c"} {
		s := out.Series[i]
		if s.Tags["host"] != host || s.Count != 100 || len(s.X) != 100 {
			t.Fatalf("series %d: tags %v count %d kept %d, want host=%s, 100, 100", i, s.Tags, s.Count, len(s.X), host)
		}
		for j, x := range s.X {
			if x != float64(j) {
				t.Fatalf("host %s: point %d at x=%v, want %d (evenly spaced by order)", host, j, x, j)
			}
		}
	}
	// Sample 7 (the spike) is host b's third.
	if out.Series[1].Y[2] != 1000 {
		t.Errorf("host b's third point %v, want the spike", out.Series[1].Y[2])
	}
	// A tag filter keeps one line.
	e.getJSON("/api/v1/chronicles/m/stories/cpu/series?field=v&x=seq&tag.host=c", 200, &out)
	if len(out.Series) != 1 || out.Series[0].Count != 100 {
		t.Fatalf("tag.host=c: %d series", len(out.Series))
	}
	// A non-numeric field draws nothing rather than failing.
	e.getJSON("/api/v1/chronicles/m/stories/cpu/series?field=s&x=seq", 200, &out)
	if out.Points != 0 || len(out.Series) != 0 {
		t.Fatalf("string field: %d points", out.Points)
	}
}

func TestSeriesLineProtocolAndJSONBodies(t *testing.T) {
	e := newEnv(t, Config{})
	e.append("m", "lp", event.Event{Time: t0, Body: []byte("lp,host=h1 v=3.5 1"), Format: event.FormatLine},
		event.Event{Time: t0 + 1, Body: []byte(`{"v":4.5,"tags":{"host":"h2"}}`), Format: event.FormatJSON})
	var out seriesOut
	e.getJSON("/api/v1/chronicles/m/stories/lp/series?field=v&x=seq&group_by=host", 200, &out)
	if len(out.Series) != 2 || out.Series[0].Y[0] != 3.5 || out.Series[1].Y[0] != 4.5 {
		t.Fatalf("series from expanded bodies: %+v", out.Series)
	}
}

func TestSeriesBadRequests(t *testing.T) {
	e := newEnv(t, Config{})
	e.append("m", "cpu", metricEvents(3, -1)...)
	for _, q := range []string{"", "field=v&x=log", "field=v&width=0", "field=v&width=10001", "field=v&width=x",
		"field=v&from=yesterday", "field=v&bogus=1", "field=v&field=w",
		"field=v&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"} {
		resp := e.do("GET", "/api/v1/chronicles/m/stories/cpu/series?"+q, nil)
		resp.Body.Close()
		if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%q: status %d %s, want 400 problem JSON", q, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	resp := e.do("GET", "/api/v1/chronicles/nope/stories/cpu/series?field=v", nil)
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("missing chronicle: %d, want 404", resp.StatusCode)
	}
}

func TestSeriesGroupsBounded(t *testing.T) {
	e := newEnv(t, Config{})
	hosts := make([]string, maxSeriesGroups+5)
	for i := range hosts {
		hosts[i] = fmt.Sprint("h", i)
	}
	e.append("m", "cpu", metricEvents(len(hosts), -1, hosts...)...)
	var out seriesOut
	e.getJSON("/api/v1/chronicles/m/stories/cpu/series?field=v&group_by=host", 200, &out)
	if len(out.Series) != maxSeriesGroups || !out.GroupsTruncated {
		t.Fatalf("%d series, truncated %v; want %d, true", len(out.Series), out.GroupsTruncated, maxSeriesGroups)
	}
	// A chart at the widest keeps fewer lines: the columns of all lines
	// of a request are bounded (maxSeriesColumns), not only their count.
	for _, x := range []string{"seq", "time"} {
		out = seriesOut{}
		e.getJSON(fmt.Sprintf("/api/v1/chronicles/m/stories/cpu/series?field=v&group_by=host&x=%s&width=%d", x, maxSeriesWidth), 200, &out)
		if want := maxSeriesColumns / (2 * maxSeriesWidth); len(out.Series) != want || !out.GroupsTruncated {
			t.Errorf("x=%s width %d: %d series, truncated %v; want %d, true", x, maxSeriesWidth, len(out.Series), out.GroupsTruncated, want)
		}
	}
}

func TestMetricsCatalog(t *testing.T) {
	e := newEnv(t, Config{})
	e.append("m", "cpu", metricEvents(5, -1, "a")...)
	e.append("m", "mem", event.Event{Body: []byte(`{"used":1,"free":2.5,"name":"x","tags":{"dc":"eu"}}`), Format: event.FormatJSON})
	e.append("logs", "api", event.Event{Body: []byte(`hello`)})
	var out struct {
		Metrics []metricJSON `json:"metrics"`
	}
	e.getJSON("/api/v1/metrics", 200, &out)
	var got []string
	for _, m := range out.Metrics {
		got = append(got, fmt.Sprint(m.Chronicle, "/", m.Story, "/", m.Field, m.Tags))
	}
	want := []string{"m/cpu/v[host]", "m/mem/free[dc]", "m/mem/used[dc]"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("catalog %v, want %v", got, want)
	}
	e.getJSON("/api/v1/metrics?chronicle=logs", 200, &out)
	if len(out.Metrics) != 0 {
		t.Fatalf("logs has no numeric fields, got %v", out.Metrics)
	}
	resp := e.do("GET", "/api/v1/metrics?chronicle=nope", nil)
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("unknown chronicle: %d", resp.StatusCode)
	}
}

func TestAnnotationsPointsAndRegions(t *testing.T) {
	e := newEnv(t, Config{})
	ann := func(ts int64, body string) event.Event {
		return event.Event{Time: ts, Kind: event.KindAnnotation, Body: []byte(body), Format: event.FormatJSON}
	}
	s := int64(time.Second)
	e.append("m", "deploys",
		ann(t0, `{"text":"deploy v1","title":"deploy"}`),
		ann(t0+10*s, fmt.Sprintf(`{"text":"maintenance","time_end":%d}`, t0+20*s)),
		ann(t0+30*s, `{"text":"load test","region":"lt","phase":"start"}`),
		ann(t0+40*s, `{"region":"lt","phase":"end"}`),
		ann(t0+50*s, `{"text":"incident","region":"inc","phase":"start"}`))
	e.append("m", "cpu", metricEvents(3, -1)...) // not annotations
	var out struct {
		Annotations []annotationJSON `json:"annotations"`
	}
	e.getJSON("/api/v1/chronicles/m/annotations", 200, &out)
	ms := func(d int64) float64 { return float64(t0+d*s) / 1e6 }
	a := out.Annotations
	if len(a) != 4 {
		t.Fatalf("%d annotations, want 4: %+v", len(a), a)
	}
	if a[0].Text != "deploy v1" || a[0].Title != "deploy" || a[0].EndMS != nil || a[0].TimeMS != ms(0) {
		t.Errorf("point: %+v", a[0])
	}
	if a[1].EndMS == nil || *a[1].EndMS != ms(20) || a[1].TimeMS != ms(10) {
		t.Errorf("time_end region: %+v", a[1])
	}
	if a[2].EndMS == nil || *a[2].EndMS != ms(40) || a[2].TimeMS != ms(30) || a[2].Text != "load test" || a[2].Open {
		t.Errorf("paired region: %+v", a[2])
	}
	if !a[3].Open || a[3].EndMS != nil || a[3].Region != "inc" {
		t.Errorf("open region: %+v", a[3])
	}
	// An end whose start is before from begins at from.
	from := fmt.Sprint(t0 + 35*s)
	e.getJSON("/api/v1/chronicles/m/annotations?from="+from, 200, &out)
	if len(out.Annotations) != 2 || out.Annotations[0].TimeMS != ms(35) || *out.Annotations[0].EndMS != ms(40) {
		t.Fatalf("from inside a region: %+v", out.Annotations)
	}
	resp := e.do("GET", "/api/v1/chronicles/m/annotations?limit=0", nil)
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("limit=0: %d", resp.StatusCode)
	}
}

// indexed serves the API with the query index over e's store.
func (e *env) indexed(t testing.TB) string {
	ix := tsdb.New(tsdb.Options{Log: e.store, Rescan: 50 * time.Millisecond})
	ix.Start(context.Background())
	t.Cleanup(ix.Close)
	mux := http.NewServeMux()
	New(Config{Store: e.store, Index: ix, Done: e.done}).Register(mux, func(h http.Handler) http.Handler { return h })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// The time axis reads the query index when there is one; what it draws is
// what the log read draws.
func TestSeriesFromIndexMatchesLog(t *testing.T) {
	e := newEnv(t, Config{})
	evs := metricEvents(3000, 1234, "a", "b", "c")
	for i := range evs {
		if i%10 == 0 {
			evs[i].Fields["w"] = event.Int(int64(i)) // an int field, on some events only
		}
	}
	e.append("m", "cpu", evs...)
	e.append("m", "cpu", event.Event{Time: t0 + 5000*int64(time.Second), Body: []byte(`{"w":9999,"tags":{"host":"b"}}`), Format: event.FormatJSON})
	base := e.indexed(t)
	for _, q := range []string{"field=w&width=50", "field=w&width=7&group_by=host", "field=v&width=300&tag.host=b",
		"field=w&width=100&from=" + fmt.Sprint(t0+1000*int64(time.Second)) + "&to=" + fmt.Sprint(t0+2000*int64(time.Second)), "field=s", "field=nope"} {
		var fromLog, fromIndex struct {
			seriesOut
			Source string `json:"source"`
		}
		e.getJSON("/api/v1/chronicles/m/stories/cpu/series?"+q, 200, &fromLog)
		testutil.Eventually(t, 5*time.Second, func() bool {
			resp, err := http.Get(base + "/api/v1/chronicles/m/stories/cpu/series?" + q)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			return json.NewDecoder(resp.Body).Decode(&fromIndex) == nil && fromIndex.Source == "index"
		}, "the index answers "+q)
		if fromLog.Source != "log" {
			t.Fatalf("%s: without an index the source is %q", q, fromLog.Source)
		}
		a, _ := json.Marshal(fromLog.seriesOut)
		b, _ := json.Marshal(fromIndex.seriesOut)
		if string(a) != string(b) {
			t.Errorf("%s:\n log   %s\n index %s", q, a, b)
		}
	}
	// A text filter, which the index cannot apply, reads the log.
	var out struct {
		Source string `json:"source"`
		Points int    `json:"points"`
	}
	resp, err := http.Get(base + "/api/v1/chronicles/m/stories/cpu/series?field=w&q=9999")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if out.Source != "log" || out.Points != 1 {
		t.Fatalf("q= filter: %+v", out)
	}
}

// TestAnnotationsBoundText: an annotation's text and title are cut to
// maxAnnotationTextBytes, so a page of them is bounded whatever was written.
func TestAnnotationsBoundText(t *testing.T) {
	e := newEnv(t, Config{})
	long := strings.Repeat("x", 100_000)
	e.append("m", "deploys", event.Event{Time: t0, Kind: event.KindAnnotation, Format: event.FormatJSON,
		Body: []byte(`{"text":"` + long + `","title":"` + long + `"}`)})
	var out struct {
		Annotations []annotationJSON `json:"annotations"`
	}
	e.getJSON("/api/v1/chronicles/m/annotations", 200, &out)
	if len(out.Annotations) != 1 {
		t.Fatalf("%d annotations", len(out.Annotations))
	}
	for name, s := range map[string]string{"text": out.Annotations[0].Text, "title": out.Annotations[0].Title} {
		if len(s) != maxAnnotationTextBytes+len("…") || !strings.HasPrefix(long, strings.TrimSuffix(s, "…")) {
			t.Errorf("%s of %d bytes", name, len(s))
		}
	}
}

// TestMetricsCatalogBoundsFields: a story whose events carry more numeric
// fields and tag keys than the catalog lists is cut, and says so.
func TestMetricsCatalogBoundsFields(t *testing.T) {
	e := newEnv(t, Config{})
	var b strings.Builder
	b.WriteString(`{"tags":{`)
	for i := range maxCatalogTags + 10 {
		fmt.Fprintf(&b, `%s"t%d":"v"`, map[bool]string{true: "", false: ","}[i == 0], i)
	}
	b.WriteString(`}`)
	for i := range maxCatalogFields + 10 {
		fmt.Fprintf(&b, `,"f%d":%d`, i, i)
	}
	b.WriteString(`}`)
	e.append("m", "wide", event.Event{Body: []byte(b.String()), Format: event.FormatJSON})
	var out struct {
		Metrics         []metricJSON `json:"metrics"`
		FieldsTruncated bool         `json:"fields_truncated"`
	}
	e.getJSON("/api/v1/metrics", 200, &out)
	if len(out.Metrics) != maxCatalogFields || !out.FieldsTruncated || len(out.Metrics[0].Tags) != maxCatalogTags {
		t.Fatalf("%d metrics, truncated %v, %d tags; want %d, true, %d", len(out.Metrics), out.FieldsTruncated,
			len(out.Metrics[0].Tags), maxCatalogFields, maxCatalogTags)
	}
}
