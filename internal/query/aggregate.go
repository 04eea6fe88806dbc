package query

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/influxdata/influxql"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/query/fn"
	"github.com/chronostream/chronostream/internal/query/influxjson"
	"github.com/chronostream/chronostream/internal/query/tsdb"
)

// windows returns the start of each GROUP BY time window of a group (one
// window starting at the range's start without GROUP BY time).
func (p *plan) windows(g *group) ([]int64, error) {
	if p.interval == 0 {
		if p.lo == minTime {
			return []int64{0}, nil
		}
		return []int64{p.lo}, nil
	}
	lo, hi := p.lo, p.hi
	if lo == minTime {
		// No lower bound: start at the group's oldest point.
		lo = maxTime
		for _, s := range g.series {
			for _, f := range p.leafFields() {
				if c := s.s.Column(f); c != nil && c.Len() > 0 {
					lo = min(lo, c.Time(0))
				}
			}
		}
		if lo == maxTime {
			return nil, nil
		}
	}
	if hi == maxTime {
		hi = p.now
	}
	if hi < lo {
		return nil, nil
	}
	start := p.windowStart(lo)
	n := (hi-start)/p.interval + 1
	if n > maxWindows {
		return nil, fmt.Errorf("max-select-buckets limit exceeded: (%d/%d)", n, maxWindows)
	}
	ws := make([]int64, n)
	for i := range ws {
		ws[i] = start + int64(i)*p.interval
	}
	return ws, nil
}

func (p *plan) windowStart(t int64) int64 {
	m := (t - p.offset) % p.interval
	if m < 0 {
		m += p.interval
	}
	return t - m
}

// leafFields are the fields the statement's functions read.
func (p *plan) leafFields() []string {
	set := map[string]bool{}
	for _, f := range p.stmt.Fields {
		fieldRefs(f.Expr, set)
	}
	return sortedKeys(set)
}

// aggregate answers a statement with functions for one group.
func (p *plan) aggregate(m *tsdb.Measurement, g *group) (*influxjson.Series, error) {
	if rt := p.rawTransforms(); rt {
		return p.rawTransform(m, g)
	}
	if p.multi {
		return p.multiRow(m, g)
	}
	// InfluxDB reads extra windows before the range for a transformation
	// of an aggregate (see extraWindows), so the
	// first window in range has a value too; rows before the range are not
	// answered. Only ascending: descending transformations are refused.
	extra := p.extraWindows()
	if extra == 0 || p.interval == 0 || p.lo-extra*p.interval >= p.lo { // no lower bound (minTime) or none below it
		ser, err := p.aggregateWindows(m, g)
		if ser != nil {
			ser.Values = page(ser.Values, p.stmt.Offset, p.stmt.Limit)
		}
		return ser, err
	}
	first := p.windowStart(p.lo)
	wide := *p
	wide.lo, wide.first = p.lo-extra*p.interval, first
	ser, err := wide.aggregateWindows(m, g)
	if ser == nil || err != nil {
		return ser, err
	}
	ser.Values = slices.DeleteFunc(ser.Values, func(r []any) bool { return r[0].(int64) < first })
	ser.Values = page(ser.Values, p.stmt.Offset, p.stmt.Limit)
	return ser, nil
}

// extraWindows is how many windows before the range the statement's
// transformations of aggregates read: one (influxd 1.6 reads one for
// moving_average too), none for cumulative_sum.
func (p *plan) extraWindows() int64 {
	for _, f := range p.stmt.Fields {
		if name := windowTransform(f.Expr); name != "" && name != "cumulative_sum" {
			return 1
		}
	}
	return 0
}

