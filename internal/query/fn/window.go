package fn

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
	"sort"
)

// sliceReducer keeps the window's values for the functions that need all of
// them (median, percentile, stddev, mode, integral).
type sliceReducer struct {
	reduce  func(w *window) (Point, bool)
	numeric bool
	w       window
}

func (r *sliceReducer) Add(p Point) {
	if p.Value == nil || (r.numeric && !isNumeric(p.Value)) {
		return
	}
	r.w.add(p)
}

func (r *sliceReducer) Result() (Point, bool) {
	if r.w.len() == 0 {
		return Point{}, false
	}
	return r.reduce(&r.w)
}

func (r *sliceReducer) Reset() { r.w.reset() }

// window holds one window's values in arrival order. Values of one numeric
// type (one field's: the usual case) are kept unboxed, which sorts many
// times faster than interfaces; other values (strings, booleans, unsigned,
// a mix) fall back to points.
type window struct {
	times []int64
	fs    []float64
	is    []int64
	pts   []Point // used once boxed is set
	kind  kind    // of fs or is
	boxed bool

	sortedF []float64 // scratch copies for selection, kept across windows
	sortedI []int64
}

// floats and ints return scratch copies of the values, which selection
// reorders (the originals keep the arrival order).
func (w *window) floats() []float64 {
	w.sortedF = append(w.sortedF[:0], w.fs...)
	return w.sortedF
}

func (w *window) ints() []int64 {
	w.sortedI = append(w.sortedI[:0], w.is...)
	return w.sortedI
}

func (w *window) add(p Point) {
	if !w.boxed {
		switch v := p.Value.(type) {
		case float64:
			if w.kind == kindNone || w.kind == kindFloat {
				w.kind, w.fs, w.times = kindFloat, append(w.fs, v), append(w.times, p.Time)
				return
			}
		case int64:
			if w.kind == kindNone || w.kind == kindInteger {
				w.kind, w.is, w.times = kindInteger, append(w.is, v), append(w.times, p.Time)
				return
			}
		}
		w.pts, w.boxed = w.points(), true
	}
	w.pts = append(w.pts, p)
}

func (w *window) len() int {
	if w.boxed {
		return len(w.pts)
	}
	return len(w.times)
}

func (w *window) reset() {
	w.times, w.fs, w.is, w.pts = w.times[:0], w.fs[:0], w.is[:0], w.pts[:0]
	w.kind, w.boxed = kindNone, false
}

// points returns the window as points (a copy unless already boxed).
func (w *window) points() []Point {
	if w.boxed {
		return w.pts
	}
	out := make([]Point, len(w.times))
	for i, t := range w.times {
		if w.kind == kindFloat {
			out[i] = Point{Time: t, Value: w.fs[i]}
		} else {
			out[i] = Point{Time: t, Value: w.is[i]}
		}
	}
	return out
}

// median averages the two middle values of an even count as InfluxDB does
// (lo + (hi-lo)/2); the result is a float.
func (w *window) median() (Point, bool) {
	switch {
	case w.boxed:
		return medianPoints(w.pts)
	case w.kind == kindFloat:
		s := w.floats()
		if len(s)%2 == 1 {
			return Point{Value: selectKth(s, len(s)/2)}, true
		}
		lo, hi := middle(s)
		return Point{Value: lo + (hi-lo)/2}, true
	default:
		s := w.ints()
		if len(s)%2 == 1 {
			return Point{Value: float64(selectKth(s, len(s)/2))}, true
		}
		lo, hi := middle(s)
		return Point{Value: float64(lo) + float64(hi-lo)/2}, true
	}
}

// percentile is nearest rank: index floor(n*p/100+0.5)-1 in value order,
// equal values in arrival order; outside the window (percentile 0 of
// anything) there is no point. It is a selector: the point keeps its time.
func (w *window) percentile(p float64) (Point, bool) {
	i := int(math.Floor(float64(w.len())*p/100+0.5)) - 1
	if i < 0 || i >= w.len() {
		return Point{}, false
	}
	switch {
	case w.boxed:
		s := slices.Clone(w.pts)
		sortByValue(s)
		return s[i], true
	case w.kind == kindFloat:
		return nth(w.fs, w.floats(), w.times, i)
	default:
		return nth(w.is, w.ints(), w.times, i)
	}
}

// nth is the i-th point in (value, arrival) order: the value selected from
// scratch (a copy of vs), the time from the matching occurrence of it in
// arrival order.
func nth[T float64 | int64](vs, scratch []T, times []int64, i int) (Point, bool) {
	v := selectKth(scratch, i)
	k := i // v's k-th occurrence in arrival order, once the smaller are counted out
	for _, x := range vs {
		if cmp.Less(x, v) {
			k--
		}
	}
	for j, x := range vs {
		if cmp.Compare(x, v) == 0 {
			if k == 0 {
				return Point{Time: times[j], Value: x}, true // x, not v: the very point (NaN payloads differ)
			}
			k--
		}
	}
	return Point{Value: v}, true // unreachable: v is one of vs
}

// middle returns the two middle values of s, of even length, reordering s.
func middle[T float64 | int64](s []T) (lo, hi T) {
	lo = selectKth(s, len(s)/2-1)
	return lo, slices.MinFunc(s[len(s)/2:], cmp.Compare[T])
}

