package influxjson_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/query/influxjson"
)

func TestFormatTime(t *testing.T) {
	ns := int64(1_700_000_000_123_456_789)
	cases := []struct {
		ns    int64
		epoch string
		want  any
	}{
		{ns, "", "2023-11-14T22:13:20.123456789Z"},
		{1_700_000_000_500_000_000, "", "2023-11-14T22:13:20.5Z"},
		{0, "", "1970-01-01T00:00:00Z"},
		{-1_500_000_000, "", "1969-12-31T23:59:58.5Z"},
		{ns, "ns", ns},
		{ns, "n", ns},
		{ns, "µ", ns}, // influxd knows "u" only
		{ns, "u", ns / 1e3},
		{ns, "ms", ns / 1e6},
		{ns, "s", int64(1_700_000_000)},
		{ns, "m", int64(28_333_333)},
		{ns, "h", int64(472_222)},
		{-1_500_000_000, "s", int64(-1)}, // truncated toward zero, as Go's (and influxd's) division
		{-1_500_000_000, "h", int64(0)},
	}
	for _, c := range cases {
		if got := influxjson.FormatTime(c.ns, c.epoch); got != c.want {
			t.Errorf("FormatTime(%d, %q) = %#v, want %#v", c.ns, c.epoch, got, c.want)
		}
	}
}