// aggregateWindows computes the rows of every window of a group, before
// LIMIT and OFFSET.
func (p *plan) aggregateWindows(m *tsdb.Measurement, g *group) (*influxjson.Series, error) {
	ws, err := p.windows(g)
	if err != nil || len(ws) == 0 {
		return nil, err
	}
	a := &aggEval{p: p, g: g, ws: ws, cache: map[string][]fn.Point{}, present: make([]bool, len(ws))}
	cols := make([][]fn.Point, len(p.stmt.Fields))
	calls := 0
	var selector *influxql.Call
	for i, f := range p.stmt.Fields {
		influxql.WalkFunc(f.Expr, func(n influxql.Node) {
			if c, ok := n.(*influxql.Call); ok && !fn.IsMath(c.Name) {
				calls++
				if fn.IsSelector(c.Name) {
					selector = c
				}
			}
		})
		if cols[i], err = a.eval(f.Expr); err != nil {
			return nil, err
		}
	}
	if !a.any {
		return nil, nil // no point in range: no series
	}
	// A lone selector without GROUP BY time reports its point's time.
	selTime := p.interval == 0 && calls == 1 && selector != nil
	ser := &influxjson.Series{Name: m.Name, Tags: g.tags, Columns: p.columns}
	for w := range ws {
		vals := make([]any, 0, len(cols)+1)
		t := ws[w]
		null := true
		for _, c := range cols {
			if c[w].Value != nil {
				null = false
			}
			vals = append(vals, c[w].Value)
		}
		// Windows without a point are rows only when filled; a
		// transformation has rows where it has values.
		if a.transformed && null || !a.present[w] && (p.fill == fn.FillNone || p.interval == 0) {
			continue
		}
		if selTime {
			t = cols[0][w].Time
		}
		ser.Values = append(ser.Values, append([]any{t}, vals...))
	}
	if !p.stmt.TimeAscending() {
		slices.Reverse(ser.Values)
	}
	return ser, nil
}

// fillWindows fills the values of windows without a point. InfluxDB
// fills in the order it answers: descending, fill(previous) takes the
// later window's value.
func (p *plan) fillWindows(ws []int64, out []fn.Point, present []bool, mode fn.FillMode, number any) {
	if p.stmt.TimeAscending() || mode != fn.FillPrevious {
		filled := fn.FillPresent(ws, out, present, mode, number)
		for i := range out {
			out[i].Value = filled[i].Value
		}
		return
	}
	rws, rout, rpresent := slices.Clone(ws), slices.Clone(out), slices.Clone(present)
	slices.Reverse(rws)
	slices.Reverse(rout)
	slices.Reverse(rpresent)
	filled := fn.FillPresent(rws, rout, rpresent, mode, number)
	for i := range out {
		out[i].Value = filled[len(out)-1-i].Value
	}
}

// aggEval evaluates field expressions over a group's windows.
type aggEval struct {
	p           *plan
	g           *group
	ws          []int64
	cache       map[string][]fn.Point // by call text
	any         bool                  // some window had a point
	present     []bool                // per window: some call had a point
	transformed bool                  // a transformation was applied
}

// eval returns one point per window (Value nil: none).
func (a *aggEval) eval(e influxql.Expr) ([]fn.Point, error) {
	switch x := e.(type) {
	case *influxql.ParenExpr:
		return a.eval(x.Expr)
	case *influxql.BinaryExpr:
		l, err := a.eval(x.LHS)
		if err != nil {
			return nil, err
		}
		r, err := a.eval(x.RHS)
		if err != nil {
			return nil, err
		}
		out := make([]fn.Point, len(a.ws))
		for i := range out {
			out[i] = fn.Point{Time: a.ws[i], Value: fn.BinaryOp(x.Op.String(), l[i].Value, r[i].Value)}
		}
		return out, nil
	case *influxql.Call:
		key := x.String()
		if pts, ok := a.cache[key]; ok {
			return pts, nil
		}
		var pts []fn.Point
		var err error
		if fn.IsMath(x.Name) {
			pts, err = a.math(x)
		} else if transforms[strings.ToLower(x.Name)] {
			pts, err = a.transform(x)
		} else {
			pts, err = a.leaf(x)
		}
		if err != nil {
			return nil, err
		}
		a.cache[key] = pts
		return pts, nil
	case *influxql.VarRef:
		return nil, errors.New("mixing aggregate and non-aggregate queries is not supported")
	}
	v := literal(e)
	out := make([]fn.Point, len(a.ws))
	for i := range out {
		out[i] = fn.Point{Time: a.ws[i], Value: v}
	}
	return out, nil
}

