package query

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/influxql"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/query/influxjson"
	"github.com/chronostream/chronostream/internal/query/tsdb"
	"github.com/chronostream/chronostream/internal/store"
)

// memSource serves DBs built in memory (no log).
type memSource map[string]*tsdb.DB

func (m memSource) Sync(_ context.Context, name string) (*tsdb.DB, error) {
	if db := m[name]; db != nil {
		return db, nil
	}
	return nil, fmt.Errorf("chronicle %q: %w", name, store.ErrNotFound)
}

type memCatalog struct{}

func (memCatalog) ChronicleNames(context.Context) ([]string, error) { return []string{"db"}, nil }
func (memCatalog) CreateChronicle(context.Context, string, store.Retention) error {
	return nil
}

// testDB holds cpu points of three hosts over six hours, every 7 s with
// random gaps, integers and floats, written partly out of order.
func testDB(t testing.TB, seed uint64) *tsdb.DB {
	r := rand.New(rand.NewPCG(seed, 7))
	db := tsdb.NewDB("db", tsdb.DefaultRollups)
	db.Lock()
	defer db.Unlock()
	var pts [][3]int64
	for h := range 3 {
		for ts := int64(0); ts < int64(6*time.Hour); ts += int64(7 * time.Second) {
			if r.IntN(10) > 0 {
				pts = append(pts, [3]int64{int64(h), ts, r.Int64N(1000) - 300})
			}
		}
	}
	for i := range pts { // a little disorder
		if j := i + r.IntN(4); j < len(pts) {
			pts[i], pts[j] = pts[j], pts[i]
		}
	}
	for _, p := range pts {
		db.Insert("cpu", map[string]string{"host": fmt.Sprintf("h%d", p[0]), "dc": []string{"a", "b"}[p[0]%2]}, 1e18+p[1],
			map[string]event.Value{"f": event.Float(float64(p[2]) / 7), "i": event.Int(p[2])})
	}
	for _, m := range db.Measurements() {
		for _, s := range db.Measurement(m).Series() {
			for _, f := range []string{"f", "i"} {
				s.Column(f).Prepare()
			}
		}
	}
	return db
}

func run(t testing.TB, e *Engine, q string) []influxjson.Result {
	t.Helper()
	res, err := e.Execute(context.Background(), q, "db")
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return res
}

// sameResults compares results, floats to a relative 1e-9 (rollups add
// sums in another order than the raw points).
func sameResults(a, b []influxjson.Result) error {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	var va, vb any
	_ = json.Unmarshal(ja, &va)
	_ = json.Unmarshal(jb, &vb)
	return sameJSON("", va, vb)
}

func sameJSON(path string, a, b any) error {
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return fmt.Errorf("%s: %v vs %v", path, a, b)
		}
		for i := range x {
			if err := sameJSON(fmt.Sprintf("%s[%d]", path, i), x[i], y[i]); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return fmt.Errorf("%s: %v vs %v", path, a, b)
		}
		for k := range x {
			if err := sameJSON(path+"."+k, x[k], y[k]); err != nil {
				return err
			}
		}
		return nil
	case float64:
		y, ok := b.(float64)
		if !ok || math.Abs(x-y) > 1e-9*math.Max(1, math.Abs(x)) {
			return fmt.Errorf("%s: %v vs %v", path, a, b)
		}
		return nil
	}
	if fmt.Sprint(a) != fmt.Sprint(b) {
		return fmt.Errorf("%s: %v vs %v", path, a, b)
	}
	return nil
}

