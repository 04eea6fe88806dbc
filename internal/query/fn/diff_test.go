package fn_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/query/fn"
	"github.com/chronostream/chronostream/internal/testutil"
)

// The differential tests write small datasets into a real InfluxDB 1.6,
// ask it the same question the functions answer, and compare: the
// semantics asserted are the live server's, not anyone's memory of them.

const diffDB = "fn"

// sample is one point of a dataset, in series s.
type sample struct {
	s string
	t int64 // seconds
	v fn.Value
}

type dataset struct {
	name    string // the measurement
	samples []sample
}

var datasets = []dataset{
	{"floats", []sample{{"a", 1, 1.0}, {"a", 2, 2.5}, {"a", 3, -3.0}, {"a", 4, 2.5}, {"b", 1, 7.0}, {"b", 3, 0.5}, {"b", 6, -0.25}}},
	{"ints", []sample{{"a", 1, int64(1)}, {"a", 2, int64(4)}, {"a", 3, int64(-2)}, {"a", 4, int64(4)}, {"b", 1, int64(7)}, {"b", 3, int64(0)}}},
	{"oddints", []sample{{"a", 1, int64(5)}, {"a", 2, int64(3)}, {"a", 3, int64(9)}, {"a", 5, int64(3)}, {"a", 8, int64(-11)}}},
	{"onefloat", []sample{{"a", 7, 3.25}}},
	{"oneint", []sample{{"a", 7, int64(-4)}}},
	{"ties", []sample{{"a", 1, 5.0}, {"b", 1, 5.0}, {"c", 1, 9.0}, {"a", 2, 9.0}, {"b", 2, 1.0}, {"c", 2, 1.0}}},
	{"tieints", []sample{{"a", 1, int64(2)}, {"b", 1, int64(8)}, {"a", 2, int64(8)}, {"b", 2, int64(2)}, {"c", 2, int64(5)}}},
	{"equal", []sample{{"a", 1, 4.0}, {"a", 2, 4.0}, {"a", 3, 4.0}}},
	{"strings", []sample{{"a", 1, "b"}, {"a", 2, "a"}, {"a", 3, "c"}, {"a", 4, "a"}, {"b", 1, "z"}, {"b", 3, "z"}}},
	{"bools", []sample{{"a", 1, true}, {"a", 2, false}, {"a", 3, true}, {"a", 4, false}, {"b", 1, false}, {"b", 3, true}, {"b", 4, true}}},
	{"negatives", []sample{{"a", 1, -1.5}, {"a", 2, -7.25}, {"a", 3, -0.125}, {"a", 4, -7.25}}},
	{"overflow", []sample{{"a", 1, int64(math.MaxInt64)}, {"a", 2, int64(1)}, {"a", 3, int64(math.MaxInt64)}, {"a", 4, int64(math.MinInt64)}}}, // sums wrap, as InfluxDB's int64 sums do
	{"fractions", []sample{{"a", 1, 0.1}, {"a", 2, 0.2}, {"a", 3, 0.3}, {"a", 4, 1e-7}, {"a", 5, 1e21}, {"a", 6, 0.7}}},
}

func (d dataset) lineProtocol() string {
	var b strings.Builder
	for _, s := range d.samples {
		fmt.Fprintf(&b, "%s,s=%s v=%s %d\n", d.name, s.s, lpValue(s.v), s.t*int64(time.Second))
	}
	return b.String()
}

func lpValue(v fn.Value) string {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case int64:
		return strconv.FormatInt(x, 10) + "i"
	case string:
		return strconv.Quote(x)
	case bool:
		return strconv.FormatBool(x)
	}
	panic(fmt.Sprintf("no line protocol for %T", v))
}