// distinctOf returns the field of count(distinct(f)) or count(DISTINCT f).
func distinctOf(c *influxql.Call) (string, bool) {
	if !strings.EqualFold(c.Name, "count") || len(c.Args) != 1 {
		return "", false
	}
	switch x := c.Args[0].(type) {
	case *influxql.Distinct:
		return x.Val, true
	case *influxql.Call:
		if r, ok := x.Args[0].(*influxql.VarRef); ok && strings.EqualFold(x.Name, "distinct") && len(x.Args) == 1 {
			return r.Val, true
		}
	}
	return "", false
}

// countDistinct counts the distinct values of each window.
func (a *aggEval) countDistinct(field string) ([]fn.Point, error) {
	p := a.p
	out := make([]fn.Point, len(a.ws))
	for w, ws := range a.ws {
		lo, hi := p.lo, p.hi
		if p.interval > 0 {
			lo, hi = max(lo, ws), min(hi, ws+p.interval-1)
		}
		pts, err := a.points(field, lo, hi)
		if err != nil {
			return nil, err
		}
		out[w] = fn.Point{Time: ws}
		if len(pts) > 0 {
			out[w].Value = int64(len(fn.Distinct(pts)))
			a.any, a.present[w] = true, true
		}
	}
	if mode, number := fn.CallFill("count", p.fill, p.fillValue); p.interval > 0 && mode != fn.FillNull && mode != fn.FillNone {
		p.fillWindows(a.ws, out, a.present, mode, number)
	}
	return out, nil
}

// multiRow answers top(), bottom() and distinct(): several rows a window.
func (p *plan) multiRow(m *tsdb.Measurement, g *group) (*influxjson.Series, error) {
	c, field, ok := p.multiRowCall()
	if !ok {
		return nil, errors.New("top(), bottom() and distinct() cannot be combined with other fields")
	}
	name := strings.ToLower(c.Name)
	n := 0
	if name != "distinct" {
		if len(c.Args) != 2 {
			return nil, fmt.Errorf("chronostream supports %s(field, N) (no tags as arguments)", name)
		}
		var err error
		if n, err = fn.LimitArg(name, literal(c.Args[1])); err != nil {
			return nil, err
		}
		if l := p.stmt.Limit; l > 0 && n > l {
			return nil, fmt.Errorf("limit (%d) in %s function can not be larger than the LIMIT (%d) in the select statement", n, name, l)
		}
	}
	if err := g.checkType(name, field); err != nil {
		return nil, err
	}
	ws, err := p.windows(g)
	if err != nil || len(ws) == 0 {
		return nil, err
	}
	a := &aggEval{p: p, g: g, ws: ws}
	ser := &influxjson.Series{Name: m.Name, Tags: g.tags, Columns: p.columns}
	for _, w := range ws {
		lo, hi := p.lo, p.hi
		if p.interval > 0 {
			lo, hi = max(lo, w), min(hi, w+p.interval-1)
		}
		pts, err := a.points(field, lo, hi)
		if err != nil {
			return nil, err
		}
		switch name {
		case "top", "bottom":
			pick := fn.Top
			if name == "bottom" {
				pick = fn.Bottom
			}
			for _, pt := range pick(pts, n) {
				ser.Values = append(ser.Values, []any{pt.Time, pt.Value})
			}
		default:
			for _, v := range distinct(pts) {
				ser.Values = append(ser.Values, []any{w, v})
			}
		}
	}
	if !p.stmt.TimeAscending() {
		slices.Reverse(ser.Values)
	}
	ser.Values = page(ser.Values, p.stmt.Offset, p.stmt.Limit)
	return ser, nil
}

