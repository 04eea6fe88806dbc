package fn_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/query/fn"
)

const benchPoints = 1 << 20 // about 1M points: one window of a day at 10 points/s

func benchData(ints bool) []fn.Point {
	r := rand.New(rand.NewPCG(1, 2))
	pts := make([]fn.Point, benchPoints)
	for i := range pts {
		var v fn.Value = r.Float64() * 100
		if ints {
			v = r.Int64N(1000)
		}
		pts[i] = fn.Point{Time: int64(i) * int64(100*time.Millisecond), Value: v}
	}
	return pts
}

// BenchmarkReducers feeds 1M points to each reducer: ns/point is the cost
// of reducing one raw point (what a query pays per point it does not read
// from a rollup).
func BenchmarkReducers(b *testing.B) {
	for _, typ := range []struct {
		name string
		ints bool
	}{{"float", false}, {"int", true}} {
		pts := benchData(typ.ints)
		for _, c := range []struct {
			name string
			args []fn.Value
		}{{"count", nil}, {"sum", nil}, {"mean", nil}, {"min", nil}, {"max", nil}, {"first", nil}, {"last", nil},
			{"spread", nil}, {"stddev", nil}, {"median", nil}, {"mode", nil}, {"percentile", []fn.Value{95.0}}} {
			b.Run(typ.name+"/"+c.name, func(b *testing.B) {
				r, err := fn.NewReducer(c.name, c.args)
				if err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					r.Reset()
					for _, p := range pts {
						r.Add(p)
					}
					if _, ok := r.Result(); !ok {
						b.Fatal("no result")
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchPoints, "ns/point")
			})
		}
	}
}

// BenchmarkSummaryAdd is the cost of building rollups: one point into a
// bucket's summary.
func BenchmarkSummaryAdd(b *testing.B) {
	for _, ints := range []bool{false, true} {
		pts := benchData(ints)
		b.Run(map[bool]string{false: "float", true: "int"}[ints], func(b *testing.B) {
			for b.Loop() {
				var s fn.Summary
				for _, p := range pts {
					s.Add(p)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchPoints, "ns/point")
		})
	}
}

// BenchmarkSummaryMerge is the cost of answering from rollups: a day of 10 s
// buckets (8,640) merged into one window's summary, per bucket.
func BenchmarkSummaryMerge(b *testing.B) {
	const buckets = 8640
	pts := benchData(true)
	sums := make([]fn.Summary, buckets)
	for i, p := range pts {
		sums[i%buckets].Add(p)
	}
	for b.Loop() {
		var s fn.Summary
		for i := range sums {
			s.Merge(&sums[i])
		}
		for _, name := range []string{"count", "sum", "mean", "min", "max", "first", "last"} {
			if _, ok, err := fn.FromSummary(name, &s); !ok || err != nil {
				b.Fatal(name, err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/buckets, "ns/bucket")
}

// BenchmarkFill fills a day of 10 s windows, one in three empty.
func BenchmarkFill(b *testing.B) {
	const n = 8640
	windows := make([]int64, n)
	vals := make([]fn.Point, n)
	for i := range windows {
		windows[i] = int64(i) * int64(10*time.Second)
		if i%3 != 0 {
			vals[i] = fn.Point{Time: windows[i], Value: float64(i)}
		}
	}
	for _, m := range []fn.FillMode{fn.FillNull, fn.FillPrevious, fn.FillLinear} {
		b.Run([]string{"null", "none", "number", "previous", "linear"}[m], func(b *testing.B) {
			for b.Loop() {
				fn.Fill(windows, vals, m, nil)
			}
		})
	}
}