// points are the dataset's samples in time order, ties in series order: the
// order the reducers are fed in.
func (d dataset) points() []fn.Point {
	s := append([]sample(nil), d.samples...)
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].t != s[j].t {
			return s[i].t < s[j].t
		}
		return s[i].s < s[j].s
	})
	out := make([]fn.Point, len(s))
	for i, x := range s {
		out[i] = fn.Point{Time: x.t * int64(time.Second), Value: x.v}
	}
	return out
}

// influx is one InfluxDB for the package's differential tests.
type influx struct {
	t  *testing.T
	db *testutil.InfluxDB
}

func startInflux(t *testing.T, sets ...dataset) *influx {
	t.Helper()
	db := testutil.StartInfluxDB(t)
	db.MustQuery("CREATE DATABASE "+diffDB, "")
	var body strings.Builder
	for _, d := range sets {
		body.WriteString(d.lineProtocol())
	}
	resp, err := http.Post(db.URL()+"/write?db="+diffDB, "text/plain", strings.NewReader(body.String()))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: %s: %s", resp.Status, b)
	}
	return &influx{t: t, db: db}
}

// rows runs q and returns the rows of its single series (none when the
// result is empty) or the statement's error.
func (in *influx) rows(q string) ([][]any, string) {
	in.t.Helper()
	rs, err := in.db.Query(q, diffDB)
	if err != nil {
		in.t.Fatalf("%s: %v", q, err)
	}
	if len(rs) != 1 {
		in.t.Fatalf("%s: %d results", q, len(rs))
	}
	if rs[0].Error != "" {
		return nil, rs[0].Error
	}
	switch len(rs[0].Series) {
	case 0:
		return nil, ""
	case 1:
		return rs[0].Series[0].Values, ""
	}
	in.t.Fatalf("%s: %d series", q, len(rs[0].Series))
	return nil, ""
}

// sameValue compares InfluxDB's JSON value (json.Number for numbers) with
// ours: the same JSON text, or floats within a relative 1e-12 (InfluxDB
// reduces several series in its own order, so float sums may differ in the
// last bit).
func sameValue(theirs any, ours fn.Value) bool {
	if theirs == nil || ours == nil {
		return theirs == nil && ours == nil
	}
	n, isNum := theirs.(json.Number)
	if !isNum {
		b, _ := json.Marshal(ours)
		t, _ := json.Marshal(theirs)
		return string(b) == string(t)
	}
	b, err := json.Marshal(ours)
	if err != nil {
		return false
	}
	if string(b) == n.String() {
		return true
	}
	of, ok := ours.(float64)
	if !ok {
		return false // an integer must match exactly
	}
	tf, err := n.Float64()
	if err != nil {
		return false
	}
	return math.Abs(of-tf) <= 1e-12*math.Max(math.Abs(of), math.Abs(tf))
}

func rowTime(t *testing.T, v any) int64 {
	t.Helper()
	n, err := v.(json.Number).Int64()
	if err != nil {
		t.Fatalf("time %v: %v", v, err)
	}
	return n
}

