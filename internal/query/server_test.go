package query_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

// startServer runs a whole server with chronicles created on first write.
func startServer(t *testing.T) string {
	t.Helper()
	s := servertest.RunServer(t, server.Options{AutoCreate: true})
	return "http://" + s.Addr()
}

func write(t *testing.T, base, db, lines string) {
	t.Helper()
	resp, err := http.Post(base+"/write?db="+url.QueryEscape(db), "text/plain", strings.NewReader(lines))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("write: %d %s", resp.StatusCode, b)
	}
}

// get runs /query and returns the status and the body.
func get(t *testing.T, base string, params url.Values) (int, string) {
	t.Helper()
	resp, err := http.Get(base + "/query?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// queryJSON runs q on db with epoch=ns and returns the body.
func queryJSON(t *testing.T, base, db, q string) string {
	t.Helper()
	code, body := get(t, base, url.Values{"db": {db}, "q": {q}, "epoch": {"ns"}})
	if code != http.StatusOK {
		t.Fatalf("%s: %d %s", q, code, body)
	}
	return body
}

func TestQueryOverHTTP(t *testing.T) {
	base := startServer(t)
	write(t, base, "telegraf", strings.Join([]string{
		"cpu,host=a,region=eu usage=1,idle=90i 1000000000",
		"cpu,host=a,region=eu usage=3,idle=80i 2000000000",
		"cpu,host=b,region=us usage=5,idle=70i 1000000000",
		"cpu,host=b,region=us usage=7 61000000000",
		"mem,host=a used=10u 1000000000",
	}, "\n"))
	tests := []struct{ name, q, want string }{
		{"raw", `SELECT usage FROM cpu WHERE host = 'a'`,
			`{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","usage"],"values":[[1000000000,1],[2000000000,3]]}]}]}`},
		{"raw merged series", `SELECT usage, host FROM cpu`,
			`{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","usage","host"],"values":[[1000000000,1,"a"],[1000000000,5,"b"],[2000000000,3,"a"],[61000000000,7,"b"]]}]}]}`},
		{"field condition", `SELECT * FROM cpu WHERE usage > 2 AND usage < 7`,
			`{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","host","idle","region","usage"],"values":[[1000000000,"b",70,"us",5],[2000000000,"a",80,"eu",3]]}]}]}`},
		{"mean by host", `SELECT mean(usage), count(idle) FROM cpu GROUP BY host`,
			`{"results":[{"statement_id":0,"series":[{"name":"cpu","tags":{"host":"a"},"columns":["time","mean","count"],"values":[[0,2,2]]},{"name":"cpu","tags":{"host":"b"},"columns":["time","mean","count"],"values":[[0,6,1]]}]}]}`},
		{"group by time fill", `SELECT max(usage) FROM cpu WHERE time >= 0 AND time < 120s GROUP BY time(1m) fill(0)`,
			`{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","max"],"values":[[0,5],[60000000000,7]]}]}]}`},
		{"selector time", `SELECT last(usage) FROM cpu`,
			`{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","last"],"values":[[61000000000,7]]}]}]}`},
		{"math", `SELECT sum(usage) * 2 FROM cpu WHERE region =~ /e/`,
			`{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","sum"],"values":[[0,8]]}]}]}`},
		{"math on fields", `SELECT abs(usage - 10), sqrt(idle) FROM cpu WHERE host = 'a'`,
			`{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","abs","sqrt"],"values":[[1000000000,9,9.486832980505138],[2000000000,7,8.94427190999916]]}]}]}`},
		{"math on an aggregate", `SELECT round(mean(usage) / 3) FROM cpu`,
			`{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","round"],"values":[[0,1]]}]}]}`},
		{"elapsed", `SELECT elapsed(usage, 1s) FROM cpu WHERE host = 'a'`,
			`{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","elapsed"],"values":[[2000000000,1]]}]}]}`},
		{"top", `SELECT top(usage, 2) FROM cpu`,
			`{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","top"],"values":[[1000000000,5],[61000000000,7]]}]}]}`},
		{"distinct and count distinct", `SELECT distinct(idle) FROM cpu; SELECT count(distinct(idle)), count(DISTINCT usage) FROM cpu`,
			`{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","distinct"],"values":[[0,70],[0,90],[0,80]]}]},{"statement_id":1,"series":[{"name":"cpu","columns":["time","count","count_1"],"values":[[0,3,4]]}]}]}`},
		{"show measurements", `SHOW MEASUREMENTS`,
			`{"results":[{"statement_id":0,"series":[{"name":"measurements","columns":["name"],"values":[["cpu"],["mem"]]}]}]}`},
		{"show tag values", `SHOW TAG VALUES FROM cpu WITH KEY = "host"`,
			`{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["key","value"],"values":[["host","a"],["host","b"]]}]}]}`},
		{"show field keys", `SHOW FIELD KEYS`,
			`{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["fieldKey","fieldType"],"values":[["idle","integer"],["usage","float"]]},{"name":"mem","columns":["fieldKey","fieldType"],"values":[["used","unsigned"]]}]}]}`},
		{"show series", `SHOW SERIES FROM cpu`,
			`{"results":[{"statement_id":0,"series":[{"columns":["key"],"values":[["cpu,host=a,region=eu"],["cpu,host=b,region=us"]]}]}]}`},
		{"two statements", `SELECT count(used) FROM mem; SHOW TAG KEYS FROM mem`,
			`{"results":[{"statement_id":0,"series":[{"name":"mem","columns":["time","count"],"values":[[0,1]]}]},{"statement_id":1,"series":[{"name":"mem","columns":["tagKey"],"values":[["host"]]}]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := queryJSON(t, base, "telegraf", tt.q); got != tt.want {
				t.Errorf("%s\n got %s\nwant %s", tt.q, got, tt.want)
			}
		})
	}
}

func TestQueryErrors(t *testing.T) {
	base := startServer(t)
	write(t, base, "db", "m v=1 1")
	tests := []struct {
		params url.Values
		code   int
		want   string
	}{
		{url.Values{}, 400, `{"error":"missing required parameter \"q\""}`},
		{url.Values{"q": {"SELEC x"}}, 400, `{"error":"error parsing query: found SELEC, expected SELECT, DELETE, SHOW, CREATE, DROP, EXPLAIN, GRANT, REVOKE, ALTER, SET, KILL at line 1, char 1"}`},
		{url.Values{"q": {"SELECT v FROM m"}}, 200, `{"results":[{"statement_id":0,"error":"database name required"}]}`},
		{url.Values{"q": {"SELECT v FROM m"}, "db": {"nope"}}, 200, `{"results":[{"statement_id":0,"error":"database not found: nope"}]}`},
		{url.Values{"q": {"SELECT mean(v), v FROM m"}, "db": {"db"}}, 200, `{"results":[{"statement_id":0,"error":"mixing aggregate and non-aggregate queries is not supported"}]}`},
		{url.Values{"q": {"SELECT integral(v) FROM m"}, "db": {"db"}}, 200, `{"results":[{"statement_id":0,"error":"integral() is not supported by chronostream"}]}`},
	}
	for _, tt := range tests {
		code, body := get(t, base, tt.params)
		if code != tt.code || body != tt.want {
			t.Errorf("%v: %d %s\nwant %d %s", tt.params, code, body, tt.code, tt.want)
		}
	}
	var v map[string]any
	_, body := get(t, base, url.Values{"q": {"DROP DATABASE db"}, "db": {"db"}})
	if err := json.Unmarshal([]byte(body), &v); err != nil || !strings.Contains(body, "not supported") {
		t.Errorf("DROP DATABASE: %s", body)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{`chronostream_query_requests_total{outcome="bad_request"} 2`,
		`chronostream_query_requests_total{outcome="statement_error"} 5`, "chronostream_query_index_points 1",
		"chronostream_query_index_series 1", "chronostream_query_duration_seconds_count 6"} {
		if !strings.Contains(string(metrics), m+"\n") {
			t.Errorf("/metrics lacks %q", m)
		}
	}
}

// A query right after a write sees it: the index catches up with the
// chronicle's newest block before answering.
func TestQueryReadsItsWrites(t *testing.T) {
	base := startServer(t)
	for i := range 25 {
		write(t, base, "ryw", fmt.Sprintf("m v=%d %d", i, i+1))
		want := fmt.Sprintf(`{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","count"],"values":[[0,%d]]}]}]}`, i+1)
		if got := queryJSON(t, base, "ryw", "SELECT count(v) FROM m"); got != want {
			t.Fatalf("after write %d: %s", i, got)
		}
	}
}

func TestQueryOutOfOrderAndDuplicatePoints(t *testing.T) {
	base := startServer(t)
	write(t, base, "ooo", "m,h=a v=3 30\nm,h=a v=1 10")
	write(t, base, "ooo", "m,h=a v=2 20\nm,h=a v=9 10") // 10 again: the last written wins, as in InfluxDB
	want := `{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","v"],"values":[[10,9],[20,2],[30,3]]}]}]}`
	if got := queryJSON(t, base, "ooo", "SELECT v FROM m"); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	want = `{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","sum","count"],"values":[[0,14,3]]}]}]}`
	if got := queryJSON(t, base, "ooo", "SELECT sum(v), count(v) FROM m"); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// Events retention evicts leave the index; a deleted chronicle is no
// database; one created again starts empty.
func TestQueryFollowsRetentionAndDeletion(t *testing.T) {
	s := servertest.RunServer(t, server.Options{AutoCreate: true})
	base := "http://" + s.Addr()
	for i := range 3 { // three requests, three blocks
		write(t, base, "ret", fmt.Sprintf("m v=%d %d", i, i+1))
	}
	if got := queryJSON(t, base, "ret", "SELECT count(v) FROM m"); !strings.Contains(got, "[[0,3]]") {
		t.Fatalf("before retention: %s", got)
	}
	ctx := context.Background()
	if err := s.Store().SetRetention(ctx, "ret", store.Retention{MaxEvents: 1}); err != nil {
		t.Fatal(err)
	}
	want := `{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","v"],"values":[[3,2]]}]}]}`
	if got := queryJSON(t, base, "ret", "SELECT v FROM m"); got != want {
		t.Errorf("after retention kept one event: %s\nwant %s", got, want)
	}
	if err := s.Store().DeleteChronicle(ctx, "ret"); err != nil {
		t.Fatal(err)
	}
	if got := queryJSON(t, base, "ret", "SELECT v FROM m"); got != `{"results":[{"statement_id":0,"error":"database not found: ret"}]}` {
		t.Errorf("after deletion: %s", got)
	}
	write(t, base, "ret", "m v=7 70")
	want = `{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","v"],"values":[[70,7]]}]}]}`
	if got := queryJSON(t, base, "ret", "SELECT v FROM m"); got != want {
		t.Errorf("recreated: %s\nwant %s", got, want)
	}
}

// A restarted server rebuilds the index from the log.
func TestQueryIndexRebuiltAfterRestart(t *testing.T) {
	dir := t.TempDir()
	first, err := server.New(server.Options{AutoCreate: true, DataDir: dir, HTTPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := "http://" + first.Addr()
	write(t, base, "re", "cpu,host=a u=1 1000000000\ncpu,host=b u=2 2000000000\ncpu,host=a u=3 61000000000")
	q := "SELECT max(u) FROM cpu WHERE time >= 0 AND time < 2m GROUP BY time(1m), host"
	before := queryJSON(t, base, "re", q)
	if err := first.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	second := servertest.RunServer(t, server.Options{AutoCreate: true, DataDir: dir})
	if after := queryJSON(t, "http://"+second.Addr(), "re", q); after != before {
		t.Errorf("after restart: %s\nbefore:        %s", after, before)
	}
}

func TestQueryPostChunkedAndAuth(t *testing.T) {
	s := servertest.RunServer(t, server.Options{AutoCreate: true, Tokens: []string{"sekret"}})
	base := "http://" + s.Addr()
	req, _ := http.NewRequest("POST", base+"/write?db=a", strings.NewReader("m v=1 1\nm v=2 2\nm v=3 3"))
	req.Header.Set("Authorization", "Token sekret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: %v %v", resp, err)
	}
	resp.Body.Close()
	var auth1x url.Values
	post := func(form url.Values, auth func(*http.Request)) (int, string) {
		req, _ := http.NewRequest("POST", base+"/query?"+auth1x.Encode(), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth != nil {
			auth(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	form := url.Values{"db": {"a"}, "q": {"SELECT v FROM m"}, "epoch": {"ns"}, "chunked": {"true"}, "chunk_size": {"2"}}
	if code, _ := post(form, nil); code != http.StatusUnauthorized {
		t.Errorf("no token: %d", code)
	}
	want := `{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","v"],"values":[[1,1],[2,2]],"partial":true}],"partial":true}]}` + "\n" +
		`{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","v"],"values":[[3,3]]}]}]}`
	for name, auth := range map[string]func(*http.Request){
		"basic": func(r *http.Request) { r.SetBasicAuth("grafana", "sekret") },
		"token": func(r *http.Request) { r.Header.Set("Authorization", "Token sekret") },
	} {
		if code, body := post(form, auth); code != http.StatusOK || body != want {
			t.Errorf("%s: %d %s\nwant %s", name, code, body, want)
		}
	}
	// InfluxDB 1.x clients (influxdb-python, influxdb-java) send u and p
	// in the POST form body.
	withPass := url.Values{"u": {"grafana"}, "p": {"sekret"}}
	for k, v := range form {
		withPass[k] = v
	}
	if code, body := post(withPass, nil); code != http.StatusOK || body != want {
		t.Errorf("u/p in the form: %d %s", code, body)
	}
	withPass.Set("p", "wrong")
	if code, _ := post(withPass, nil); code != http.StatusUnauthorized {
		t.Errorf("a wrong p in the form: %d", code)
	}
	auth1x = url.Values{"u": {"grafana"}, "p": {"sekret"}} // InfluxDB 1.x's u/p parameters
	if code, _ := post(form, nil); code != http.StatusOK {
		t.Errorf("u/p: %d", code)
	}
}

// Queries running while writers append (some points out of order) see at
// least what was acknowledged before they started, and never fail.
func TestQueryWhileWriting(t *testing.T) {
	base := startServer(t)
	write(t, base, "conc", "m,w=0 v=0 1") // (a time of 0 is the ingest time in chronostream)
	var acked atomic.Int64
	acked.Store(1)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				ts := int64(1000 - i) // newest first: out of order
				resp, err := http.Post(base+"/write?db=conc", "text/plain", strings.NewReader(fmt.Sprintf("m,w=%d v=%d %d", w, i, ts)))
				if err != nil {
					errs <- err
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					errs <- fmt.Errorf("write: %s", resp.Status)
					return
				}
				acked.Add(1)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	queries := []string{"SELECT count(v) FROM m", "SELECT count(v) FROM m WHERE time >= 0 AND time < 1h GROUP BY time(1h)"}
	var failure string
	for i := 0; failure == ""; i++ {
		min := acked.Load()
		var r struct {
			Results []struct {
				Series []struct{ Values [][]float64 }
				Error  string
			}
		}
		body := queryJSON(t, base, "conc", queries[i%2])
		if err := json.Unmarshal([]byte(body), &r); err != nil || r.Results[0].Error != "" || len(r.Results[0].Series) != 1 {
			failure = fmt.Sprintf("%s: %v %s (then %s)", queries[i%2], err, body, queryJSON(t, base, "conc", "SELECT count(v) FROM m; SELECT * FROM m WHERE time < 1h"))
		} else if n := int64(r.Results[0].Series[0].Values[0][1]); n < min {
			failure = fmt.Sprintf("%s: counted %d points, %d were acknowledged before the query (then %s)", queries[i%2], n, min, queryJSON(t, base, "conc", "SELECT * FROM m"))
		}
		select {
		case <-done:
			if got := queryJSON(t, base, "conc", queries[0]); !strings.Contains(got, "[[0,121]]") {
				failure = "at the end: " + got
			}
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if failure != "" {
				t.Fatal(failure)
			}
			return
		default:
		}
	}
	wg.Wait() // a failure: let the writers finish before the server stops
	t.Fatal(failure)
}

// Events that are not line protocol (NDJSON here) are points too: their
// tags and typed fields come from the JSON body.
func TestQueryJSONEvents(t *testing.T) {
	base := startServer(t)
	body := `{"time":"2026-01-01T00:00:00Z","tags":{"host":"a"},"cpu":0.5,"n":3,"msg":"up","ok":true}` + "\n" +
		`{"time":"2026-01-01T00:00:10Z","tags":{"host":"b"},"cpu":1.5,"n":4}` + "\n" +
		`{"time":"2026-01-01T00:00:20Z","msg":"no numbers"}` + "\n"
	resp, err := http.Post(base+"/?chronicle=app&story=web", "application/x-ndjson", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := `{"results":[{"statement_id":0,"series":[{"name":"web","columns":["time","cpu","n","ok","msg","host"],"values":[[1767225600000000000,0.5,3,true,"up","a"],[1767225610000000000,1.5,4,null,null,"b"],[1767225620000000000,null,null,null,"no numbers",null]]}]},` +
		`{"statement_id":1,"series":[{"name":"web","columns":["fieldKey","fieldType"],"values":[["cpu","float"],["msg","string"],["n","integer"],["ok","boolean"]]}]}]}`
	if got := queryJSON(t, base, "app", "SELECT cpu, n, ok, msg, host FROM web; SHOW FIELD KEYS"); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
