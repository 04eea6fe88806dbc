package downsample

import (
	"math"
	"math/rand/v2"
	"testing"
)

// check verifies what a chart needs of the kept points: X order, and per
// column the extremes of the points that fell in it.
func checkOrdered(t *testing.T, pts []Point) {
	t.Helper()
	for i := 1; i < len(pts); i++ {
		if pts[i].X < pts[i-1].X {
			t.Fatalf("points out of X order at %d: %v then %v", i, pts[i-1], pts[i])
		}
	}
}

func TestRangeKeepsMinAndMaxPerColumn(t *testing.T) {
	const width, n = 10, 10000
	r := NewRange(0, n, width)
	// A calm sine with one spike up and one down in column 3 and 7.
	want := map[int][2]float64{}
	for i := 0; i < n; i++ {
		y := math.Sin(float64(i) / 100)
		switch i {
		case 3456:
			y = 50
		case 7890:
			y = -50
		}
		r.Add(float64(i), y)
		c := i / (n / width)
		m, ok := want[c]
		if !ok {
			m = [2]float64{y, y}
		}
		m[0], m[1] = min(m[0], y), max(m[1], y)
		want[c] = m
	}
	pts := r.Points()
	checkOrdered(t, pts)
	if len(pts) > 4*width {
		t.Fatalf("%d points kept for %d columns, want at most %d", len(pts), width, 4*width)
	}
	got := map[int][2]float64{}
	for _, p := range pts {
		c := int(p.X) / (n / width)
		m, ok := got[c]
		if !ok {
			m = [2]float64{p.Y, p.Y}
		}
		m[0], m[1] = min(m[0], p.Y), max(m[1], p.Y)
		got[c] = m
	}
	for c, w := range want {
		if got[c] != w {
			t.Errorf("column %d: kept min/max %v, want %v", c, got[c], w)
		}
	}
	if pts[0].X != 0 || pts[len(pts)-1].X != n-1 {
		t.Errorf("first/last points %v %v, want X 0 and %d", pts[0], pts[len(pts)-1], n-1)
	}
	if s := r.Stats(); s.Count != n || s.Max != 50 || s.Min != -50 {
		t.Errorf("stats %+v", s)
	}
}

func TestRangeFewPointsKeptAsIs(t *testing.T) {
	r := NewRange(0, 100, 1000)
	in := []Point{{1, 5}, {2, math.NaN()}, {50, 7}, {99, -1}, {150, 3}, {-5, 2}}
	for _, p := range in {
		r.Add(p.X, p.Y)
	}
	pts := r.Points()
	checkOrdered(t, pts)
	want := []Point{{-5, 2}, {1, 5}, {50, 7}, {99, -1}, {150, 3}}
	if len(pts) != len(want) {
		t.Fatalf("kept %v, want %v (NaN skipped, out-of-range points clamped to the edge columns)", pts, want)
	}
	for i := range want {
		if pts[i] != want[i] {
			t.Fatalf("kept %v, want %v", pts, want)
		}
	}
}

func TestSequenceMergesColumnsAsTheSeriesGrows(t *testing.T) {
	for _, n := range []int{1, 7, 100, 101, 5000, 123457} {
		const width = 50
		s := NewSequence(width)
		hi, lo := math.Inf(-1), math.Inf(1)
		rng := rand.New(rand.NewPCG(1, uint64(n)))
		for i := 0; i < n; i++ {
			y := rng.NormFloat64()
			if i == n/3 {
				y = 1000
			}
			hi, lo = max(hi, y), min(lo, y)
			s.Add(y)
		}
		pts := s.Points()
		checkOrdered(t, pts)
		if n <= 2*width && len(pts) != n {
			t.Errorf("n=%d: %d points kept, want all", n, len(pts))
		}
		if len(pts) > 4*2*width {
			t.Errorf("n=%d: %d points kept, want at most %d", n, len(pts), 8*width)
		}
		if pts[0].X != 0 || pts[len(pts)-1].X != float64(n-1) {
			t.Errorf("n=%d: X runs %v..%v, want 0..%d", n, pts[0].X, pts[len(pts)-1].X, n-1)
		}
		var gotHi, gotLo = math.Inf(-1), math.Inf(1)
		for _, p := range pts {
			gotHi, gotLo = max(gotHi, p.Y), min(gotLo, p.Y)
		}
		if gotHi != hi || gotLo != lo {
			t.Errorf("n=%d: kept extremes %v..%v, want %v..%v", n, gotLo, gotHi, lo, hi)
		}
		if s.Len() != n || s.Stats().Count != n {
			t.Errorf("n=%d: Len %d, Count %d", n, s.Len(), s.Stats().Count)
		}
	}
}

func TestSequenceNonFiniteKeepsItsPosition(t *testing.T) {
	s := NewSequence(100)
	for _, y := range []float64{1, math.NaN(), 3, math.Inf(1), 5} {
		s.Add(y)
	}
	pts := s.Points()
	want := []Point{{0, 1}, {2, 3}, {4, 5}}
	if len(pts) != len(want) || pts[0] != want[0] || pts[1] != want[1] || pts[2] != want[2] {
		t.Fatalf("kept %v, want %v", pts, want)
	}
}

// BenchmarkRange10M downsamples ten million points to 1,000 columns, the
// work of one chart over a large range once the points are read.
func BenchmarkRange10M(b *testing.B) {
	const n = 10_000_000
	for b.Loop() {
		r := NewRange(0, n, 1000)
		for i := 0; i < n; i++ {
			r.Add(float64(i), float64(i%977))
		}
		_ = r.Points()
	}
}

// BenchmarkSequence10M is the same on the sequential axis.
func BenchmarkSequence10M(b *testing.B) {
	const n = 10_000_000
	for b.Loop() {
		s := NewSequence(1000)
		for i := 0; i < n; i++ {
			s.Add(float64(i % 977))
		}
		_ = s.Points()
	}
}

// FuzzDownsample feeds arbitrary series and checks what a chart relies on:
// points in X order, at most four per column, the extremes kept.
func FuzzDownsample(f *testing.F) {
	f.Add([]byte{1, 2, 3, 250, 0, 7}, uint8(3))
	f.Add([]byte{}, uint8(1))
	f.Add([]byte{0xff, 0, 0xff, 0, 0x80}, uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, w uint8) {
		width := int(w%64) + 1
		seq := NewSequence(width)
		rng := NewRange(0, float64(len(data)), width)
		lo, hi := math.Inf(1), math.Inf(-1)
		for i, b := range data {
			y := float64(int8(b))
			lo, hi = min(lo, y), max(hi, y)
			seq.Add(y)
			rng.Add(float64(len(data)-1-i), y) // reverse order: Range takes any
		}
		for _, pts := range [][]Point{seq.Points(), rng.Points()} {
			checkOrdered(t, pts)
			if len(pts) > 8*width || (len(data) > 0) != (len(pts) > 0) {
				t.Fatalf("%d points kept of %d for width %d", len(pts), len(data), width)
			}
			gotLo, gotHi := math.Inf(1), math.Inf(-1)
			for _, p := range pts {
				gotLo, gotHi = min(gotLo, p.Y), max(gotHi, p.Y)
			}
			if len(data) > 0 && (gotLo != lo || gotHi != hi) {
				t.Fatalf("extremes %v..%v kept, want %v..%v", gotLo, gotHi, lo, hi)
			}
		}
	})
}