// TestReducersAgainstInfluxDB runs every reducer over every dataset and
// compares with InfluxDB's answer to SELECT f(v) FROM <dataset>: the value
// and its JSON type, the time (the selected point's for selectors, 0 for
// aggregates), empty answers (percentile out of range) and the type errors
// (CheckType).
func TestReducersAgainstInfluxDB(t *testing.T) {
	in := startInflux(t, datasets...)
	type call struct {
		name string
		args []fn.Value
	}
	calls := []call{{"count", nil}, {"sum", nil}, {"mean", nil}, {"min", nil}, {"max", nil}, {"first", nil},
		{"last", nil}, {"spread", nil}, {"stddev", nil}, {"median", nil}, {"mode", nil}, {"integral", nil},
		{"integral", []fn.Value{int64(time.Minute)}}}
	for _, p := range []float64{0, 1, 10, 25, 33.3, 50, 50.5, 60, 67, 75, 90, 99, 100, 101, 150, -1} {
		calls = append(calls, call{"percentile", []fn.Value{p}})
	}
	for _, d := range datasets {
		for _, c := range calls {
			for _, desc := range []bool{false, true} {
				q := fmt.Sprintf("SELECT %s(v%s) FROM %s", c.name, argList(c.args), d.name)
				if desc {
					if c.name == "integral" {
						continue // InfluxDB's descending integral is a time of MaxTime and a negated area
					}
					q += " ORDER BY time DESC"
				}
				if c.name == "integral" && (d.name == "ties" || d.name == "tieints") {
					// integral keeps the last of the points at one time, and
					// InfluxDB merges series at one time in no defined order.
					continue
				}
				t.Run(q, func(t *testing.T) {
					rows, qerr := in.rows(q)
					pts := d.points()
					if desc {
						slices.Reverse(pts)
					}
					if err := fn.CheckType(c.name, pts[0].Value); err != nil || qerr != "" {
						if err == nil || err.Error() != qerr {
							t.Fatalf("error: influxdb %q, CheckType %v", qerr, err)
						}
						return
					}
					r, err := fn.NewReducer(c.name, c.args)
					if err != nil {
						t.Fatal(err)
					}
					for _, p := range pts {
						r.Add(p)
					}
					got, ok := r.Result()
					if !ok {
						if len(rows) != 0 {
							t.Fatalf("no result, influxdb %v", rows)
						}
						return
					}
					if len(rows) != 1 {
						t.Fatalf("got %v, influxdb rows %v", got, rows)
					}
					wantTime := rowTime(t, rows[0][0])
					if !fn.IsSelector(c.name) && got.Time != 0 {
						t.Errorf("aggregate time %d, want 0", got.Time)
					}
					if fn.IsSelector(c.name) && got.Time != wantTime {
						t.Errorf("time %d, influxdb %d", got.Time, wantTime)
					}
					if !sameValue(rows[0][1], got.Value) {
						t.Errorf("value %#v, influxdb %v", got.Value, rows[0][1])
					}
					// Reset makes a reducer reusable for the next window.
					r.Reset()
					if _, ok := r.Result(); ok {
						t.Error("Result after Reset is not empty")
					}
				})
			}
		}
	}
}

func argList(args []fn.Value) string {
	var b strings.Builder
	for _, a := range args {
		switch x := a.(type) {
		case int64:
			b.WriteString(", " + time.Duration(x).String())
		case float64:
			b.WriteString(", " + strconv.FormatFloat(x, 'g', -1, 64))
		}
	}
	return b.String()
}

func mustQuery(t *testing.T, in *influx, q string) [][]any {
	t.Helper()
	rows, err := in.rows(q)
	if err != "" {
		t.Fatalf("%s: %s", q, err)
	}
	return rows
}

func comparePoints(t *testing.T, got []fn.Point, rows [][]any) {
	t.Helper()
	if len(got) != len(rows) {
		t.Fatalf("%d points %v, influxdb %d rows %v", len(got), got, len(rows), rows)
	}
	for i, p := range got {
		if tm := rowTime(t, rows[i][0]); tm != p.Time {
			t.Errorf("row %d: time %d, influxdb %d", i, p.Time, tm)
		}
		if !sameValue(rows[i][1], p.Value) {
			t.Errorf("row %d: value %#v, influxdb %v", i, p.Value, rows[i][1])
		}
	}
}

// gaps are single-series datasets with empty windows between their points,
// for GROUP BY time, fill and the transformations.
var gaps = []dataset{
	{"gapints", []sample{{"a", 10, int64(1)}, {"a", 40, int64(2)}, {"a", 45, int64(9)}, {"a", 50, int64(10)}, {"a", 90, int64(-3)}, {"a", 93, int64(-4)}}},
	{"gapfloats", []sample{{"a", 10, 1.5}, {"a", 12, 0.25}, {"a", 40, 4.0}, {"a", 50, 10.0}, {"a", 51, 2.0}, {"a", 90, -2.5}}},
}