// Rollups answer exactly what the raw points answer: for every mergeable
// function, windows aligned or not with the rollups, ranges cutting
// buckets at random places.
func TestRollupsMatchRawPoints(t *testing.T) {
	db := testDB(t, 1)
	rolled := &Engine{Index: memSource{"db": db}, Catalog: memCatalog{}}
	raw := &Engine{Index: memSource{"db": db}, Catalog: memCatalog{}, rawOnly: true}
	r := rand.New(rand.NewPCG(3, 4))
	fns := []string{"count", "sum", "mean", "min", "max", "first", "last", "spread"}
	groups := []string{"", "GROUP BY time(1m)", "GROUP BY time(5m), host", "GROUP BY time(1h) fill(0)",
		"GROUP BY time(2h, 30m), dc", "GROUP BY time(90s) fill(previous)", "GROUP BY host"}
	for i := range 150 {
		lo := int64(1e18) + r.Int64N(int64(5*time.Hour)) - int64(time.Hour)
		hi := lo + r.Int64N(int64(4*time.Hour))
		f := fns[r.IntN(len(fns))]
		field := []string{"f", "i"}[r.IntN(2)]
		q := fmt.Sprintf("SELECT %s(%s) FROM cpu WHERE time >= %d AND time <= %d %s", f, field, lo, hi, groups[i%len(groups)])
		if err := sameResults(run(t, rolled, q), run(t, raw, q)); err != nil {
			t.Fatalf("%s\nrollups and raw points differ: %v", q, err)
		}
	}
}

// The engine never panics and answers every statement with a result or an
// error, whatever the query text.
func FuzzExecute(f *testing.F) {
	for _, q := range []string{
		"SELECT mean(f) FROM cpu WHERE time > 0 GROUP BY time(1m), * fill(linear)",
		"SELECT * FROM cpu WHERE host =~ /h[12]/ AND f > 3 ORDER BY time DESC LIMIT 3 OFFSET 1",
		"SELECT derivative(max(i), 1s) FROM cpu WHERE time >= 1000000000000000000 GROUP BY time(10m)",
		"SELECT percentile(f, 90), median(i) FROM /c.u/ GROUP BY dc SLIMIT 1",
		"SELECT max(f) FROM (SELECT mean(f) AS f FROM cpu GROUP BY time(1h), host) GROUP BY time(2h)",
		"SELECT f + i * 2, host FROM cpu WHERE time = 1000000000000000000",
		"SHOW TAG VALUES WITH KEY IN (\"host\", \"dc\") WHERE dc = 'a'",
		"SHOW SERIES; SHOW FIELD KEYS; SHOW MEASUREMENTS WITH MEASUREMENT =~ /x/ LIMIT 1",
		"SELECT difference(f) FROM cpu WHERE time < now() - 1d",
		"SELECT count(f) FROM cpu WHERE time > 9223372036854775806",
		"SELECT derivative(mean(f)) FROM cpu WHERE time >= -9223372036854775806 AND time < 1000003600000000000 GROUP BY time(1h)",
	} {
		f.Add(q)
	}
	db := testDB(f, 2)
	e := &Engine{Index: memSource{"db": db}, Catalog: memCatalog{}, MaxRows: 10000}
	f.Fuzz(func(t *testing.T, q string) {
		res, err := e.Execute(context.Background(), q, "db")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "error parsing query") {
				t.Fatalf("%q: %v", q, err)
			}
			return
		}
		parsed, _ := influxql.ParseQuery(q)
		if len(res) == 0 && len(parsed.Statements) > 0 {
			t.Fatalf("%q: no result", q)
		}
	})
}

// The row bound holds over a request's statements, not only each one: the
// answer is held whole before it is written.
func TestMaxRowsOverStatements(t *testing.T) {
	db := tsdb.NewDB("db", tsdb.DefaultRollups)
	db.Lock()
	for i := range 4 {
		db.Insert("m", nil, int64(i+1), map[string]event.Value{"v": event.Int(int64(i))})
	}
	db.Unlock()
	e := &Engine{Index: memSource{"db": db}, Catalog: memCatalog{}, MaxRows: 10}
	res, err := e.Execute(context.Background(), "SELECT v FROM m; SELECT v FROM m; SELECT v FROM m; SELECT v FROM m", "db")
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		t.Logf("statement %d: %d series, err %v", r.StatementID, len(r.Series), r.Err)
		if i < 2 && (r.Err != nil || len(r.Series) != 1) {
			t.Errorf("statement %d within the bound: %v", i, r.Err)
		}
	}
	if len(res) < 3 || res[2].Err == nil || !strings.Contains(res[2].Err.Error(), "max-select-point") || len(res[2].Series) != 0 {
		t.Errorf("the statement crossing the bound answered %+v, want max-select-point", res[2:])
	}
}
