package fn_test

import (
	"math"
	"testing"

	"github.com/chronostream/chronostream/internal/query/fn"
)

// TestSummaryMatchesReducers checks that a rollup answers as the raw points
// do: every dataset (whose reducer answers the differential tests hold to
// InfluxDB's) is summarised whole and in 2–5 buckets merged in both orders,
// and FromSummary must equal the reducer, exactly for integers, counts and
// selected points, within 1e-12 for float sums and means, 1e-9 for stddev.
func TestSummaryMatchesReducers(t *testing.T) {
	sets := append(append([]dataset{}, datasets...), gaps...)
	names := []string{"count", "sum", "mean", "min", "max", "first", "last", "spread", "stddev"}
	for _, d := range sets {
		pts := d.points()
		for k := 1; k <= 5; k++ {
			for _, interleave := range []bool{false, true} {
				parts := make([]fn.Summary, k)
				for i, p := range pts {
					j := i * k / len(pts)
					if interleave {
						j = i % k
					}
					parts[j].Add(p)
				}
				var fwd, rev fn.Summary
				for i := range parts {
					fwd.Merge(&parts[i])
					rev.Merge(&parts[k-1-i])
				}
				for _, name := range names {
					r, err := fn.NewReducer(name, nil)
					if err != nil {
						t.Fatal(err)
					}
					for _, p := range pts {
						r.Add(p)
					}
					want, wantOK := r.Result()
					if fn.CheckType(name, pts[0].Value) != nil {
						wantOK = false // InfluxDB refuses the call; a rollup has nothing to say
					}
					for _, s := range []*fn.Summary{&fwd, &rev} {
						got, ok, err := fn.FromSummary(name, s)
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						if ok != wantOK {
							t.Fatalf("%s %s k=%d: ok %v, reducer %v (%v)", d.name, name, k, ok, wantOK, want)
						}
						if !ok {
							continue
						}
						tol := 1e-12
						if name == "stddev" {
							tol = 1e-9
						}
						if got.Time != want.Time || !closeTo(got.Value, want.Value, tol) {
							t.Errorf("%s %s k=%d interleave=%v: %#v, reducer %#v", d.name, name, k, interleave, got, want)
						}
					}
				}
				if fwd.Count() != int64(len(pts)) {
					t.Errorf("Count %d, want %d", fwd.Count(), len(pts))
				}
			}
		}
	}
}

// closeTo compares values of the same type: integers and non-numbers exactly,
// floats within a relative tolerance.
func closeTo(a, b fn.Value, tol float64) bool {
	fa, aok := a.(float64)
	fb, bok := b.(float64)
	if !aok || !bok {
		return a == b
	}
	return math.Abs(fa-fb) <= tol*math.Max(1, math.Max(math.Abs(fa), math.Abs(fb)))
}

func TestSummaryEdges(t *testing.T) {
	var empty fn.Summary
	for _, name := range []string{"count", "sum", "mean", "min", "max", "first", "last", "spread", "stddev"} {
		if !fn.Mergeable(name) {
			t.Errorf("%s is not mergeable", name)
		}
		if _, ok, err := fn.FromSummary(name, &empty); ok || err != nil {
			t.Errorf("%s of an empty summary: ok %v err %v", name, ok, err)
		}
	}
	for _, name := range []string{"median", "mode", "percentile", "derivative", "nope"} {
		if fn.Mergeable(name) {
			t.Errorf("%s is mergeable", name)
		}
		if _, _, err := fn.FromSummary(name, &empty); err == nil {
			t.Errorf("%s from a summary: no error", name)
		}
	}
	// Merging an empty summary changes nothing; nulls are not counted.
	var s fn.Summary
	s.Add(fn.Point{Time: 5, Value: int64(3)})
	s.Add(fn.Point{Time: 6, Value: nil})
	s.Merge(&empty)
	if got, _, _ := fn.FromSummary("sum", &s); got.Value != int64(3) {
		t.Errorf("sum %#v, want int64 3", got.Value)
	}
	if got, ok, _ := fn.FromSummary("stddev", &s); !ok || got.Value != nil {
		t.Errorf("stddev of one point: %#v %v, want a null row", got.Value, ok)
	}
	// A field whose type changed (shards written at different times) takes
	// the generic path; the summary still answers as the reducers do.
	mixed := []fn.Point{{1, 2.5}, {2, int64(7)}, {3, -1.0}, {4, int64(-3)}, {5, 9.0}, {5, int64(9)}}
	var m fn.Summary
	for _, p := range mixed {
		m.Add(p)
	}
	for _, name := range []string{"count", "sum", "mean", "min", "max", "first", "last", "spread", "stddev"} {
		r, _ := fn.NewReducer(name, nil)
		for _, p := range mixed {
			r.Add(p)
		}
		want, wantOK := r.Result()
		got, ok, err := fn.FromSummary(name, &m)
		if err != nil || ok != wantOK || got.Time != want.Time || !closeTo(got.Value, want.Value, 1e-9) {
			t.Errorf("mixed %s: %#v %v %v, reducer %#v %v", name, got, ok, err, want, wantOK)
		}
	}
	// A string field counts and selects first/last but has no sum.
	var str fn.Summary
	str.Add(fn.Point{Time: 1, Value: "a"})
	str.Add(fn.Point{Time: 2, Value: "b"})
	if got, _, _ := fn.FromSummary("last", &str); got.Value != "b" || got.Time != 2 {
		t.Errorf("last %#v", got)
	}
	if _, ok, _ := fn.FromSummary("sum", &str); ok {
		t.Error("sum of strings")
	}
	if _, ok, _ := fn.FromSummary("min", &str); ok {
		t.Error("min of strings")
	}
}