// TestGroupByTimeFillAgainstInfluxDB reduces each 10 s window and fills the
// empty ones (Fill, CallFill) and compares with InfluxDB's GROUP BY time(10s)
// fill(…): count's 0 under fill(null), previous and linear at the edges,
// linear on integers (truncated), a float fill(number) on an integer series.
func TestGroupByTimeFillAgainstInfluxDB(t *testing.T) {
	in := startInflux(t, gaps...)
	const from, to, every = 0, 110, 10
	fills := []struct {
		clause string
		mode   fn.FillMode
		number fn.Value
	}{
		{"", fn.FillNull, nil}, {"fill(null)", fn.FillNull, nil}, {"fill(none)", fn.FillNone, nil},
		{"fill(0)", fn.FillNumber, int64(0)}, {"fill(-2.7)", fn.FillNumber, -2.7},
		{"fill(previous)", fn.FillPrevious, nil}, {"fill(linear)", fn.FillLinear, nil},
	}
	var windows []int64
	for w := int64(from); w < to; w += every {
		windows = append(windows, w*int64(time.Second))
	}
	for _, d := range gaps {
		for _, name := range []string{"count", "sum", "mean", "min", "max", "first", "last", "spread", "median", "stddev"} {
			for _, f := range fills {
				for _, desc := range []bool{false, true} {
					q := fmt.Sprintf("SELECT %s(v) FROM %s WHERE time >= %ds AND time < %ds GROUP BY time(%ds) %s", name, d.name, from, to, every, f.clause)
					if desc {
						q += " ORDER BY time DESC"
					}
					t.Run(q, func(t *testing.T) {
						rows := mustQuery(t, in, q)
						r, err := fn.NewReducer(name, nil)
						if err != nil {
							t.Fatal(err)
						}
						vals := make([]fn.Point, len(windows))
						present := make([]bool, len(windows))
						pts := d.points()
						for i, w := range windows {
							r.Reset()
							for _, p := range pts {
								if p.Time >= w && p.Time < w+every*int64(time.Second) {
									r.Add(p)
								}
							}
							p, ok := r.Result()
							vals[i], present[i] = fn.Point{Time: w, Value: p.Value}, ok
						}
						ws := windows
						if desc {
							// The windows in output order: fill(previous) carries
							// a later window's value back, as InfluxDB does.
							ws = slices.Clone(windows)
							slices.Reverse(ws)
							slices.Reverse(vals)
							slices.Reverse(present)
						}
						mode, number := fn.CallFill(name, f.mode, f.number)
						comparePoints(t, fn.FillPresent(ws, vals, present, mode, number), rows)
					})
				}
			}
		}
	}
}

