package influxjson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/chronostream/chronostream/internal/query/influxjson"
	"github.com/chronostream/chronostream/internal/testutil"
)

// The writer is checked byte for byte against a real influxd: each query's
// answer is fetched with epoch=ns, decoded into Results, written again by
// the writer with the epoch, pretty and chunk options under test, and
// compared with influxd's own answer to the same request.

const testData = `cpu,host=a,region=eu usage=1.5,n=3i,ok=true,msg="hi \"there\"" 1000000000
cpu,host=a,region=eu usage=0.1,n=-4i,ok=false,msg="x" 1500000001
cpu,host=b,region=us usage=1e-7,n=9223372036854775807i,ok=true,msg="<&>" 2000000000
cpu,host=b,region=us usage=1e21,n=0i,ok=false,msg="é" 2000000500
cpu,host=c usage=-0.25,n=7i 3000000000
mem,host=a used=100i,free=0.5 -1500000000
mem,host=a used=101i,free=123456789012345680000 1700000000000000000
` +
	// Strings as influxd's old encoding/json escapes them: \u0008 and
	// \u000c (Go 1.22+ writes \b and \f), HTML characters, U+2028. (Invalid
	// UTF-8 would not survive the decoding: TestWriteResponseValues.)
	"esc,tag=a\\ b\\,c s=\"a\x08b\x0cc\x01d\x7fe<f>&\u2028g\u00ffh\x1f\\\\\\\"\ti\" 1000000000\n"

var queries = []string{
	"SELECT * FROM cpu",
	"SELECT usage, n FROM cpu GROUP BY host",
	"SELECT usage FROM cpu GROUP BY *",
	"SELECT * FROM mem",
	"SELECT * FROM esc GROUP BY *",
	"SELECT mean(usage), count(n) FROM cpu",
	"SELECT max(usage) FROM cpu GROUP BY time(1s), host fill(none)",
	"SELECT sum(n) FROM cpu WHERE time >= 0s AND time < 4s GROUP BY time(1s)",
	"SELECT usage FROM cpu WHERE host = 'nobody'",
	"SELECT * FROM nothing",
	"SELECT usage FROM cpu; SELECT used FROM mem; SELECT x FROM nothing",
	"SELECT foo(usage) FROM cpu",
	"SELECT usage FROM cpu; SELECT foo(usage) FROM cpu",
	"SHOW MEASUREMENTS",
	"SHOW TAG KEYS",
	"SHOW TAG VALUES WITH KEY = host",
	"SHOW FIELD KEYS",
	"SHOW SERIES",
	"SHOW DATABASES",
	"SHOW RETENTION POLICIES",
}

type influxd struct {
	t  *testing.T
	db *testutil.InfluxDB
}

func startInfluxd(t *testing.T) *influxd {
	t.Helper()
	db := testutil.StartInfluxDB(t)
	db.MustQuery("CREATE DATABASE w", "")
	resp, err := http.Post(db.URL()+"/write?db=w", "text/plain", strings.NewReader(testData))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: %s %s", resp.Status, b)
	}
	return &influxd{t: t, db: db}
}

// get asks influxd and returns the answer.
func (d *influxd) get(params url.Values) *http.Response {
	d.t.Helper()
	return d.getAccept(params, "")
}