// distinct returns a window's distinct values ordered as InfluxDB emits
// them: by the time each first appears, then by value.
func distinct(pts []fn.Point) []any {
	first := map[any]int64{}
	var vals []any
	for _, p := range pts {
		if _, seen := first[p.Value]; !seen && p.Value != nil {
			first[p.Value] = p.Time
			vals = append(vals, p.Value)
		}
	}
	slices.SortStableFunc(vals, func(a, b any) int {
		if c := cmpInt(first[a], first[b]); c != 0 {
			return c
		}
		return cmpValues(a, b)
	})
	return vals
}

// cmpValues orders two values of one field (numbers, strings, booleans).
func cmpValues(a, b any) int {
	switch x := a.(type) {
	case float64:
		if y, ok := b.(float64); ok {
			return cmp.Compare(x, y)
		}
	case int64:
		if y, ok := b.(int64); ok {
			return cmp.Compare(x, y)
		}
	case uint64:
		if y, ok := b.(uint64); ok {
			return cmp.Compare(x, y)
		}
	case string:
		if y, ok := b.(string); ok {
			return cmp.Compare(x, y)
		}
	case bool:
		if y, ok := b.(bool); ok && x != y {
			if x {
				return 1
			}
			return -1
		}
	}
	return 0
}

// multiRowCall returns the statement's top/bottom/distinct call when it is
// the only field.
func (p *plan) multiRowCall() (*influxql.Call, string, bool) {
	if len(p.stmt.Fields) != 1 {
		return nil, "", false
	}
	switch x := p.stmt.Fields[0].Expr.(type) {
	case *influxql.Call:
		if multiRow[strings.ToLower(x.Name)] && len(x.Args) > 0 {
			if r, ok := x.Args[0].(*influxql.VarRef); ok {
				return x, r.Val, true
			}
		}
	case *influxql.Distinct:
		return &influxql.Call{Name: "distinct", Args: []influxql.Expr{&influxql.VarRef{Val: x.Val}}}, x.Val, true
	}
	return nil, "", false
}

// math applies a math function to its arguments window by window.
func (a *aggEval) math(c *influxql.Call) ([]fn.Point, error) {
	args := make([][]fn.Point, len(c.Args))
	for i, arg := range c.Args {
		var err error
		if args[i], err = a.eval(arg); err != nil {
			return nil, err
		}
	}
	out := make([]fn.Point, len(a.ws))
	vals := make([]any, len(args))
	for w := range out {
		for i := range args {
			vals[i] = args[i][w].Value
		}
		out[w] = fn.Point{Time: a.ws[w], Value: fn.Math(c.Name, vals)}
	}
	return out, nil
}