// TestTransformationsAgainstInfluxDB compares derivative, difference,
// moving_average, cumulative_sum, elapsed and integral (whole range and per
// GROUP BY time window, interpolated at the window edges) with InfluxDB's.
func TestTransformationsAgainstInfluxDB(t *testing.T) {
	sets := append([]dataset{}, gaps...)
	for _, d := range datasets {
		if d.name == "floats" || d.name == "ints" || d.name == "negatives" || d.name == "fractions" || d.name == "oddints" || d.name == "overflow" {
			sets = append(sets, d)
		}
	}
	in := startInflux(t, sets...)
	transforms := []struct {
		call string
		fn   func([]fn.Point) []fn.Point
	}{
		{"derivative(v)", func(p []fn.Point) []fn.Point { return fn.Derivative(p, time.Second, false) }},
		{"derivative(v, 10s)", func(p []fn.Point) []fn.Point { return fn.Derivative(p, 10*time.Second, false) }},
		{"derivative(v, 1m)", func(p []fn.Point) []fn.Point { return fn.Derivative(p, time.Minute, false) }},
		{"non_negative_derivative(v)", func(p []fn.Point) []fn.Point { return fn.Derivative(p, time.Second, true) }},
		{"non_negative_derivative(v, 1ms)", func(p []fn.Point) []fn.Point { return fn.Derivative(p, time.Millisecond, true) }},
		{"difference(v)", func(p []fn.Point) []fn.Point { return fn.Difference(p, false) }},
		{"non_negative_difference(v)", func(p []fn.Point) []fn.Point { return fn.Difference(p, true) }},
		{"moving_average(v, 2)", func(p []fn.Point) []fn.Point { return fn.MovingAverage(p, 2) }},
		{"moving_average(v, 3)", func(p []fn.Point) []fn.Point { return fn.MovingAverage(p, 3) }},
		{"moving_average(v, 50)", func(p []fn.Point) []fn.Point { return fn.MovingAverage(p, 50) }},
		{"cumulative_sum(v)", fn.CumulativeSum},
		{"elapsed(v)", func(p []fn.Point) []fn.Point { return fn.Elapsed(p, time.Nanosecond) }},
		{"elapsed(v, 1s)", func(p []fn.Point) []fn.Point { return fn.Elapsed(p, time.Second) }},
		{"elapsed(v, 7s)", func(p []fn.Point) []fn.Point { return fn.Elapsed(p, 7*time.Second) }},
		{"integral(v)", func(p []fn.Point) []fn.Point { return fn.Integral(p, time.Second, nil) }},
		{"integral(v, 1m)", func(p []fn.Point) []fn.Point { return fn.Integral(p, time.Minute, nil) }},
	}
	for _, d := range sets {
		for _, tr := range transforms {
			q := fmt.Sprintf("SELECT %s FROM %s WHERE s = 'a'", tr.call, d.name)
			t.Run(q, func(t *testing.T) {
				var pts []fn.Point
				for _, s := range d.samples {
					if s.s == "a" {
						pts = append(pts, fn.Point{Time: s.t * int64(time.Second), Value: s.v})
					}
				}
				comparePoints(t, tr.fn(pts), mustQuery(t, in, q))
			})
		}
	}
	// ORDER BY time DESC: the same functions over the points reversed.
	for _, d := range sets {
		for _, tr := range transforms[:14] {
			q := fmt.Sprintf("SELECT %s FROM %s WHERE s = 'a' ORDER BY time DESC", tr.call, d.name)
			t.Run(q, func(t *testing.T) {
				var pts []fn.Point
				for _, s := range d.samples {
					if s.s == "a" {
						pts = append([]fn.Point{{Time: s.t * int64(time.Second), Value: s.v}}, pts...)
					}
				}
				comparePoints(t, tr.fn(pts), mustQuery(t, in, q))
			})
		}
		q := fmt.Sprintf("SELECT distinct(v) FROM %s WHERE s = 'a'", d.name)
		t.Run(q, func(t *testing.T) {
			var pts []fn.Point
			for _, s := range d.samples {
				if s.s == "a" {
					pts = append(pts, fn.Point{Time: s.t * int64(time.Second), Value: s.v})
				}
			}
			var want []fn.Point
			for _, v := range fn.Distinct(pts) {
				want = append(want, fn.Point{Value: v})
			}
			comparePoints(t, want, mustQuery(t, in, q))
		})
	}
	for _, d := range gaps {
		for _, every := range []int64{7, 20, 30} {
			q := fmt.Sprintf("SELECT integral(v) FROM %s WHERE time >= 0s AND time < 120s GROUP BY time(%ds) fill(none)", d.name, every)
			t.Run(q, func(t *testing.T) {
				window := func(ts int64) (int64, int64) {
					w := every * int64(time.Second)
					start := ts - ts%w
					return start, start + w
				}
				comparePoints(t, fn.Integral(d.points(), time.Second, window), mustQuery(t, in, q))
			})
		}
	}
}