func (d *influxd) getAccept(params url.Values, accept string) *http.Response {
	d.t.Helper()
	params.Set("db", "w")
	req, err := http.NewRequest("GET", d.db.URL()+"/query?"+params.Encode(), nil)
	if err != nil {
		d.t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	return resp
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// results decodes an epoch=ns answer into the writer's Results, integers
// as int64 and other numbers as float64, as the engine hands them over.
func results(t *testing.T, answer string) []influxjson.Result {
	t.Helper()
	var r struct {
		Results []struct {
			StatementID int    `json:"statement_id"`
			Error       string `json:"error"`
			Partial     bool   `json:"partial"`
			Series      []struct {
				Name    string            `json:"name"`
				Tags    map[string]string `json:"tags"`
				Columns []string          `json:"columns"`
				Values  [][]any           `json:"values"`
				Partial bool              `json:"partial"`
			} `json:"series"`
			Messages []influxjson.Message `json:"messages"`
		} `json:"results"`
	}
	dec := json.NewDecoder(strings.NewReader(answer))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("decode %q: %v", answer, err)
	}
	var out []influxjson.Result
	for _, res := range r.Results {
		x := influxjson.Result{StatementID: res.StatementID, Partial: res.Partial, Messages: res.Messages}
		if res.Error != "" {
			x.Err = errors.New(res.Error)
		}
		for _, s := range res.Series {
			for _, row := range s.Values {
				for i, v := range row {
					if n, ok := v.(json.Number); ok {
						row[i] = number(t, n)
					}
				}
			}
			x.Series = append(x.Series, influxjson.Series{Name: s.Name, Tags: s.Tags, Columns: s.Columns, Values: s.Values, Partial: s.Partial})
		}
		out = append(out, x)
	}
	return out
}

func number(t *testing.T, n json.Number) any {
	if !strings.ContainsAny(n.String(), ".eE") {
		if i, err := n.Int64(); err == nil {
			return i
		}
	}
	f, err := n.Float64()
	if err != nil {
		t.Fatalf("number %s: %v", n, err)
	}
	return f
}

func TestWriteResponseMatchesInfluxDB(t *testing.T) {
	d := startInfluxd(t)
	for _, q := range queries {
		rs := results(t, body(t, d.get(url.Values{"q": {q}, "epoch": {"ns"}})))
		for _, epoch := range []string{"", "ns", "u", "µ", "ms", "s", "m", "h", "xyz"} {
			for _, pretty := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/epoch=%s/pretty=%v", q, epoch, pretty), func(t *testing.T) {
					params := url.Values{"q": {q}}
					if epoch != "" {
						params.Set("epoch", epoch)
					}
					if pretty {
						params.Set("pretty", "true")
					}
					resp := d.get(params)
					want := body(t, resp)
					rec := httptest.NewRecorder()
					influxjson.WriteResponse(rec, httptest.NewRequest("GET", "/query", nil), rs, epoch, pretty)
					if got := rec.Body.String(); got != want {
						t.Fatalf("body differs:\n got  %s\n want %s", got, want)
					}
					sameHeaders(t, rec, resp)
				})
			}
		}
	}
}

func sameHeaders(t *testing.T, rec *httptest.ResponseRecorder, resp *http.Response) {
	t.Helper()
	if rec.Code != resp.StatusCode {
		t.Errorf("status %d, influxd %d", rec.Code, resp.StatusCode)
	}
	for _, h := range []string{"Content-Type", "X-Influxdb-Build", "X-Influxdb-Error"} {
		if got, want := rec.Header().Get(h), resp.Header.Get(h); got != want {
			t.Errorf("%s: %q, influxd %q", h, got, want)
		}
	}
	// Clients check the major version only.
	if v := rec.Header().Get("X-Influxdb-Version"); !strings.HasPrefix(v, "1.") {
		t.Errorf("X-Influxdb-Version %q", v)
	}
}

// TestChunkedMatchesInfluxDB writes whole results through the ChunkedWriter
// and compares with influxd's chunked=true answer line by line.
func TestChunkedMatchesInfluxDB(t *testing.T) {
	d := startInfluxd(t)
	for _, q := range queries {
		rs := results(t, body(t, d.get(url.Values{"q": {q}, "epoch": {"ns"}})))
		if strings.Contains(q, "foo(") {
			// influxd's chunked answer to a failing statement also says
			// "not executed" under the failed statement's id: the engine's
			// business, not the writer's.
			continue
		}
		for _, size := range []int{1, 2, 3, 0} {
			for _, epoch := range []string{"", "ms"} {
				t.Run(fmt.Sprintf("%s/chunk_size=%d/epoch=%s", q, size, epoch), func(t *testing.T) {
					params := url.Values{"q": {q}, "chunked": {"true"}}
					if size != 0 {
						params.Set("chunk_size", strconv.Itoa(size))
					}
					if epoch != "" {
						params.Set("epoch", epoch)
					}
					resp := d.get(params)
					want := body(t, resp)
					rec := httptest.NewRecorder()
					cw := influxjson.NewChunkedWriter(rec, httptest.NewRequest("GET", "/query", nil), epoch, size)
					for _, r := range rs {
						write := cw.WriteResult
						if unsplit(q) {
							write = cw.WriteUnsplit
						}
						if err := write(r); err != nil {
							t.Fatal(err)
						}
					}
					if err := cw.Close(); err != nil {
						t.Fatal(err)
					}
					if got := rec.Body.String(); got != want {
						t.Fatalf("body differs:\n got  %s\n want %s", got, want)
					}
					if !rec.Flushed {
						t.Error("chunks were not flushed")
					}
					sameHeaders(t, rec, resp)
				})
			}
		}
	}
}

// unsplit tells the statements influxd does not chunk.
func unsplit(q string) bool {
	return strings.HasPrefix(q, "SHOW") && !strings.HasPrefix(q, "SHOW SERIES") && !strings.HasPrefix(q, "SHOW FIELD KEYS")
}