// leaf computes an aggregate or selector per window: from rollups and the
// raw points at their edges when the function is mergeable, else from the
// raw points.
func (a *aggEval) leaf(c *influxql.Call) ([]fn.Point, error) {
	name := strings.ToLower(c.Name)
	if field, ok := distinctOf(c); ok {
		return a.countDistinct(field)
	}
	ref := c.Args[0].(*influxql.VarRef)
	field := ref.Val
	if !a.g.castable(field, ref.Type) {
		return make([]fn.Point, len(a.ws)), nil // mean(f::string) of a number: no points, as in influxd
	}
	if err := a.g.checkType(name, field); err != nil {
		return nil, err
	}
	var args []fn.Value
	for _, x := range c.Args[1:] {
		args = append(args, literal(x))
	}
	red, err := fn.NewReducer(name, args)
	if err != nil {
		return nil, err
	}
	mergeable := fn.Mergeable(name) && name != "stddev" // stddev from a summary differs in the last bits
	for _, s := range a.g.series {
		if s.cond != nil {
			mergeable = false
		}
	}
	p := a.p
	out := make([]fn.Point, len(a.ws))
	present := make([]bool, len(a.ws))
	for w, ws := range a.ws {
		lo, hi := p.lo, p.hi
		if p.interval > 0 {
			lo, hi = max(lo, ws), min(hi, ws+p.interval-1)
		}
		var pt fn.Point
		var ok bool
		if mergeable {
			var sum fn.Summary
			for _, s := range a.g.series {
				if col := s.s.Column(field); col != nil {
					summarize(col, &sum, lo, hi, p.widths)
				}
			}
			if pt, ok, err = fn.FromSummary(name, &sum); err != nil {
				return nil, err
			}
		} else {
			red.Reset()
			pts, err := a.points(field, lo, hi)
			if err != nil {
				return nil, err
			}
			for _, p := range pts {
				red.Add(p)
			}
			pt, ok = red.Result()
		}
		if !ok {
			out[w] = fn.Point{Time: ws}
			continue
		}
		a.any, a.present[w], present[w] = true, true, true
		if !fn.IsSelector(name) || name == "percentile" && p.interval > 0 {
			pt.Time = ws
		}
		out[w] = pt
	}
	if mode, number := fn.CallFill(name, p.fill, p.fillValue); p.interval > 0 && mode != fn.FillNull && mode != fn.FillNone {
		p.fillWindows(a.ws, out, present, mode, number)
	}
	return out, nil
}

