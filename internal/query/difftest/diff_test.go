package difftest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

// repoRoot is where testdata/influxql and deploy/grafana live.
func repoRoot(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// pair is the two servers under comparison, holding the same data.
type pair struct {
	influx, chrono string // base URLs
	data           *dataset
	vars           map[string]string
}

// startPair starts chronostream in-process and a real influxd, writes the
// dataset to both through /write, and waits until chronostream's /query
// counts every point (its indexes may follow the log a moment behind).
func startPair(t *testing.T) *pair {
	t.Helper()
	influx := testutil.StartInfluxDB(t)
	s := servertest.RunServer(t, server.Options{AutoCreate: true})
	p := &pair{influx: influx.URL(), chrono: "http://" + s.Addr(), data: newDataset(time.Now().UTC().Truncate(time.Hour))}
	p.vars = vars(p.data)
	for _, db := range databases {
		influx.MustQuery("CREATE DATABASE "+quoteIdent(db), "")
		for _, body := range p.data.bodies[db] {
			write(t, p.influx, db, body)
			write(t, p.chrono, db, body)
		}
	}
	// InfluxDB holds every point (the dataset has no two points of a
	// series at one time, which InfluxDB would merge and a log would not).
	for key, n := range p.data.counts {
		if got, err := countField(p.influx, key); err != nil || got != n {
			t.Fatalf("influxdb holds %d points of %s (%v), want %d: the dataset overwrites points", got, key, err, n)
		}
	}
	if a := ask(p.chrono, entry{db: dbMain, method: "GET"}, "SHOW DATABASES", ""); a.status == http.StatusNotFound || a.status == http.StatusMethodNotAllowed {
		t.Fatalf("chronostream has no InfluxQL /query endpoint yet: HTTP %d", a.status)
	}
	var lag string
	testutil.Eventually(t, 20*time.Second, func() bool {
		for key, n := range p.data.counts {
			got, err := countField(p.chrono, key)
			if err != nil || got != n {
				if l := fmt.Sprintf("%s: %d points, want %d (%v)", key, got, n, err); l != lag {
					t.Logf("waiting for chronostream: %s", l)
					lag = l
				}
				return false
			}
		}
		return true
	}, "chronostream's /query counts every written point (the last count is logged above)")
	return p
}

func write(t *testing.T, base, db, body string) {
	t.Helper()
	resp, err := http.Post(base+"/write?precision=ns&db="+url.QueryEscape(db), "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("%s/write?db=%s: %s: %s", base, db, resp.Status, b)
	}
}

// countField asks SELECT count(field) FROM measurement, key being "db measurement field".
func countField(base, key string) (int, error) {
	parts := strings.SplitN(key, " ", 3)
	e := entry{db: parts[0], method: "GET"}
	a := ask(base, e, fmt.Sprintf("SELECT count(%s) FROM %s", quoteIdent(parts[2]), quoteIdent(parts[1])), "ns")
	if a.err != nil {
		return 0, a.err
	}
	var r struct {
		Results []struct {
			Error  string
			Series []struct{ Values [][]json.Number }
		}
	}
	if err := json.Unmarshal(a.body, &r); err != nil || a.status != http.StatusOK {
		return 0, fmt.Errorf("HTTP %d: %s", a.status, truncate(string(a.body), 200))
	}
	if len(r.Results) != 1 || r.Results[0].Error != "" || len(r.Results[0].Series) != 1 || len(r.Results[0].Series[0].Values) != 1 {
		return 0, fmt.Errorf("unexpected answer: %s", truncate(string(a.body), 200))
	}
	n, err := r.Results[0].Series[0].Values[0][1].Int64()
	return int(n), err
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}

// mismatch is one query whose answers differ.
type mismatch struct {
	what, why      string
	influx, chrono string
}

// compare runs q on both servers with each epoch the entry names and
// records every difference.
func (p *pair) compare(e entry, q string, out *[]mismatch) int {
	n := 0
	for _, epoch := range e.epochs {
		want := ask(p.influx, e, q, epoch)
		got := ask(p.chrono, e, q, epoch)
		n++
		if d := diff(want, got); d != "" {
			ep := epoch
			if ep == "" {
				ep = "rfc3339"
			}
			*out = append(*out, mismatch{
				what:   fmt.Sprintf("%s [db=%s epoch=%s %s]\n    %s", e, e.db, ep, e.method, strings.ReplaceAll(q, "\n", "\n    ")),
				why:    d,
				influx: fmt.Sprintf("%d %s", want.status, truncate(strings.TrimSpace(string(want.body)), 400)),
				chrono: fmt.Sprintf("%d %s", got.status, truncate(strings.TrimSpace(string(got.body)), 400)),
			})
		}
	}
	return n
}

// report fails the test once with every mismatch of the run.
func report(t *testing.T, ran int, ms []mismatch) {
	t.Helper()
	if len(ms) == 0 {
		t.Logf("%d requests: chronostream answered as InfluxDB 1.6 did", ran)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d requests answered differently from InfluxDB 1.6:\n", len(ms), ran)
	for i, m := range ms {
		fmt.Fprintf(&b, "\n%d. %s\n   difference: %s\n   influxdb:     %s\n   chronostream: %s\n", i+1, m.what, m.why, m.influx, m.chrono)
	}
	t.Error(b.String())
}

// TestInfluxQL is the differential test: one server pair, loaded once,
// answers the corpus, the Grafana dashboard's queries and the statements
// we do not support.
func TestInfluxQL(t *testing.T) {
	root := repoRoot(t)
	corpus, err := loadCorpus(filepath.Join(root, "testdata", "influxql", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var supported, unsupported []entry
	for _, e := range corpus {
		if filepath.Base(e.file) == "unsupported.txt" {
			unsupported = append(unsupported, e)
		} else {
			supported = append(supported, e)
		}
	}
	if len(supported) < 120 {
		t.Fatalf("the corpus has %d queries; it must cover every feature (at least 120)", len(supported))
	}
	p := startPair(t)

	t.Run("corpus", func(t *testing.T) {
		var ms []mismatch
		ran := 0
		for _, e := range supported {
			q, err := expand(e.q, p.vars)
			if err != nil {
				t.Errorf("%s: %v", e, err)
				continue
			}
			ran += p.compare(e, q, &ms)
		}
		report(t, ran, ms)
	})

	t.Run("grafana", func(t *testing.T) {
		var ms []mismatch
		ran := 0
		for _, e := range dashboardQueries(t, root, p) {
			ran += p.compare(e, e.q, &ms)
		}
		report(t, ran, ms)
	})

	t.Run("unsupported", func(t *testing.T) {
		if len(unsupported) == 0 {
			t.Fatal("testdata/influxql/unsupported.txt has no statements")
		}
		for _, e := range unsupported {
			q, err := expand(e.q, p.vars)
			if err != nil {
				t.Errorf("%s: %v", e, err)
				continue
			}
			if msg := refusal(ask(p.chrono, e, q, "")); msg != "" {
				t.Errorf("%s: %s", e, msg)
			}
		}
	})
}

// refusal checks an answer to a statement we do not support: an InfluxDB
// error (a top-level "error", or an "error" in every result) and no data.
// It returns what is wrong, or "".
func refusal(a answer) string {
	if a.err != nil {
		return a.err.Error()
	}
	var r struct {
		Error   string
		Results []struct {
			Error  string
			Series []json.RawMessage
		}
	}
	if err := json.Unmarshal(a.body, &r); err != nil {
		return fmt.Sprintf("HTTP %d, not InfluxDB's JSON: %s", a.status, truncate(string(a.body), 200))
	}
	if r.Error != "" {
		if a.status < 400 {
			return fmt.Sprintf("an error with HTTP %d, want a 4xx: %s", a.status, r.Error)
		}
		return ""
	}
	if len(r.Results) == 0 {
		return fmt.Sprintf("HTTP %d without an error: %s", a.status, truncate(string(a.body), 200))
	}
	for _, res := range r.Results {
		if res.Error == "" || len(res.Series) > 0 {
			return fmt.Sprintf("answered with a result, want an error: %s", truncate(string(a.body), 200))
		}
	}
	return ""
}