// selectKth reorders s so that s[k] is its k-th smallest value (in
// slices.Sort's order) with no larger value before it, and returns it:
// quickselect with a three-way partition, expected O(n), falling back to a
// sort when partitions keep coming out lopsided.
func selectKth[T float64 | int64](s []T, k int) T {
	lo, hi := 0, len(s)-1
	for budget := 2 * bits.Len(uint(len(s))); lo < hi; budget-- {
		if budget == 0 {
			slices.Sort(s[lo : hi+1])
			return s[k]
		}
		mid := lo + (hi-lo)/2
		if cmp.Less(s[mid], s[lo]) {
			s[mid], s[lo] = s[lo], s[mid]
		}
		if cmp.Less(s[hi], s[lo]) {
			s[hi], s[lo] = s[lo], s[hi]
		}
		if cmp.Less(s[hi], s[mid]) {
			s[hi], s[mid] = s[mid], s[hi]
		}
		pivot := s[mid]
		// s[lo:lt] < pivot, s[lt:i] == pivot, s[gt+1:hi+1] > pivot
		lt, i, gt := lo, lo, hi
		for i <= gt {
			switch c := cmp.Compare(s[i], pivot); {
			case c < 0:
				s[lt], s[i] = s[i], s[lt]
				lt++
				i++
			case c > 0:
				s[i], s[gt] = s[gt], s[i]
				gt--
			default:
				i++
			}
		}
		switch {
		case k < lt:
			hi = lt - 1
		case k > gt:
			lo = gt + 1
		default:
			return pivot
		}
	}
	return s[k]
}

// stddev is the sample standard deviation (n-1) as a float, computed as
// InfluxDB does (running mean, then the sum of squares), so it matches it to
// the bit; one point gives a null value, not an empty window.
func (w *window) stddev() (Point, bool) {
	if w.len() < 2 {
		return Point{Value: nil}, true
	}
	var mean, variance float64
	var n int
	each := func(f func(v float64)) {
		switch {
		case w.boxed:
			for _, p := range w.pts {
				v, _ := toFloat(p.Value)
				f(v)
			}
		case w.kind == kindFloat:
			for _, v := range w.fs {
				f(v)
			}
		default:
			for _, v := range w.is {
				f(float64(v))
			}
		}
	}
	each(func(v float64) {
		if !math.IsNaN(v) {
			n++
			mean += (v - mean) / float64(n)
		}
	})
	each(func(v float64) {
		if !math.IsNaN(v) {
			variance += math.Pow(v-mean, 2)
		}
	})
	return Point{Value: math.Sqrt(variance / float64(n-1))}, true
}

// mode is the most frequent value. Ties in count follow InfluxDB's loop
// over the values sorted by value: a later value takes the lead when its
// first time is not after the time of the leader's last occurrence (so it
// is not simply the smallest value).
func (w *window) mode() (Point, bool) {
	switch {
	case w.boxed:
		return modePoints(w.pts)
	case w.kind == kindFloat:
		return Point{Value: modeOf(w.fs, w.times)}, true
	default:
		return Point{Value: modeOf(w.is, w.times)}, true
	}
}

func modeOf[T float64 | int64](vs []T, times []int64) T {
	type pair struct {
		v T
		t int64
		i int // arrival
	}
	s := make([]pair, len(vs))
	for i, v := range vs {
		s[i] = pair{v, times[i], i}
	}
	// (value, arrival) is InfluxDB's value order, stable: equal values in
	// arrival order, which is time order or, for ORDER BY time DESC, its
	// reverse.
	slices.SortFunc(s, func(a, b pair) int {
		if c := cmp.Compare(a.v, b.v); c != 0 {
			return c
		}
		return cmp.Compare(a.i, b.i)
	})
	mostFreq, currFreq := 0, 0
	currMode, mostMode := s[0].v, s[0].v
	currTime, mostTime := s[0].t, s[0].t
	for _, p := range s {
		if cmp.Compare(p.v, currMode) != 0 {
			currFreq, currMode, currTime = 1, p.v, p.t
			continue
		}
		currFreq++
		if mostFreq > currFreq || (mostFreq == currFreq && currTime > mostTime) {
			continue
		}
		mostFreq, mostMode, mostTime = currFreq, p.v, p.t
	}
	return mostMode
}

// The boxed versions serve strings, booleans, unsigned and mixed windows.

// sortByValue sorts stably, so equal values stay in arrival order.
func sortByValue(a []Point) {
	sort.SliceStable(a, func(i, j int) bool { return less(a[i].Value, a[j].Value) })
}

func medianPoints(a []Point) (Point, bool) {
	s := slices.Clone(a)
	sortByValue(s)
	if len(s)%2 == 0 {
		lo, hi := s[len(s)/2-1].Value, s[len(s)/2].Value
		lof, _ := toFloat(lo)
		d, _ := toFloat(sub(hi, lo))
		return Point{Value: lof + d/2}, true
	}
	f, _ := toFloat(s[len(s)/2].Value)
	return Point{Value: f}, true
}

func modePoints(a []Point) (Point, bool) {
	s := slices.Clone(a)
	sortByValue(s)
	mostFreq, currFreq := 0, 0
	currMode, mostMode := s[0].Value, s[0].Value
	currTime, mostTime := s[0].Time, s[0].Time
	for _, p := range s {
		if !equal(p.Value, currMode) {
			currFreq, currMode, currTime = 1, p.Value, p.Time
			continue
		}
		currFreq++
		if mostFreq > currFreq || (mostFreq == currFreq && currTime > mostTime) {
			continue
		}
		mostFreq, mostMode, mostTime = currFreq, p.Value, p.Time
	}
	return Point{Value: mostMode}, true
}
