package fn

import "math"

// FillMode is GROUP BY time's fill() option.
type FillMode int

const (
	FillNull     FillMode = iota // fill(null), the default: empty windows are null
	FillNone                     // fill(none): empty windows are dropped
	FillNumber                   // fill(<number>): empty windows take the number
	FillPrevious                 // fill(previous): the last non-null window's value
	FillLinear                   // fill(linear): interpolated between non-null neighbours
)

// Fill returns one point per window (Time = the window's start) with empty
// windows filled as InfluxDB fills them: windows are in output order
// (descending for ORDER BY time DESC, where "previous" is the later
// window), vals holds one point per window, Value nil when it is empty. fill(number) takes the series' type
// (a float number fills an integer series truncated); fill(previous) and
// fill(linear) leave the windows before the first value (and, for linear,
// after the last) null; linear interpolation of integers truncates.
func Fill(windows []int64, vals []Point, mode FillMode, number Value) []Point {
	present := make([]bool, len(vals))
	for i, v := range vals {
		present[i] = v.Value != nil
	}
	return FillPresent(windows, vals, present, mode, number)
}

// FillPresent is Fill for results that may be present with a null value
// (stddev of a single point: a Reducer's ok with a nil Value): such a
// window is a row, kept by fill(none), not filled, and it is the "previous"
// value (null) for fill(previous) and fill(linear), as in InfluxDB.
// present[i] is the window's ok.
func FillPresent(windows []int64, vals []Point, present []bool, mode FillMode, number Value) []Point {
	out := make([]Point, 0, len(windows))
	seriesKind := kindNone
	for _, v := range vals {
		if k := kindOf(v.Value); k != kindNone {
			seriesKind = k
			break
		}
	}
	prev := -1 // index of the last present window
	for i, t := range windows {
		var v Value
		if i < len(vals) && i < len(present) && present[i] {
			prev = i
			out = append(out, Point{Time: t, Value: vals[i].Value})
			continue
		}
		switch mode {
		case FillNone:
			continue
		case FillNumber:
			v = castNumber(number, seriesKind)
		case FillPrevious:
			if prev >= 0 {
				v = vals[prev].Value
			}
		case FillLinear:
			if prev >= 0 && vals[prev].Value != nil {
				if next := nextPresent(present, i+1); next >= 0 && next < len(vals) {
					v = linear(t, windows[prev], windows[next], vals[prev].Value, vals[next].Value)
				}
			}
		}
		out = append(out, Point{Time: t, Value: v})
	}
	return out
}

func nextPresent(present []bool, from int) int {
	for j := from; j < len(present); j++ {
		if present[j] {
			return j
		}
	}
	return -1
}

// castNumber gives fill's number the series' type, as InfluxDB's
// castToInteger/castToFloat do.
func castNumber(n Value, k kind) Value {
	switch k {
	case kindInteger:
		switch x := n.(type) {
		case float64:
			return int64(x)
		case uint64:
			return int64(x)
		}
	case kindUnsigned:
		switch x := n.(type) {
		case float64:
			return uint64(x)
		case int64:
			return uint64(x)
		}
	case kindFloat:
		if f, ok := toFloat(n); ok {
			return f
		}
	}
	return n
}

// linear is the value at t on the line through (ta, a) and (tb, b).
func linear(t, ta, tb int64, a, b Value) Value {
	if ai, ok := a.(int64); ok {
		if bi, ok := b.(int64); ok {
			m := float64(bi-ai) / float64(tb-ta)
			return int64(m*float64(t-ta) + float64(ai))
		}
	}
	if a == nil || b == nil {
		return nil
	}
	af, ok1 := toFloat(a)
	bf, ok2 := toFloat(b)
	if !ok1 || !ok2 {
		return nil // strings and booleans are not interpolated
	}
	m := (bf - af) / float64(tb-ta)
	v := m*float64(t-ta) + af
	if math.IsNaN(v) {
		return nil
	}
	return v
}
