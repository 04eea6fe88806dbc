package fn

import (
	"math"
	"time"
)

// The transformations take one series' points in time order, or reversed
// for ORDER BY time DESC (Integral: ascending only), skip nulls and
// non-numeric values, and return new points, as InfluxDB's derivative,
// difference, moving_average, cumulative_sum and elapsed do. A point at
// the same time as the previous one is ignored by derivative and
// difference (InfluxDB keeps the first of a joined series' duplicates).

// Derivative returns the rate of change per unit between successive points,
// at the later point's time (the first point yields nothing). nonNegative
// drops the points whose value decreased.
func Derivative(pts []Point, unit time.Duration, nonNegative bool) []Point {
	if unit <= 0 {
		unit = time.Second
	}
	var out []Point
	var prev Point
	has := false
	for _, p := range pts {
		if !isNumeric(p.Value) || (has && p.Time == prev.Time) {
			continue
		}
		if has {
			diff := toFloatValue(sub(p.Value, prev.Value))
			// In time order, or in reverse for ORDER BY time DESC, where
			// InfluxDB divides by the elapsed time made positive.
			elapsed := math.Abs(float64(p.Time - prev.Time))
			if !nonNegative || diff >= 0 {
				out = append(out, Point{Time: p.Time, Value: diff / (elapsed / float64(unit))})
			}
		}
		prev, has = p, true
	}
	return out
}

// Difference returns the difference between successive points, at the later
// point's time, in the field's type. nonNegative drops negative differences.
func Difference(pts []Point, nonNegative bool) []Point {
	var out []Point
	var prev Point
	has := false
	for _, p := range pts {
		if !isNumeric(p.Value) || (has && p.Time == prev.Time) {
			continue
		}
		if has {
			d := sub(p.Value, prev.Value)
			if !nonNegative || !negative(d) {
				out = append(out, Point{Time: p.Time, Value: d})
			}
		}
		prev, has = p, true
	}
	return out
}

// MovingAverage returns the mean of each n successive points (a float), at
// the last one's time; fewer than n points yield nothing.
func MovingAverage(pts []Point, n int) []Point {
	if n < 1 {
		return nil
	}
	var out []Point
	buf := make([]Value, 0, n)
	pos := 0
	var s numSum
	for _, p := range pts {
		if !isNumeric(p.Value) {
			continue
		}
		// The running sum is InfluxDB's (subtract the value leaving the
		// window), so float results match it to the bit.
		if len(buf) < n {
			buf = append(buf, p.Value)
		} else {
			s.addSigned(buf[pos], -1)
			buf[pos] = p.Value
		}
		s.addSigned(p.Value, 1)
		pos = (pos + 1) % n
		if len(buf) == n {
			out = append(out, Point{Time: p.Time, Value: s.float() / float64(n)})
		}
	}
	return out
}

// CumulativeSum returns the running sum at each point, in the field's type.
func CumulativeSum(pts []Point) []Point {
	var out []Point
	var s numSum
	for _, p := range pts {
		if !s.add(p.Value) {
			continue
		}
		out = append(out, Point{Time: p.Time, Value: s.value()})
	}
	return out
}

// addSigned adds (sign 1) or removes (sign -1) a value from the sum.
func (s *numSum) addSigned(v Value, sign int) {
	if sign > 0 {
		s.add(v)
		return
	}
	switch x := v.(type) {
	case float64:
		s.f -= x
	case int64:
		s.i -= x
	case uint64:
		s.u -= x
	}
	s.n--
}

func toFloatValue(v Value) float64 {
	f, _ := toFloat(v)
	return f
}

func negative(v Value) bool {
	switch x := v.(type) {
	case float64:
		return x < 0
	case int64:
		return x < 0
	}
	return false
}

// Elapsed returns the time between successive points in units (an int64,
// truncated), at the later point's time. Unlike derivative it does not skip
// points at the same time (they give 0), as InfluxDB's elapsed does.
func Elapsed(pts []Point, unit time.Duration) []Point {
	if unit <= 0 {
		unit = time.Nanosecond
	}
	var out []Point
	var prev Point
	has := false
	for _, p := range pts {
		if p.Value == nil {
			continue
		}
		if has {
			out = append(out, Point{Time: p.Time, Value: (p.Time - prev.Time) / int64(unit)})
		}
		prev, has = p, true
	}
	return out
}

// Distinct returns the window's distinct values in the order they first
// appear (InfluxDB returns them all at the window's start).
func Distinct(pts []Point) []Value {
	seen := make(map[Value]struct{})
	var out []Value
	for _, p := range pts {
		if p.Value == nil {
			continue
		}
		if _, dup := seen[p.Value]; dup {
			continue
		}
		seen[p.Value] = struct{}{}
		out = append(out, p.Value)
	}
	return out
}

// Integral returns the area under the points (trapezium rule, per unit) in
// each window, as InfluxDB's integral(): window maps a time to its GROUP BY
// time window [start, end), or is nil for a single window (Time 0). Where a
// window ends between two points, the value at its end is interpolated and
// the area split between the windows. A point at the same time as the
// previous one replaces it; a window with one point gives 0. Two of
// InfluxDB 1.6's quirks are kept, as its answers are the reference: for
// integer fields the area after a window edge runs from the previous
// point's value to the interpolated one (not to the new point's), and a
// last window whose only point is at its start is not returned.
func Integral(pts []Point, unit time.Duration, window func(t int64) (start, end int64)) []Point {
	if unit <= 0 {
		unit = time.Second
	}
	var out []Point
	var prevT int64
	var prevV, sum float64
	var start, end int64
	has := false
	for _, p := range pts {
		v, ok := toFloat(p.Value)
		if !ok {
			continue
		}
		if !has {
			prevT, prevV, has = p.Time, v, true
			if window != nil {
				start, end = window(p.Time)
			}
			continue
		}
		if p.Time == prevT {
			prevV = v
			continue
		}
		cur := v
		if window != nil && p.Time >= end {
			if prevT != end {
				edge := (v-prevV)/float64(p.Time-prevT)*float64(end-prevT) + prevV
				sum += 0.5 * (edge + prevV) * (float64(end-prevT) / float64(unit))
				prevT = end
				if _, isFloat := p.Value.(float64); isFloat {
					prevV = edge
				} else {
					cur = edge
				}
			}
			out = append(out, Point{Time: start, Value: sum})
			start, end = window(p.Time)
			sum = 0
		}
		sum += 0.5 * (cur + prevV) * (float64(p.Time-prevT) / float64(unit))
		prevT, prevV = p.Time, v
	}
	if has && prevT != start {
		out = append(out, Point{Time: start, Value: sum})
	}
	return out
}
