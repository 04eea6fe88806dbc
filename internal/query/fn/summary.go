package fn

import (
	"fmt"
	"math"
	"strings"
)

// Summary is a mergeable digest of one bucket of one field, for rollups:
// what count, sum, mean, min, max, first, last, spread and stddev need,
// without the points. Integer sums stay integers. Its zero value is empty.
type Summary struct {
	count int64   // non-null values of any type
	sum   numSum  // numeric values only
	mean  float64 // Welford's running mean and sum of squared deviations,
	m2    float64 // merged with Chan's formula
	min   Point   // Value nil: none yet
	max   Point
	first Point
	last  Point
}

// Add adds one point; points may come in any order (ties resolved as the
// reducers resolve them).
func (s *Summary) Add(p Point) {
	switch v := p.Value.(type) {
	case float64:
		if addTyped(s, p, v, kindFloat) {
			return
		}
	case int64:
		if addTyped(s, p, v, kindInteger) {
			return
		}
	}
	if p.Value == nil {
		return
	}
	s.count++
	if s.first.Value == nil || firstBetter(p, s.first) {
		s.first = p
	}
	if s.last.Value == nil || lastBetter(p, s.last) {
		s.last = p
	}
	if orderable(p.Value) {
		if s.min.Value == nil || minBetter(p, s.min) {
			s.min = p
		}
		if s.max.Value == nil || maxBetter(p, s.max) {
			s.max = p
		}
	}
	if s.sum.add(p.Value) {
		v, _ := toFloat(p.Value)
		d := v - s.mean
		s.mean += d / float64(s.sum.n)
		s.m2 += d * (v - s.mean)
	}
}

// addTyped is Add's fast path for float and integer fields (rollups add
// every point of every field): the same rules without the type dispatch.
// It declines (false) when the summary holds values of another type.
func addTyped[T float64 | int64](s *Summary, p Point, v T, k kind) bool {
	if s.count > 0 && s.sum.kind != k {
		return false
	}
	mn, ok1 := s.min.Value.(T)
	mx, ok2 := s.max.Value.(T)
	if s.count > 0 && (!ok1 || !ok2) {
		return false
	}
	if s.count == 0 || p.Time < s.first.Time || (p.Time == s.first.Time && firstBetter(p, s.first)) {
		s.first = p
	}
	if s.count == 0 || p.Time > s.last.Time || (p.Time == s.last.Time && lastBetter(p, s.last)) {
		s.last = p
	}
	// !(a < b) && !(a > b) is compare's equality (NaN included).
	if s.count == 0 || v < mn || (!(v > mn) && p.Time < s.min.Time) {
		s.min = p
	}
	if s.count == 0 || v > mx || (!(v < mx) && p.Time < s.max.Time) {
		s.max = p
	}
	s.count++
	if k == kindFloat {
		s.sum.f += float64(v)
	} else {
		s.sum.i += int64(v)
	}
	s.sum.n++
	s.sum.kind = k
	f := float64(v)
	d := f - s.mean
	s.mean += d / float64(s.sum.n)
	s.m2 += d * (f - s.mean)
	return true
}

// Merge adds o's points to s, as if each had been added.
func (s *Summary) Merge(o *Summary) {
	if o.count == 0 {
		return
	}
	s.count += o.count
	for _, p := range []Point{o.first, o.last} {
		if p.Value == nil {
			continue
		}
		if s.first.Value == nil || firstBetter(p, s.first) {
			s.first = p
		}
		if s.last.Value == nil || lastBetter(p, s.last) {
			s.last = p
		}
	}
	if o.min.Value != nil && (s.min.Value == nil || minBetter(o.min, s.min)) {
		s.min = o.min
	}
	if o.max.Value != nil && (s.max.Value == nil || maxBetter(o.max, s.max)) {
		s.max = o.max
	}
	if o.sum.n == 0 {
		return
	}
	n1, n2 := float64(s.sum.n), float64(o.sum.n)
	d := o.mean - s.mean
	n := n1 + n2
	s.mean += d * n2 / n
	s.m2 += o.m2 + d*d*n1*n2/n
	s.sum.f += o.sum.f
	s.sum.i += o.sum.i
	s.sum.u += o.sum.u
	s.sum.n += o.sum.n
	s.sum.kind = max(s.sum.kind, o.sum.kind)
}

// Count is the number of non-null values added.
func (s *Summary) Count() int64 { return s.count }

// Mergeable reports whether FromSummary can compute the function from
// summaries (so a rollup can answer it without the raw points).
func Mergeable(name string) bool {
	switch strings.ToLower(name) {
	case "count", "sum", "mean", "min", "max", "first", "last", "spread", "stddev":
		return true
	}
	return false
}

// FromSummary computes the function from a summary, with the result types
// of NewReducer's reducers; ok is false for an empty summary (and for
// stddev, a null value stands for a single point). Selectors return the
// selected point's time. stddev from a summary may differ from the
// reducer's in the last bits (Welford's update, not two passes).
func FromSummary(name string, s *Summary) (Point, bool, error) {
	name = strings.ToLower(name)
	if !Mergeable(name) {
		return Point{}, false, fmt.Errorf("%s() cannot be computed from a rollup", name)
	}
	if s.count == 0 {
		return Point{}, false, nil
	}
	switch name {
	case "count":
		return Point{Value: s.count}, true, nil
	case "first":
		return s.first, true, nil
	case "last":
		return s.last, true, nil
	case "min":
		return s.min, s.min.Value != nil, nil
	case "max":
		return s.max, s.max.Value != nil, nil
	}
	if s.sum.n == 0 {
		return Point{}, false, nil
	}
	switch name {
	case "sum":
		return Point{Value: s.sum.value()}, true, nil
	case "mean":
		return Point{Value: s.sum.float() / float64(s.sum.n)}, true, nil
	case "spread":
		// min and max also hold booleans; spread is over numbers only, and
		// a numeric bucket's min and max are numbers.
		if !isNumeric(s.min.Value) || !isNumeric(s.max.Value) {
			return Point{}, false, nil
		}
		return Point{Value: sub(s.max.Value, s.min.Value)}, true, nil
	default: // stddev
		if s.sum.n < 2 {
			return Point{Value: nil}, true, nil
		}
		return Point{Value: math.Sqrt(s.m2 / float64(s.sum.n-1))}, true, nil
	}
}