// TestBinaryOpAgainstInfluxDB evaluates every operator over pairs of
// fields of each type (a missing field is null) and compares with
// InfluxDB's SELECT a <op> b.
func TestBinaryOpAgainstInfluxDB(t *testing.T) {
	// Each row has some of the fields; a row lacking one gives null.
	rows := []map[string]fn.Value{
		{"i": int64(7), "j": int64(2), "f": 2.5, "g": -0.5, "t": true, "u": false},
		{"i": int64(-7), "j": int64(0), "f": 0.0, "g": 3.0, "t": false, "u": false},
		{"i": int64(0), "j": int64(-3), "f": -1.25, "g": 0.0, "t": true, "u": true},
		{"i": int64(9), "f": 10.0, "t": true},
		{"j": int64(5), "g": 4.0, "u": true},
		{"i": int64(math.MaxInt64), "j": int64(2), "f": 1e10, "g": 3e-7},
	}
	var body strings.Builder
	for n, r := range rows {
		var fields []string
		for _, k := range []string{"i", "j", "f", "g", "t", "u"} {
			if v, ok := r[k]; ok {
				fields = append(fields, k+"="+lpValue(v))
			}
		}
		fmt.Fprintf(&body, "ops %s %d\n", strings.Join(fields, ","), int64(n+1)*int64(time.Second))
	}
	in := startInflux(t)
	resp, err := http.Post(in.db.URL()+"/write?db="+diffDB, "text/plain", strings.NewReader(body.String()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: %s", resp.Status)
	}
	pairs := [][2]string{{"i", "j"}, {"j", "i"}, {"i", "f"}, {"f", "i"}, {"f", "g"}, {"g", "f"}, {"t", "u"}, {"u", "t"}, {"i", "i"}}
	for _, pair := range pairs {
		for _, op := range []string{"+", "-", "*", "/", "%", "&", "|", "^"} {
			q := fmt.Sprintf("SELECT %s %s %s FROM ops", pair[0], op, pair[1])
			t.Run(q, func(t *testing.T) {
				got, qerr := in.rows(q)
				if qerr != "" {
					// A type error (bitwise on floats, arithmetic on
					// booleans) is the planner's: BinaryOp answers nil.
					if v := fn.BinaryOp(op, rows[0][pair[0]], rows[0][pair[1]]); v != nil {
						t.Fatalf("influxdb: %s; BinaryOp gives %#v", qerr, v)
					}
					return
				}
				// InfluxDB leaves out the rows where both fields are missing.
				var want []fn.Point
				for n, r := range rows {
					l, lok := r[pair[0]]
					rr, rok := r[pair[1]]
					if !lok && !rok {
						continue
					}
					want = append(want, fn.Point{Time: int64(n+1) * int64(time.Second), Value: fn.BinaryOp(op, l, rr)})
				}
				comparePoints(t, want, got)
			})
		}
	}
}

// TestTopBottomAgainstInfluxDB compares top() and bottom() with InfluxDB's,
// over a whole dataset and per GROUP BY time(2s) window (where each point
// keeps its own time).
func TestTopBottomAgainstInfluxDB(t *testing.T) {
	var sets []dataset
	for _, d := range datasets {
		if fn.CheckType("top", d.samples[0].v) == nil {
			sets = append(sets, d)
		}
	}
	in := startInflux(t, sets...)
	for _, d := range sets {
		for _, name := range []string{"top", "bottom"} {
			pick := fn.Top
			if name == "bottom" {
				pick = fn.Bottom
			}
			for _, n := range []int{1, 2, 3, 10} {
				q := fmt.Sprintf("SELECT %s(v, %d) FROM %s", name, n, d.name)
				t.Run(q, func(t *testing.T) {
					comparePoints(t, pick(d.points(), n), mustQuery(t, in, q))
				})
				q = fmt.Sprintf("SELECT %s(v, %d) FROM %s WHERE time >= 0s AND time < 10s GROUP BY time(2s)", name, n, d.name)
				t.Run(q, func(t *testing.T) {
					var got []fn.Point
					pts := d.points()
					for w := int64(0); w < 10; w += 2 {
						var in []fn.Point
						for _, p := range pts {
							if p.Time >= w*int64(time.Second) && p.Time < (w+2)*int64(time.Second) {
								in = append(in, p)
							}
						}
						got = append(got, pick(in, n)...)
					}
					comparePoints(t, got, mustQuery(t, in, q))
				})
			}
		}
	}
	for _, c := range []struct {
		arg  fn.Value
		want string
	}{{2.5, "expected integer as last argument in top(), found 2.500"}, {int64(0), "limit (0) in top function must be at least 1"}} {
		if _, err := fn.LimitArg("top", c.arg); err == nil || err.Error() != c.want {
			t.Errorf("LimitArg(%v) = %v, want %q", c.arg, err, c.want)
		}
	}
}

// TestMathAgainstInfluxDB evaluates every math function on fields of each
// type and compares with InfluxDB's SELECT fn(field) (abs of an integer
// included: InfluxDB 1.6 returns it unchanged).
func TestMathAgainstInfluxDB(t *testing.T) {
	rows := []map[string]fn.Value{
		{"f": -2.5, "i": int64(-3), "g": 0.5, "p": int64(2), "s": "x", "b": true},
		{"f": 2.5, "i": int64(7), "g": -0.5, "p": int64(0), "s": "y", "b": false},
		{"f": 0.75, "i": int64(1), "g": 1.5, "p": int64(-1)},
	}
	var body strings.Builder
	for n, r := range rows {
		var fields []string
		for _, k := range []string{"f", "i", "g", "p", "s", "b"} {
			if v, ok := r[k]; ok {
				fields = append(fields, k+"="+lpValue(v))
			}
		}
		fmt.Fprintf(&body, "mth %s %d\n", strings.Join(fields, ","), int64(n+1)*int64(time.Second))
	}
	in := startInflux(t)
	resp, err := http.Post(in.db.URL()+"/write?db="+diffDB, "text/plain", strings.NewReader(body.String()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	calls := [][]string{{"atan2", "f", "i"}, {"atan2", "i", "f"}, {"log", "g", "f"}, {"pow", "i", "p"}, {"pow", "f", "g"}, {"pow", "i", "g"}}
	for _, name := range []string{"abs", "sin", "cos", "tan", "asin", "acos", "atan", "exp", "ln", "log2", "log10", "sqrt", "ceil", "floor", "round"} {
		for _, field := range []string{"f", "i", "g", "s", "b"} {
			calls = append(calls, []string{name, field})
		}
	}
	for _, c := range calls {
		q := fmt.Sprintf("SELECT %s(%s) FROM mth", c[0], strings.Join(c[1:], ", "))
		t.Run(q, func(t *testing.T) {
			var want []fn.Point
			for n, r := range rows {
				var args []fn.Value
				present := false
				for _, f := range c[1:] {
					v, ok := r[f]
					present = present || ok
					args = append(args, v)
				}
				if present {
					want = append(want, fn.Point{Time: int64(n+1) * int64(time.Second), Value: fn.Math(c[0], args)})
				}
			}
			comparePoints(t, want, mustQuery(t, in, q))
		})
	}
	for _, c := range []struct {
		name string
		n    int
		want string
	}{{"abs", 0, "invalid number of arguments for abs, expected 1, got 0"}, {"round", 2, "invalid number of arguments for round, expected 1, got 2"}, {"pow", 1, "invalid number of arguments for pow, expected 2, got 1"}, {"log", 1, "invalid number of arguments for log, expected 2, got 1"}} {
		if err := fn.CheckMathArgs(c.name, c.n); err == nil || err.Error() != c.want {
			t.Errorf("CheckMathArgs(%s, %d) = %v, want %q", c.name, c.n, err, c.want)
		}
	}
	if !fn.IsMath("SQRT") || fn.IsMath("mean") {
		t.Error("IsMath")
	}
}
