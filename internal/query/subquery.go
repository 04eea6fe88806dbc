package query

import (
	"context"
	"regexp"

	"github.com/influxdata/influxql"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/query/influxjson"
	"github.com/chronostream/chronostream/internal/query/tsdb"
)

// selectSubquery runs the inner statement, loads its rows into a
// throwaway index (columns become fields, GROUP BY tags stay tags) and runs
// the outer statement over it: the one evaluator serves both.
func (e *Engine) selectSubquery(ctx context.Context, s *influxql.SelectStatement, sq *influxql.SubQuery, def string) ([]influxjson.Series, error) {
	inner := sq.Statement.Clone()
	// The outer time range bounds the inner query too, as in InfluxDB.
	if !influxql.HasTimeExpr(inner.Condition) && s.Condition != nil {
		if lo, hi, _, err := splitTime(influxql.Reduce(s.Condition, &influxql.NowValuer{Now: e.now().UTC()})); err == nil && (lo != minTime || hi != maxTime) {
			tc := timeCond(lo, hi)
			if inner.Condition == nil {
				inner.Condition = tc
			} else {
				inner.Condition = &influxql.BinaryExpr{Op: influxql.AND, LHS: &influxql.ParenExpr{Expr: inner.Condition}, RHS: tc}
			}
		}
	}
	rows, err := e.selectStatement(ctx, inner, def)
	if err != nil {
		return nil, err
	}
	tmp := tsdb.NewDB("subquery", nil) // read once: rollups would not pay
	tmp.Lock()
	for _, ser := range rows {
		for _, vals := range ser.Values {
			fields := map[string]event.Value{}
			for i, c := range ser.Columns {
				if i == 0 {
					continue
				}
				if v, ok := toValue(vals[i]); ok {
					fields[c] = v
				}
			}
			t, _ := vals[0].(int64)
			tmp.Insert(ser.Name, ser.Tags, t, fields)
		}
	}
	tmp.Unlock()
	outer := s.Clone()
	outer.Sources = influxql.Sources{&influxql.Measurement{Regex: &influxql.RegexLiteral{Val: regexp.MustCompile(``)}}}
	return e.selectOn(tmp, outer)
}

func timeCond(lo, hi int64) influxql.Expr {
	ref := &influxql.VarRef{Val: "time"}
	var c influxql.Expr
	if lo != minTime {
		c = &influxql.BinaryExpr{Op: influxql.GTE, LHS: ref, RHS: &influxql.IntegerLiteral{Val: lo}}
	}
	if hi != maxTime {
		h := &influxql.BinaryExpr{Op: influxql.LTE, LHS: ref, RHS: &influxql.IntegerLiteral{Val: hi}}
		if c == nil {
			return h
		}
		c = &influxql.BinaryExpr{Op: influxql.AND, LHS: c, RHS: h}
	}
	return c
}

func toValue(v any) (event.Value, bool) {
	switch x := v.(type) {
	case float64:
		return event.Float(x), true
	case int64:
		return event.Int(x), true
	case uint64:
		return event.Uint(x), true
	case string:
		return event.String(x), true
	case bool:
		return event.Bool(x), true
	}
	return event.Value{}, false // null
}
