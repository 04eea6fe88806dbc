package fn

import (
	"fmt"
	"math"
	"strings"
)

// mathArity is the number of arguments of each InfluxQL math function.
var mathArity = map[string]int{
	"abs": 1, "sin": 1, "cos": 1, "tan": 1, "asin": 1, "acos": 1, "atan": 1,
	"exp": 1, "ln": 1, "log2": 1, "log10": 1, "sqrt": 1, "ceil": 1, "floor": 1, "round": 1,
	"atan2": 2, "log": 2, "pow": 2,
}

// IsMath reports whether name is one of InfluxQL's math functions (applied
// row by row, to fields or to aggregates).
func IsMath(name string) bool {
	_, ok := mathArity[strings.ToLower(name)]
	return ok
}

// CheckMathArgs returns InfluxDB's error for a math call with n arguments
// when it takes another number.
func CheckMathArgs(name string, n int) error {
	name = strings.ToLower(name)
	want, ok := mathArity[name]
	if !ok {
		return fmt.Errorf("undefined function %s()", name)
	}
	if n != want {
		return fmt.Errorf("invalid number of arguments for %s, expected %d, got %d", name, want, n)
	}
	return nil
}

// unary are the one-argument math functions on floats.
var unary = map[string]func(float64) float64{
	"abs": math.Abs, "ceil": math.Ceil, "floor": math.Floor, "round": math.Round,
	"sin": math.Sin, "cos": math.Cos, "tan": math.Tan, "asin": math.Asin, "acos": math.Acos, "atan": math.Atan,
	"exp": math.Exp, "ln": math.Log, "log2": math.Log2, "log10": math.Log10, "sqrt": math.Sqrt,
}

// Math evaluates a math function on one row's values as InfluxDB 1.6 does:
// a float result, except that abs, ceil, floor and round return an integer
// argument unchanged (abs(-3i) is -3 in InfluxDB 1.6, a bug kept for
// fidelity); nil for a string, a boolean or null argument, and for a
// result that is not a number (sqrt(-1)). ±Inf is returned as is (the
// writer answers null where influxd fails to encode it).
func Math(name string, args []Value) Value {
	name = strings.ToLower(name)
	if len(args) != mathArity[name] {
		return nil
	}
	if len(args) == 1 {
		switch x := args[0].(type) {
		case int64, uint64:
			switch name {
			case "abs", "ceil", "floor", "round":
				return x
			}
		}
		x, ok := toFloat(args[0])
		if !ok {
			return nil
		}
		return notNaN(unary[name](x))
	}
	x, ok1 := toFloat(args[0])
	y, ok2 := toFloat(args[1])
	if !ok1 || !ok2 {
		return nil
	}
	switch name {
	case "atan2":
		return notNaN(math.Atan2(x, y))
	case "log":
		return notNaN(math.Log(x) / math.Log(y))
	}
	return notNaN(math.Pow(x, y))
}

func notNaN(f float64) Value {
	if math.IsNaN(f) {
		return nil
	}
	return f
}
