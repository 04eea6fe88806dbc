// Package fn is the function library of the InfluxQL engine: aggregates,
// selectors, transformations, fill and arithmetic with InfluxDB 1.6's
// semantics (result types, tie rules, empty and null handling), checked
// against a real influxd by the package's differential tests. It is pure: no
// I/O, no clock, no logging.
package fn

// Value is one field value: float64, int64, uint64, string or bool; nil is
// null (no value, an empty window).
type Value = any

// Point is one value at a time (Unix ns).
type Point struct {
	Time  int64
	Value Value
}

// kind orders the numeric types for promotion: a window mixing integers and
// floats (a field whose type changed between shards) is reduced as floats.
type kind uint8

const (
	kindNone kind = iota
	kindBool
	kindString
	kindUnsigned
	kindInteger
	kindFloat
)

func kindOf(v Value) kind {
	switch v.(type) {
	case float64:
		return kindFloat
	case int64:
		return kindInteger
	case uint64:
		return kindUnsigned
	case string:
		return kindString
	case bool:
		return kindBool
	}
	return kindNone
}

// toFloat converts a numeric value; ok is false for strings, bools and nil.
func toFloat(v Value) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	}
	return 0, false
}

func isNumeric(v Value) bool {
	switch v.(type) {
	case float64, int64, uint64:
		return true
	}
	return false
}

// compare orders two values as InfluxDB's per-type reducers do (false <
// true for booleans); values of different numeric kinds compare as floats.
// It returns -1, 0 or +1; NaN compares equal to everything, as it does
// with InfluxDB's < and >.
func compare(a, b Value) int {
	switch x := a.(type) {
	case float64:
		if y, ok := b.(float64); ok {
			return cmp3(x < y, x > y)
		}
	case int64:
		if y, ok := b.(int64); ok {
			return cmp3(x < y, x > y)
		}
	case uint64:
		if y, ok := b.(uint64); ok {
			return cmp3(x < y, x > y)
		}
	case string:
		y, _ := b.(string)
		return cmp3(x < y, x > y)
	case bool:
		y, _ := b.(bool)
		return cmp3(!x && y, x && !y)
	}
	fa, _ := toFloat(a)
	fb, _ := toFloat(b)
	return cmp3(fa < fb, fa > fb)
}

func cmp3(lt, gt bool) int {
	switch {
	case lt:
		return -1
	case gt:
		return 1
	}
	return 0
}

func less(a, b Value) bool { return compare(a, b) < 0 }
