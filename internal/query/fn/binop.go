package fn

import "math"

// BinaryOp evaluates l op r for the arithmetic of a SELECT (+ - * / % and
// the bitwise & | ^) and for comparisons (= != <> < <= > >=), with InfluxDB
// 1.x's rules: an integer op an integer stays an integer except /, which
// is a float; mixed integer and float are floats; division by zero is 0
// (integer % by zero is 0, float % by zero null); & | ^ take integers or
// booleans. The result is nil
// when either side is nil or the types do not go together, except that a
// comparison is then false and a boolean's missing other side counts as
// false, as in InfluxDB's evaluator.
func BinaryOp(op string, l, r Value) Value {
	if l == nil || r == nil {
		_, lb := l.(bool)
		_, rb := r.(bool)
		switch {
		case lb && r == nil:
			r = false
		case rb && l == nil:
			l = false
		default:
			return mismatch(op)
		}
	}
	switch x := l.(type) {
	case bool:
		y, ok := r.(bool)
		if !ok {
			return mismatch(op)
		}
		switch op {
		case "&", "and", "AND":
			return x && y
		case "|", "or", "OR":
			return x || y
		case "^":
			return x != y
		case "=":
			return x == y
		case "!=", "<>":
			return x != y
		}
		return mismatch(op)
	case string:
		y, ok := r.(string)
		if !ok {
			return mismatch(op)
		}
		switch op {
		case "=":
			return x == y
		case "!=", "<>":
			return x != y
		}
		return mismatch(op)
	case int64:
		switch y := r.(type) {
		case int64:
			return integerOp(op, x, y)
		case uint64:
			if x >= 0 {
				return integerOp(op, uint64(x), y)
			}
		}
	case uint64:
		switch y := r.(type) {
		case uint64:
			return integerOp(op, x, y)
		case int64:
			if y >= 0 {
				return integerOp(op, x, uint64(y))
			}
		}
	}
	lf, ok1 := toFloat(l)
	rf, ok2 := toFloat(r)
	if !ok1 || !ok2 {
		return mismatch(op)
	}
	return floatOp(op, lf, rf)
}

// mismatch is the result of types that do not go together: false for a
// comparison, nil otherwise.
func mismatch(op string) Value {
	switch op {
	case "=", "!=", "<>", "<", "<=", ">", ">=":
		return false
	}
	return nil
}

func floatOp(op string, x, y float64) Value {
	switch op {
	case "+":
		return x + y
	case "-":
		return x - y
	case "*":
		return x * y
	case "/":
		if y == 0 {
			return float64(0)
		}
		return x / y
	case "%":
		// InfluxDB answers null where the remainder is not a number (x % 0).
		if m := math.Mod(x, y); !math.IsNaN(m) {
			return m
		}
		return nil
	case "=":
		return x == y
	case "!=", "<>":
		return x != y
	case "<":
		return x < y
	case "<=":
		return x <= y
	case ">":
		return x > y
	case ">=":
		return x >= y
	}
	return nil
}

// integerOp applies op to two integers of one type, keeping the type except
// for /, which is a float as in InfluxDB (and 0 for a zero divisor).
func integerOp[T int64 | uint64](op string, x, y T) Value {
	switch op {
	case "+":
		return x + y
	case "-":
		return x - y
	case "*":
		return x * y
	case "/":
		if y == 0 {
			return float64(0)
		}
		return float64(x) / float64(y)
	case "%":
		if y == 0 {
			return T(0)
		}
		return x % y
	case "&":
		return x & y
	case "|":
		return x | y
	case "^":
		return x ^ y
	}
	return floatOp(op, float64(x), float64(y))
}