// points returns a group's points of field in [lo, hi] that the
// condition keeps, in InfluxDB's merge order, which decides ties (the point
// a tied percentile or top selects).
func (a *aggEval) points(field string, lo, hi int64) ([]fn.Point, error) {
	lists := make([][]fn.Point, 0, len(a.g.series))
	n := 0
	for _, s := range a.g.series {
		var list []fn.Point
		if s.cond == nil {
			col := s.s.Column(field)
			if col == nil {
				continue
			}
			for k := col.Search(lo); k < col.Len() && col.Time(k) <= hi; k++ {
				list = append(list, fn.Point{Time: col.Time(k), Value: col.Value(k)})
			}
		} else {
			need := map[string]bool{field: true}
			fieldRefs(s.cond, need)
			err := rows(s, sortedKeys(need), lo, hi, false, func(r row) error {
				if v, ok := r.vals[field]; ok {
					list = append(list, fn.Point{Time: r.t, Value: v})
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
		n += len(list)
		lists = append(lists, list)
	}
	out := make([]fn.Point, 0, n)
	_ = mergeByTime(lists, nil, func(p fn.Point) int64 { return p.Time }, true, func(p fn.Point) error {
		out = append(out, p)
		return nil
	})
	return out, nil
}

// summarize adds to sum the points of col in [lo, hi]: whole buckets of
// the widest rollup that fits, the edges from narrower ones, raw points
// at the finest edges.
func summarize(col *tsdb.Column, sum *fn.Summary, lo, hi int64, widths []int64) {
	n := col.Len()
	if n == 0 {
		return
	}
	lo, hi = max(lo, col.Time(0)), min(hi, col.Time(n-1))
	if lo > hi {
		return
	}
	var rec func(lo, hi int64, level int)
	rec = func(lo, hi int64, level int) {
		if level < 0 {
			for k := col.Search(lo); k < n && col.Time(k) <= hi; k++ {
				sum.Add(fn.Point{Time: col.Time(k), Value: col.Value(k)})
			}
			return
		}
		w := widths[level]
		r := col.Rollup(w)
		if r == nil {
			rec(lo, hi, level-1)
			return
		}
		ia, ib := ceilTo(lo, w), floorTo(hi+1, w)
		if ia >= ib {
			rec(lo, hi, level-1)
			return
		}
		r.Merge(sum, ia, ib)
		if lo < ia {
			rec(lo, ia-1, level-1)
		}
		if ib <= hi {
			rec(ib, hi, level-1)
		}
	}
	rec(lo, hi, len(widths)-1)
}

func floorTo(t, w int64) int64 {
	m := t % w
	if m < 0 {
		m += w
	}
	return t - m
}

func ceilTo(t, w int64) int64 {
	f := floorTo(t, w)
	if f == t {
		return t
	}
	return f + w
}

// transform applies derivative, difference, moving_average or
// cumulative_sum to the windows of its argument (GROUP BY time).
func (a *aggEval) transform(c *influxql.Call) ([]fn.Point, error) {
	name := strings.ToLower(c.Name)
	inner, ok := c.Args[0].(*influxql.Call)
	if !ok || a.p.interval == 0 {
		return nil, fmt.Errorf("%s aggregate requires a GROUP BY interval", name)
	}
	in, err := a.eval(inner)
	if err != nil {
		return nil, err
	}
	var pts []fn.Point
	for i, pt := range in {
		// cumulative_sum reads no window before the range (influxd's
		// extra windows are per function).
		if name == "cumulative_sum" && a.ws[i] < a.p.first {
			continue
		}
		if pt.Value != nil {
			pts = append(pts, fn.Point{Time: a.ws[i], Value: pt.Value})
		}
	}
	outPts, err := applyTransform(name, c.Args[1:], pts, time.Duration(a.p.interval))
	if err != nil {
		return nil, err
	}
	a.transformed = true
	out := make([]fn.Point, len(a.ws))
	byTime := make(map[int64]any, len(outPts))
	for _, pt := range outPts {
		byTime[pt.Time] = pt.Value
	}
	for i, ws := range a.ws {
		out[i] = fn.Point{Time: ws, Value: byTime[ws]}
	}
	return out, nil
}

// applyTransform runs a transformation; unit is derivative's default unit.
func applyTransform(name string, args []influxql.Expr, pts []fn.Point, unit time.Duration) ([]fn.Point, error) {
	switch name {
	case "derivative", "non_negative_derivative":
		if len(args) > 1 {
			return nil, fmt.Errorf("invalid number of arguments for %s, expected at least 1 but no more than 2, got %d", name, len(args)+1)
		}
		if len(args) == 1 {
			d, ok := args[0].(*influxql.DurationLiteral)
			if !ok {
				return nil, fmt.Errorf("second argument to %s must be a duration, got %T", name, args[0])
			}
			unit = d.Val
		}
		return fn.Derivative(pts, unit, name == "non_negative_derivative"), nil
	case "difference", "non_negative_difference":
		return fn.Difference(pts, name == "non_negative_difference"), nil
	case "cumulative_sum":
		return fn.CumulativeSum(pts), nil
	case "elapsed":
		unit := time.Nanosecond
		if len(args) > 1 {
			return nil, fmt.Errorf("invalid number of arguments for elapsed, expected at least 1 but no more than 2, got %d", len(args)+1)
		}
		if len(args) == 1 {
			d, ok := args[0].(*influxql.DurationLiteral)
			if !ok {
				return nil, errors.New("second argument to elapsed must be a duration")
			}
			unit = d.Val
		}
		return fn.Elapsed(pts, unit), nil
	case "moving_average":
		if len(args) != 1 {
			return nil, fmt.Errorf("invalid number of arguments for moving_average, expected 2, got %d", len(args)+1)
		}
		n, ok := args[0].(*influxql.IntegerLiteral)
		if !ok || n.Val < 1 {
			return nil, errors.New("moving_average window must be greater than 1, got 0")
		}
		return fn.MovingAverage(pts, int(n.Val)), nil
	}
	return nil, fmt.Errorf("undefined function %s()", name)
}

// rawTransforms says whether every field is a transformation of a raw
// field (derivative(usage) without GROUP BY time).
func (p *plan) rawTransforms() bool {
	for _, f := range p.stmt.Fields {
		c, ok := f.Expr.(*influxql.Call)
		if !ok || !transforms[strings.ToLower(c.Name)] {
			return false
		}
		if _, ok := c.Args[0].(*influxql.VarRef); !ok {
			return false
		}
	}
	return true
}

// rawTransform applies transformations to a group's raw points.
func (p *plan) rawTransform(m *tsdb.Measurement, g *group) (*influxjson.Series, error) {
	if p.interval > 0 {
		return nil, fmt.Errorf("aggregate function required inside the call to %s", p.stmt.Fields[0].Expr.(*influxql.Call).Name)
	}
	if len(p.stmt.Fields) != 1 {
		return nil, errors.New("chronostream supports one transformation of raw points per statement")
	}
	c := p.stmt.Fields[0].Expr.(*influxql.Call)
	field := c.Args[0].(*influxql.VarRef).Val
	if err := g.checkType(c.Name, field); err != nil {
		return nil, err
	}
	var pts []fn.Point
	for _, s := range g.series {
		need := map[string]bool{field: true}
		if s.cond != nil {
			fieldRefs(s.cond, need)
		}
		err := rows(s, sortedKeys(need), p.lo, p.hi, false, func(r row) error {
			if v, ok := r.vals[field]; ok {
				pts = append(pts, fn.Point{Time: r.t, Value: v})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(pts, func(a, b fn.Point) int { return cmpInt(a.Time, b.Time) })
	if !p.stmt.TimeAscending() {
		slices.Reverse(pts) // InfluxDB transforms in the order it reads
	}
	out, err := applyTransform(strings.ToLower(c.Name), c.Args[1:], pts, time.Second)
	if err != nil {
		return nil, err
	}
	ser := &influxjson.Series{Name: m.Name, Tags: g.tags, Columns: p.columns}
	for _, pt := range out {
		ser.Values = append(ser.Values, []any{pt.Time, pt.Value})
	}
	ser.Values = page(ser.Values, p.stmt.Offset, p.stmt.Limit)
	return ser, nil
}

// numericOnly are the functions influxd 1.6 refuses on string and boolean
// fields (true: booleans too; min and max take booleans).
var numericOnly = map[string]bool{
	"mean": true, "sum": true, "median": true, "spread": true, "stddev": true,
	"percentile": true, "derivative": true, "non_negative_derivative": true,
	"difference": true, "non_negative_difference": true, "moving_average": true,
	"cumulative_sum": true, "top": true, "bottom": true, "min": false, "max": false,
}

// checkType refuses a function on a field of a type it cannot read, with
// influxd's words, rather than answering nothing: the group's series
// holding points of field decide the type.
func (g *group) checkType(name, field string) error {
	name = strings.ToLower(name)
	bools, ok := numericOnly[name]
	if !ok {
		return nil
	}
	for _, s := range g.series {
		c := s.s.Column(field)
		if c == nil || c.Len() == 0 {
			continue
		}
		switch {
		case c.Type == event.TypeString:
			return fmt.Errorf("unsupported %s iterator type: *query.stringInterruptIterator", name)
		case c.Type == event.TypeBool && bools:
			return fmt.Errorf("unsupported %s iterator type: *query.booleanInterruptIterator", name)
		}
	}
	return nil
}

// castable says whether the group's points of field survive its ::type
// (castValue): a cast to another kind than a number's leaves none.
func (g *group) castable(field string, t influxql.DataType) bool {
	zero := map[event.FieldType]any{event.TypeFloat: 0.0, event.TypeInt: int64(0), event.TypeUint: uint64(0), event.TypeString: "", event.TypeBool: false}
	for _, s := range g.series {
		if c := s.s.Column(field); c != nil && castValue(zero[c.Type], t) != nil {
			return true
		}
	}
	return false
}
