// Package downsample reduces a series to a few points per pixel column for
// drawing, keeping each column's first, last, minimum and maximum points
// (M4: the line a chart draws from them is the one it would draw from every
// point, at that width). Memory is bounded by the width, not the series.
package downsample

import (
	"math"
	"slices"
)

// Point is one sample: X is a time (any unit) or a position in the series.
type Point struct{ X, Y float64 }

// column holds what a pixel column must keep of the points that fall in it.
type column struct {
	n                   int
	first, last, lo, hi Point
}

func (c *column) add(p Point) {
	if c.n == 0 {
		c.first, c.last, c.lo, c.hi = p, p, p, p
		c.n = 1
		return
	}
	c.n++
	if p.X < c.first.X {
		c.first = p
	}
	if p.X >= c.last.X {
		c.last = p
	}
	if p.Y < c.lo.Y {
		c.lo = p
	}
	if p.Y > c.hi.Y {
		c.hi = p
	}
}

// merge folds d, the column to c's right, into c.
func (c *column) merge(d *column) {
	if d.n == 0 {
		return
	}
	if c.n == 0 {
		*c = *d
		return
	}
	c.n += d.n
	c.last = d.last
	if d.lo.Y < c.lo.Y {
		c.lo = d.lo
	}
	if d.hi.Y > c.hi.Y {
		c.hi = d.hi
	}
}

// appendPoints appends the column's distinct kept points in X order.
func (c *column) appendPoints(out []Point) []Point {
	if c.n == 0 {
		return out
	}
	kept := [4]Point{c.first, c.lo, c.hi, c.last}
	slices.SortStableFunc(kept[:], func(a, b Point) int {
		switch {
		case a.X < b.X:
			return -1
		case a.X > b.X:
			return 1
		}
		return 0
	})
	start := len(out)
	for _, p := range kept {
		if len(out) > start && out[len(out)-1] == p {
			continue
		}
		out = append(out, p)
	}
	return out
}

// Stats describe every point added, not only the kept ones.
type Stats struct {
	Count    int
	Min, Max float64
}

func (s *Stats) add(y float64) {
	if s.Count == 0 || y < s.Min {
		s.Min = y
	}
	if s.Count == 0 || y > s.Max {
		s.Max = y
	}
	s.Count++
}

// Range downsamples points whose X lies in a range known in advance (a time
// range): column i covers [lo + i·step, lo + (i+1)·step). Points outside
// the range go to the nearest edge column; points may come in any order.
type Range struct {
	lo, step float64
	cols     []column
	stats    Stats
}

// NewRange returns a Range of width columns over [lo, hi].
func NewRange(lo, hi float64, width int) *Range {
	width = max(width, 1)
	step := (hi - lo) / float64(width)
	if !(step > 0) {
		step = 1
	}
	return &Range{lo: lo, step: step, cols: make([]column, width)}
}

// Add adds a point; non-finite values are skipped (a chart cannot draw them).
func (r *Range) Add(x, y float64) {
	if math.IsNaN(y) || math.IsInf(y, 0) {
		return
	}
	i := int((x - r.lo) / r.step)
	if i < 0 || x < r.lo {
		i = 0
	} else if i >= len(r.cols) {
		i = len(r.cols) - 1
	}
	r.cols[i].add(Point{x, y})
	r.stats.add(y)
}

// Points returns the kept points in X order.
func (r *Range) Points() []Point { return points(r.cols) }

// Stats describes every point added.
func (r *Range) Stats() Stats { return r.stats }

// Sequence downsamples a series whose length is not known in advance,
// placing the i-th point added at X = i (Trendlines' sequential axis). It
// keeps between width and 2·width columns: when they would exceed that,
// neighbours merge and each column covers twice as many points.
type Sequence struct {
	width, per int // per: positions a column covers
	positions  int // positions taken: the X of the next point
	cols       []column
	stats      Stats
}

// NewSequence returns a Sequence for about width columns.
func NewSequence(width int) *Sequence {
	width = max(width, 1)
	return &Sequence{width: width, per: 1, cols: make([]column, 0, 2*width+1)}
}

// Add adds the next point of the series; a non-finite value keeps its
// position but is not drawn.
func (s *Sequence) Add(y float64) {
	x := s.positions
	s.positions++
	i := x / s.per
	for i >= 2*s.width {
		s.halve()
		i = x / s.per
	}
	for len(s.cols) <= i {
		s.cols = append(s.cols, column{})
	}
	if math.IsNaN(y) || math.IsInf(y, 0) {
		return
	}
	s.cols[i].add(Point{float64(x), y})
	s.stats.add(y)
}

func (s *Sequence) halve() {
	n := 0
	for i := 0; i < len(s.cols); i += 2 {
		c := s.cols[i]
		if i+1 < len(s.cols) {
			c.merge(&s.cols[i+1])
		}
		s.cols[n] = c
		n++
	}
	s.cols = s.cols[:n]
	s.per *= 2
}

// Points returns the kept points in X order.
func (s *Sequence) Points() []Point { return points(s.cols) }

// Stats describes every point added (non-finite values not counted).
func (s *Sequence) Stats() Stats { return s.stats }

// Len is the number of positions taken, the X of the next point.
func (s *Sequence) Len() int { return s.positions }

func points(cols []column) []Point {
	out := make([]Point, 0, 4*len(cols))
	for i := range cols {
		out = cols[i].appendPoints(out)
	}
	return out
}
