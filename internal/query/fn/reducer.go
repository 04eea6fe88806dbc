package fn

import (
	"fmt"
	"strings"
	"time"

	"github.com/influxdata/influxql"
)

// Reducer reduces one window of points to one point. Points arrive in time
// order, or in reverse for ORDER BY time DESC (ties in arrival order, which
// decides the point a tied percentile or mode picks). Result's ok is false
// for an empty window (no row, or a fill); ok with a nil Value is a row
// whose value is null (stddev of one point: see FillPresent). Selectors
// (IsSelector) return the selected point's time; aggregates return Time 0
// and the caller sets the window start. The reducers that need the whole
// window (median, percentile, mode, stddev, integral) hold its values,
// 16 bytes a point for one numeric field.
type Reducer interface {
	Add(p Point)
	Result() (p Point, ok bool)
	Reset()
}

// NewReducer returns the reducer of the InfluxQL function name; args are the
// call's literal arguments after the field (percentile's N). Names are
// case-insensitive, as InfluxQL's are. The errors are worded as InfluxDB
// words them, so the /query endpoint can return them unchanged.
func NewReducer(name string, args []Value) (Reducer, error) {
	name = strings.ToLower(name)
	switch name {
	case "percentile":
		if len(args) != 1 {
			return nil, fmt.Errorf("invalid number of arguments for percentile, expected 2, got %d", len(args)+1)
		}
		n, ok := toFloat(args[0])
		if !ok {
			return nil, fmt.Errorf("expected float argument in percentile()")
		}
		return &sliceReducer{reduce: func(w *window) (Point, bool) { return w.percentile(n) }, numeric: true}, nil
	case "integral":
		if len(args) > 1 {
			return nil, fmt.Errorf("invalid number of arguments for integral, expected at least 1 but no more than 2, got %d", len(args)+1)
		}
		unit := time.Second
		if len(args) == 1 {
			d, ok := durationArg(args[0])
			if !ok {
				return nil, fmt.Errorf("second argument must be a duration")
			}
			if d <= 0 {
				return nil, fmt.Errorf("duration argument must be positive, got %s", influxql.FormatDuration(d))
			}
			unit = d
		}
		return &sliceReducer{reduce: func(w *window) (Point, bool) { return integral(w.points(), unit) }, numeric: true}, nil
	}
	mk, ok := reducers[name]
	if !ok {
		return nil, fmt.Errorf("undefined function %s()", name)
	}
	if len(args) != 0 {
		return nil, fmt.Errorf("invalid number of arguments for %s, expected 1, got %d", name, len(args)+1)
	}
	return mk(), nil
}

// durationArg reads a duration literal passed as a time.Duration or as
// int64 nanoseconds.
func durationArg(v Value) (time.Duration, bool) {
	switch d := v.(type) {
	case time.Duration:
		return d, true
	case int64:
		return time.Duration(d), true
	}
	return 0, false
}

// CheckType returns InfluxDB's error for a function called on a field of
// v's type it does not take (mean of a string, sum of a boolean, …), nil
// when the type is accepted. InfluxDB reports it when the statement runs,
// as the statement's error, naming its iterator type; the wording is
// InfluxDB 1.6's.
func CheckType(name string, v Value) error {
	name = strings.ToLower(name)
	k := kindOf(v)
	ok := true
	switch name {
	case "count", "first", "last", "mode", "distinct", "elapsed", "sample":
	case "min", "max":
		ok = k != kindString
	default:
		ok = k != kindString && k != kindBool
	}
	if ok || k == kindNone {
		return nil
	}
	label := name
	switch name {
	case "non_negative_derivative":
		label = "derivative"
	case "non_negative_difference":
		label = "difference"
	case "cumulative_sum":
		label = "cumulative sum"
	case "moving_average":
		label = "moving average"
	}
	typ := "string"
	if k == kindBool {
		typ = "boolean"
	}
	return fmt.Errorf("unsupported %s iterator type: *query.%sInterruptIterator", label, typ)
}

// CallFill is the fill a call's empty windows take: InfluxDB fills count()'s
// empty windows with 0 under fill(null), the default, and count's
// fill(number) is an integer even where no window has a value to take the
// type from.
func CallFill(name string, mode FillMode, number Value) (FillMode, Value) {
	if strings.EqualFold(name, "count") {
		switch mode {
		case FillNull:
			return FillNumber, int64(0)
		case FillNumber:
			return mode, castNumber(number, kindInteger)
		}
	}
	return mode, number
}

var reducers = map[string]func() Reducer{
	"count":  func() Reducer { return &countReducer{} },
	"sum":    func() Reducer { return &sumReducer{} },
	"mean":   func() Reducer { return &meanReducer{} },
	"min":    func() Reducer { return &selectReducer{better: minBetter, accepts: orderable} },
	"max":    func() Reducer { return &selectReducer{better: maxBetter, accepts: orderable} },
	"first":  func() Reducer { return &selectReducer{better: firstBetter, accepts: anyValue} },
	"last":   func() Reducer { return &selectReducer{better: lastBetter, accepts: anyValue} },
	"spread": func() Reducer { return &spreadReducer{} },
	"median": func() Reducer { return &sliceReducer{reduce: (*window).median, numeric: true} },
	"stddev": func() Reducer { return &sliceReducer{reduce: (*window).stddev, numeric: true} },
	"mode":   func() Reducer { return &sliceReducer{reduce: (*window).mode} },
}

// IsSelector reports whether the function returns one of its input points
// (with that point's time) rather than a computed value, as InfluxDB's
// influxql.IsSelector does.
func IsSelector(name string) bool {
	switch strings.ToLower(name) {
	case "first", "last", "min", "max", "percentile", "sample", "top", "bottom":
		return true
	}
	return false
}