// TestWriteErrorMatchesInfluxDB compares request-level errors: a missing q
// and a parse error, status, body and X-Influxdb-Error.
func TestWriteErrorMatchesInfluxDB(t *testing.T) {
	d := startInfluxd(t)
	for _, q := range []string{"", "SELECT", "SELECT x FROM cpu WHERE", "SELEKT <b>&"} {
		t.Run(q, func(t *testing.T) {
			params := url.Values{}
			if q != "" {
				params.Set("q", q)
			}
			resp := d.get(params)
			want := body(t, resp)
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(want), &e); err != nil || e.Error == "" {
				t.Fatalf("influxd answered %q", want)
			}
			rec := httptest.NewRecorder()
			influxjson.WriteError(rec, resp.StatusCode, errors.New(e.Error))
			if got := rec.Body.String(); got != want {
				t.Fatalf("body differs:\n got  %s\n want %s", got, want)
			}
			sameHeaders(t, rec, resp)

			resp = d.getAccept(params, "text/csv")
			want = body(t, resp)
			req := httptest.NewRequest("GET", "/query", nil)
			req.Header.Set("Accept", "text/csv")
			rec = httptest.NewRecorder()
			influxjson.WriteRequestError(rec, req, resp.StatusCode, errors.New(e.Error))
			if got := rec.Body.String(); got != want {
				t.Fatalf("CSV body differs:\n got  %q\n want %q", got, want)
			}
			sameHeaders(t, rec, resp)
		})
	}
}

// TestChunkedMessagesAndErrors covers what influxd's corpus above does not
// produce: messages, a statement error and a continued (Partial) result in
// chunked mode, one JSON document per line.
func TestChunkedMessagesAndErrors(t *testing.T) {
	rec := httptest.NewRecorder()
	cw := influxjson.NewChunkedWriter(rec, httptest.NewRequest("GET", "/query", nil), "s", 2)
	s := influxjson.Series{Name: "m", Columns: []string{"time", "v"}, Values: [][]any{{int64(1e9), 1.5}, {int64(2e9), 2.0}, {int64(3e9), 3.25}}}
	steps := []influxjson.Result{
		{StatementID: 0, Series: []influxjson.Series{s}, Partial: true},
		{StatementID: 0, Messages: []influxjson.Message{{Level: "warning", Text: "deprecated"}}},
		{StatementID: 1, Err: errors.New("boom")},
	}
	for _, r := range steps {
		if err := cw.WriteResult(r); err != nil {
			t.Fatal(err)
		}
	}
	want := `{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","v"],"values":[[1,1.5],[2,2]],"partial":true}],"partial":true}]}
{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","v"],"values":[[3,3.25]]}],"partial":true}]}
{"results":[{"statement_id":0,"messages":[{"level":"warning","text":"deprecated"}]}]}
{"results":[{"statement_id":1,"error":"boom"}]}
`
	if got := rec.Body.String(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	for _, line := range bytes.Split(bytes.TrimSpace(rec.Body.Bytes()), []byte("\n")) {
		if !json.Valid(line) {
			t.Errorf("invalid JSON line %s", line)
		}
	}
}

// TestCSVMatchesInfluxDB compares the CSV answer (Accept: application/csv or
// text/csv), whole and chunked, with influxd's.
func TestCSVMatchesInfluxDB(t *testing.T) {
	d := startInfluxd(t)
	for _, q := range append(queries, "SELECT usage FROM cpu GROUP BY host; SELECT free FROM mem; SHOW TAG KEYS") {
		if q == "SHOW RETENTION POLICIES" {
			// influxd's CSV writes the column name "replicaN" as its value
			// (its formatter skips Go ints and reuses the header's slot).
			continue
		}
		rs := results(t, body(t, d.get(url.Values{"q": {q}, "epoch": {"ns"}})))
		for _, epoch := range []string{"", "s"} {
			for _, chunk := range []int{0, 1, 2} {
				accept := []string{"application/csv", "text/csv"}[chunk%2]
				t.Run(fmt.Sprintf("%s/epoch=%s/chunk=%d", q, epoch, chunk), func(t *testing.T) {
					params := url.Values{"q": {q}}
					if epoch != "" {
						params.Set("epoch", epoch)
					}
					if chunk > 0 {
						params.Set("chunked", "true")
						params.Set("chunk_size", strconv.Itoa(chunk))
					}
					resp := d.getAccept(params, accept)
					want := body(t, resp)
					rec := httptest.NewRecorder()
					req := httptest.NewRequest("GET", "/query", nil)
					req.Header.Set("Accept", accept)
					if chunk == 0 {
						influxjson.WriteResponse(rec, req, rs, epoch, false)
					} else {
						cw := influxjson.NewChunkedWriter(rec, req, epoch, chunk)
						for _, r := range rs {
							if err := cw.WriteResult(r); err != nil {
								t.Fatal(err)
							}
						}
						cw.Close()
					}
					if got := rec.Body.String(); got != want {
						t.Fatalf("body differs:\n got  %q\n want %q", got, want)
					}
					sameHeaders(t, rec, resp)
				})
			}
		}
	}
}
