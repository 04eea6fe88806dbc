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
// windows filled as InfluxDB fills them: vals holds one point per window,
// Value nil when the window is empty. fill(number) takes the series' type
// (a float number fills an integer series truncated); fill(previous) and
// fill(linear) leave the windows before the first value (and, for linear,
// after the last) null; linear interpolation of integers truncates.
func Fill(windows []int64, vals []Point, mode FillMode, number Value) []Point {
	out := make([]Point, 0, len(windows))
	seriesKind := kindNone
	for _, v := range vals {
		if k := kindOf(v.Value); k != kindNone {
			seriesKind = k
			break
		}
	}
	prev := -1 // index of the last non-null window
	for i, t := range windows {
		var v Value
		if i < len(vals) {
			v = vals[i].Value
		}
		if v != nil {
			prev = i
			out = append(out, Point{Time: t, Value: v})
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
			if prev >= 0 {
				if next := nextValue(vals, i+1); next >= 0 {
					v = linear(t, windows[prev], windows[next], vals[prev].Value, vals[next].Value)
				}
			}
		}
		out = append(out, Point{Time: t, Value: v})
	}
	return out
}

func nextValue(vals []Point, from int) int {
	for j := from; j < len(vals); j++ {
		if vals[j].Value != nil {
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