// countReducer counts non-null values of any type; its result is an int64.
type countReducer struct{ n int64 }

func (r *countReducer) Add(p Point) {
	if p.Value != nil {
		r.n++
	}
}

func (r *countReducer) Result() (Point, bool) {
	if r.n == 0 {
		return Point{}, false
	}
	return Point{Value: r.n}, true
}

func (r *countReducer) Reset() { r.n = 0 }

// numSum adds numbers keeping InfluxDB's result types: integers sum as
// wrapping int64 (as InfluxDB's IntegerSumReduce), unsigned as uint64,
// floats as float64; a window mixing kinds is summed as floats.
type numSum struct {
	f    float64
	i    int64
	u    uint64
	n    int64
	kind kind
}

func (s *numSum) add(v Value) bool {
	switch x := v.(type) {
	case float64:
		s.f += x
		s.kind = max(s.kind, kindFloat)
	case int64:
		s.i += x
		s.kind = max(s.kind, kindInteger)
	case uint64:
		s.u += x
		s.kind = max(s.kind, kindUnsigned)
	default:
		return false
	}
	s.n++
	return true
}

// value is the sum in the window's type.
func (s *numSum) value() Value {
	switch s.kind {
	case kindInteger:
		if s.u == 0 {
			return s.i
		}
		return float64(s.i) + float64(s.u)
	case kindUnsigned:
		return s.u
	}
	return s.f + float64(s.i) + float64(s.u)
}

// float is the sum as a float, for mean: InfluxDB sums integers as int64
// and divides once.
func (s *numSum) float() float64 {
	if s.kind == kindInteger && s.u == 0 && s.f == 0 {
		return float64(s.i)
	}
	return s.f + float64(s.i) + float64(s.u)
}

type sumReducer struct{ s numSum }

func (r *sumReducer) Add(p Point) { r.s.add(p.Value) }

func (r *sumReducer) Result() (Point, bool) {
	if r.s.n == 0 {
		return Point{}, false
	}
	return Point{Value: r.s.value()}, true
}

func (r *sumReducer) Reset() { r.s = numSum{} }

// meanReducer is sum/count, always a float.
type meanReducer struct{ s numSum }

func (r *meanReducer) Add(p Point) { r.s.add(p.Value) }

func (r *meanReducer) Result() (Point, bool) {
	if r.s.n == 0 {
		return Point{}, false
	}
	return Point{Value: r.s.float() / float64(r.s.n)}, true
}

func (r *meanReducer) Reset() { r.s = numSum{} }

// selectReducer keeps the one point that better prefers over the kept one.
type selectReducer struct {
	better  func(curr, prev Point) bool
	accepts func(v Value) bool
	kept    Point
	has     bool
}

func (r *selectReducer) Add(p Point) {
	if p.Value == nil || !r.accepts(p.Value) {
		return
	}
	if !r.has || r.better(p, r.kept) {
		r.kept, r.has = p, true
	}
}

func (r *selectReducer) Result() (Point, bool) { return r.kept, r.has }

func (r *selectReducer) Reset() { r.kept, r.has = Point{}, false }

func anyValue(v Value) bool { return v != nil }

// orderable: min and max take numbers and booleans, not strings.
func orderable(v Value) bool {
	_, isString := v.(string)
	return v != nil && !isString
}

// The tie rules are InfluxDB's FloatMinReduce & co: among equal values the
// earliest time wins; among equal times first and last keep the larger
// value (but first keeps false over true).
func minBetter(c, p Point) bool {
	d := compare(c.Value, p.Value)
	return d < 0 || (d == 0 && c.Time < p.Time)
}

func maxBetter(c, p Point) bool {
	d := compare(c.Value, p.Value)
	return d > 0 || (d == 0 && c.Time < p.Time)
}

func firstBetter(c, p Point) bool {
	if c.Time != p.Time {
		return c.Time < p.Time
	}
	// Except for booleans: InfluxDB's first() prefers false on a tie.
	if cb, ok := c.Value.(bool); ok {
		pb, _ := p.Value.(bool)
		return !cb && pb
	}
	return less(p.Value, c.Value)
}

func lastBetter(c, p Point) bool {
	return c.Time > p.Time || (c.Time == p.Time && less(p.Value, c.Value))
}

func equal(a, b Value) bool { return compare(a, b) == 0 }

// spreadReducer is max-min, in the field's type.
type spreadReducer struct {
	min, max Value
}

func (r *spreadReducer) Add(p Point) {
	if !isNumeric(p.Value) {
		return
	}
	if r.min == nil || less(p.Value, r.min) {
		r.min = p.Value
	}
	if r.max == nil || less(r.max, p.Value) {
		r.max = p.Value
	}
}

func (r *spreadReducer) Result() (Point, bool) {
	if r.min == nil {
		return Point{}, false
	}
	return Point{Value: sub(r.max, r.min)}, true
}

func (r *spreadReducer) Reset() { r.min, r.max = nil, nil }

// sub is max-min for spread: same kinds keep their type.
func sub(a, b Value) Value {
	switch x := a.(type) {
	case int64:
		if y, ok := b.(int64); ok {
			return x - y
		}
	case uint64:
		if y, ok := b.(uint64); ok {
			return x - y
		}
	}
	fa, _ := toFloat(a)
	fb, _ := toFloat(b)
	return fa - fb
}

// integral is the area under the window's points by the trapezium rule, per
// unit, as a float; a point at the same time as the previous one replaces
// it (as InfluxDB's reducer does) and one point gives 0. Across GROUP BY
// time windows InfluxDB also interpolates at the window edges: Integral
// does that.
func integral(a []Point, unit time.Duration) (Point, bool) {
	out := Integral(a, unit, nil)
	if len(out) == 0 {
		return Point{}, false
	}
	return out[0], true
}