// TestWriteResponseValues: JSON cannot carry NaN or ±Inf; influxd answers
// such a result with a Go error string instead of JSON, the writer with
// null. Tags are left out when there are none, time.Time values are
// written as RFC 3339, and only a first column named time is a time.
func TestWriteResponseValues(t *testing.T) {
	rec := httptest.NewRecorder()
	res := []influxjson.Result{{
		Series: []influxjson.Series{{
			Name: "m", Tags: map[string]string{}, Columns: []string{"time", "a", "b", "c", "d", "e"},
			Values: [][]any{{int64(0), math.NaN(), math.Inf(1), math.Inf(-1), time.Unix(1, 0), int64(5)}},
		}},
	}, {
		StatementID: 1,
		Series:      []influxjson.Series{{Name: "n", Columns: []string{"name", "time"}, Values: [][]any{{"x", int64(7)}}}},
		Messages:    []influxjson.Message{{Level: "warning", Text: "careful"}},
		Partial:     true,
	}, {
		StatementID: 2, Err: errors.New(`bad "thing" <here>`),
	}, {
		// influxd (Go 1.10's encoding/json) writes invalid UTF-8 as \ufffd
		// and \b \f as \u0008 \u000c.
		StatementID: 3, Series: []influxjson.Series{{Columns: []string{"s"}, Values: [][]any{{"a\xffb\bc\fd\u2029"}}}},
	}}
	influxjson.WriteResponse(rec, httptest.NewRequest("GET", "/query", nil), res, "s", false)
	want := `{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","a","b","c","d","e"],"values":[[0,null,null,null,"1970-01-01T00:00:01Z",5]]}]},` +
		`{"statement_id":1,"series":[{"name":"n","columns":["name","time"],"values":[["x",7]]}],"messages":[{"level":"warning","text":"careful"}],"partial":true},` +
		`{"statement_id":2,"error":"bad \"thing\" \u003chere\u003e"},` +
		`{"statement_id":3,"series":[{"columns":["s"],"values":[["a\ufffdb\u0008c\u000cd\u2029"]]}]}]}` + "\n"
	if got := rec.Body.String(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
}

func TestWriteResponseEmpty(t *testing.T) {
	rec := httptest.NewRecorder()
	influxjson.WriteResponse(rec, httptest.NewRequest("GET", "/query", nil), nil, "", false)
	if got := rec.Body.String(); got != "{}\n" {
		t.Errorf("no results: %q, want {} as influxd", got)
	}
	rec = httptest.NewRecorder()
	influxjson.WriteResponse(rec, httptest.NewRequest("GET", "/query", nil), []influxjson.Result{{StatementID: 0}}, "", false)
	if got := rec.Body.String(); got != `{"results":[{"statement_id":0}]}`+"\n" {
		t.Errorf("empty result: %q", got)
	}
}

func TestWriteErrorHeaders(t *testing.T) {
	rec := httptest.NewRecorder()
	influxjson.WriteError(rec, 400, errors.New("line one\nline two"+strings.Repeat("x", 2000)))
	if h := rec.Header().Get("X-Influxdb-Error"); len(h) != 1024 || strings.ContainsAny(h, "\r\n") {
		t.Errorf("X-Influxdb-Error is %d bytes: %q", len(h), h[:40])
	}
	var body struct{ Error string }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || !strings.HasPrefix(body.Error, "line one\nline two") {
		t.Errorf("body %q: %v", rec.Body.String(), err)
	}
	rec = httptest.NewRecorder()
	influxjson.WriteError(rec, 401, errors.New("authorization failed"))
	if rec.Code != 401 || rec.Header().Get("X-Influxdb-Error") != "" {
		t.Errorf("401: code %d, X-Influxdb-Error %q", rec.Code, rec.Header().Get("X-Influxdb-Error"))
	}
}

// FuzzWriteResponse: whatever the values (any string, float bits, tag and
// column names), the plain, pretty and chunked answers are valid JSON that
// decodes back to the same rows.
func FuzzWriteResponse(f *testing.F) {
	f.Add("cpu", "host", "a\x00b", "time", "v", uint64(0x7ff8000000000001), int64(-1), "ms", uint8(2), "err")
	f.Add("", "", "", "", "", uint64(0x7ff0000000000000), int64(math.MinInt64), "", uint8(0), "")
	f.Add("m\"<>&\u2028", "k\xff", "\xc3\x28", "t", "x\ty", uint64(0x3ff0000000000000), int64(math.MaxInt64), "h", uint8(1), "\xffbad")
	f.Fuzz(func(t *testing.T, name, tagKey, tagValue, col0, col1 string, bits uint64, ts int64, epoch string, chunk uint8, errText string) {
		s := influxjson.Series{
			Name: name, Tags: map[string]string{tagKey: tagValue}, Columns: []string{col0, col1},
			Values: [][]any{{ts, math.Float64frombits(bits)}, {ts, tagValue}, {ts, nil}, {ts, int64(bits)}, {ts, bits&1 == 0}},
		}
		res := []influxjson.Result{{Series: []influxjson.Series{s}}, {StatementID: 1}}
		if errText != "" {
			res[1].Err = errors.New(errText)
		}
		for _, pretty := range []bool{false, true} {
			rec := httptest.NewRecorder()
			influxjson.WriteResponse(rec, httptest.NewRequest("GET", "/query", nil), res, epoch, pretty)
			if !strings.ContainsAny(name+tagKey+tagValue+col0+col1+errText, "\b\f") {
				// Byte for byte what encoding/json (influxd's encoder)
				// writes, but for \b and \f, which today's Go escapes
				// differently from influxd's.
				if want := reference(t, res, epoch, pretty); rec.Body.String() != want {
					t.Fatalf("got\n%s\nencoding/json writes\n%s", rec.Body.String(), want)
				}
			}
			var got struct {
				Results []struct {
					Series []struct{ Values [][]any }
				}
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("invalid JSON %q: %v", rec.Body.String(), err)
			}
			if len(got.Results) != 2 || len(got.Results[0].Series) != 1 || len(got.Results[0].Series[0].Values) != len(s.Values) {
				t.Fatalf("answer %s lost rows", rec.Body.String())
			}
		}
		// CSV: parseable, one record per row plus the header.
		csvReq := httptest.NewRequest("GET", "/query", nil)
		csvReq.Header.Set("Accept", "text/csv")
		csvRec := httptest.NewRecorder()
		influxjson.WriteResponse(csvRec, csvReq, res, epoch, false)
		r := csv.NewReader(csvRec.Body)
		r.FieldsPerRecord = -1
		records, err := r.ReadAll()
		if err != nil {
			t.Fatalf("CSV %q: %v", csvRec.Body.String(), err)
		}
		if len(records) != 1+len(s.Values) {
			t.Fatalf("CSV has %d records, want %d", len(records), 1+len(s.Values))
		}
		rec := httptest.NewRecorder()
		cw := influxjson.NewChunkedWriter(rec, httptest.NewRequest("GET", "/query", nil), epoch, int(chunk))
		rows := 0
		for _, r := range res {
			if err := cw.WriteResult(r); err != nil {
				t.Fatal(err)
			}
		}
		cw.Close()
		for _, line := range bytes.Split(bytes.TrimSuffix(rec.Body.Bytes(), []byte("\n")), []byte("\n")) {
			var got struct {
				Results []struct {
					Series []struct{ Values [][]any }
				}
			}
			if err := json.Unmarshal(line, &got); err != nil {
				t.Fatalf("invalid JSON line %q: %v", line, err)
			}
			for _, r := range got.Results {
				for _, s := range r.Series {
					rows += len(s.Values)
				}
			}
		}
		if rows != len(s.Values) {
			t.Fatalf("chunked answer has %d rows, want %d", rows, len(s.Values))
		}
	})
}

// reference encodes a response with encoding/json and influxd's structs.
func reference(t *testing.T, results []influxjson.Result, epoch string, pretty bool) string {
	type row struct {
		Name    string            `json:"name,omitempty"`
		Tags    map[string]string `json:"tags,omitempty"`
		Columns []string          `json:"columns,omitempty"`
		Values  [][]any           `json:"values,omitempty"`
		Partial bool              `json:"partial,omitempty"`
	}
	type result struct {
		StatementID int                  `json:"statement_id"`
		Series      []row                `json:"series,omitempty"`
		Messages    []influxjson.Message `json:"messages,omitempty"`
		Partial     bool                 `json:"partial,omitempty"`
		Err         string               `json:"error,omitempty"`
	}
	var resp struct {
		Results []result `json:"results,omitempty"`
	}
	for _, r := range results {
		x := result{StatementID: r.StatementID, Partial: r.Partial}
		if r.Err != nil {
			x.Err = r.Err.Error()
		}
		for _, s := range r.Series {
			values := make([][]any, len(s.Values))
			for i, vs := range s.Values {
				values[i] = make([]any, len(vs))
				for j, v := range vs {
					if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
						v = nil
					}
					if ns, ok := v.(int64); ok && j == 0 && len(s.Columns) > 0 && s.Columns[0] == "time" {
						v = influxjson.FormatTime(ns, epoch)
					}
					values[i][j] = v
				}
			}
			x.Series = append(x.Series, row{s.Name, s.Tags, s.Columns, values, s.Partial})
		}
		resp.Results = append(resp.Results, x)
	}
	var b []byte
	var err error
	if pretty {
		b, err = json.MarshalIndent(resp, "", "    ")
	} else {
		b, err = json.Marshal(resp)
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// writeCounter is a ResponseWriter that records each Write.
type writeCounter struct {
	*httptest.ResponseRecorder
	writes int
}

func (w *writeCounter) Write(b []byte) (int, error) {
	w.writes++
	return w.ResponseRecorder.Write(b)
}

// TestWriteResponseStreams: a large answer goes out in pieces, and the
// pieces make the same document encoding/json would.
func TestWriteResponseStreams(t *testing.T) {
	s := influxjson.Series{Name: "m", Tags: map[string]string{"host": "a"}, Columns: []string{"time", "v", "s"}}
	for i := range 20000 {
		s.Values = append(s.Values, []any{int64(i) * 1e9, float64(i) / 7, "row"})
	}
	res := []influxjson.Result{{Series: []influxjson.Series{s}}}
	w := &writeCounter{ResponseRecorder: httptest.NewRecorder()}
	influxjson.WriteResponse(w, httptest.NewRequest("GET", "/query", nil), res, "", false)
	if w.writes < 10 {
		t.Errorf("%d writes for %d bytes: not streamed", w.writes, w.Body.Len())
	}
	if want := reference(t, res, "", false); w.Body.String() != want {
		t.Error("streamed answer differs from encoding/json's")
	}
}
