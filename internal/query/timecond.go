package query

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/influxdata/influxql"
)

// The bounds of an unbounded time range, as InfluxDB's influxql.MinTime and
// MaxTime.
const (
	minTime = math.MinInt64 + 2
	maxTime = math.MaxInt64 - 1
)

// splitTime removes the time comparisons from a condition (AND-ed at the
// top level, as InfluxDB requires) and returns the inclusive range they
// give and what remains. now() was reduced away before.
func splitTime(cond influxql.Expr) (lo, hi int64, rest influxql.Expr, err error) {
	lo, hi = minTime, maxTime
	rest, err = walkTime(cond, &lo, &hi)
	return lo, hi, rest, err
}

func walkTime(e influxql.Expr, lo, hi *int64) (influxql.Expr, error) {
	switch x := e.(type) {
	case nil:
		return nil, nil
	case *influxql.ParenExpr:
		inner, err := walkTime(x.Expr, lo, hi)
		if err != nil || inner == nil {
			return inner, err
		}
		if _, ok := inner.(*influxql.BinaryExpr); ok && inner != x.Expr {
			return &influxql.ParenExpr{Expr: inner}, nil
		}
		if inner == x.Expr {
			return x, nil
		}
		return inner, nil
	case *influxql.BinaryExpr:
		switch x.Op {
		case influxql.AND:
			l, err := walkTime(x.LHS, lo, hi)
			if err != nil {
				return nil, err
			}
			r, err := walkTime(x.RHS, lo, hi)
			if err != nil {
				return nil, err
			}
			switch {
			case l == nil:
				return r, nil
			case r == nil:
				return l, nil
			}
			return &influxql.BinaryExpr{Op: influxql.AND, LHS: l, RHS: r}, nil
		case influxql.OR:
			if influxql.HasTimeExpr(x) {
				return nil, errors.New("invalid time comparison operator: OR")
			}
			return x, nil
		case influxql.EQ, influxql.NEQ, influxql.LT, influxql.LTE, influxql.GT, influxql.GTE:
			op, lit := x.Op, x.RHS
			ref, ok := x.LHS.(*influxql.VarRef)
			if !ok || !isTime(ref) {
				ref, ok = x.RHS.(*influxql.VarRef)
				if !ok || !isTime(ref) {
					if influxql.HasTimeExpr(x) {
						return nil, fmt.Errorf("invalid time condition: %s", x)
					}
					return x, nil
				}
				lit, op = x.LHS, flip(op)
			}
			t, err := timeOf(lit)
			if err != nil {
				return nil, err
			}
			switch op {
			case influxql.GT:
				*lo = max(*lo, t+1)
			case influxql.GTE:
				*lo = max(*lo, t)
			case influxql.LT:
				*hi = min(*hi, t-1)
			case influxql.LTE:
				*hi = min(*hi, t)
			case influxql.EQ:
				*lo, *hi = max(*lo, t), min(*hi, t)
			default:
				return nil, errors.New("invalid time comparison operator: !=")
			}
			return nil, nil
		}
	}
	return e, nil
}

func isTime(r *influxql.VarRef) bool { return strings.EqualFold(r.Val, "time") }

func flip(op influxql.Token) influxql.Token {
	switch op {
	case influxql.LT:
		return influxql.GT
	case influxql.LTE:
		return influxql.GTE
	case influxql.GT:
		return influxql.LT
	case influxql.GTE:
		return influxql.LTE
	}
	return op
}

// timeOf is the Unix ns of a literal compared with time: an RFC 3339 (or
// "2006-01-02 15:04:05") string, an integer or number of ns, or a duration
// literal since the epoch (Grafana's 1700000000000ms).
func timeOf(e influxql.Expr) (int64, error) {
	switch x := e.(type) {
	case *influxql.TimeLiteral:
		return x.Val.UnixNano(), nil
	case *influxql.StringLiteral:
		lit, err := x.ToTimeLiteral(time.UTC)
		if err != nil {
			return 0, fmt.Errorf("invalid time: %s", x)
		}
		return lit.Val.UnixNano(), nil
	case *influxql.IntegerLiteral:
		return x.Val, nil
	case *influxql.NumberLiteral:
		return int64(x.Val), nil
	case *influxql.DurationLiteral:
		return int64(x.Val), nil
	case *influxql.ParenExpr:
		return timeOf(x.Expr)
	}
	return 0, fmt.Errorf("invalid operation: time and %s are not compatible", typeName(e))
}

func typeName(e influxql.Expr) string {
	switch e.(type) {
	case *influxql.StringLiteral:
		return "*influxql.StringLiteral"
	case *influxql.BooleanLiteral:
		return "*influxql.BooleanLiteral"
	case *influxql.VarRef:
		return "*influxql.VarRef"
	}
	return fmt.Sprintf("%T", e)
}
