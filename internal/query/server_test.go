package query_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chronostream/chronostream/internal/server"
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
}
