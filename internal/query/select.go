package query

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/influxdata/influxql"

	"github.com/chronostream/chronostream/internal/query/fn"
	"github.com/chronostream/chronostream/internal/query/influxjson"
	"github.com/chronostream/chronostream/internal/query/tsdb"
)

// maxWindows bounds GROUP BY time windows per statement, as InfluxDB's
// max-select-buckets would.
const maxWindows = 100_000

// transforms are the functions over a series of points (raw or windowed)
// rather than over one window.
var transforms = map[string]bool{
	"derivative": true, "non_negative_derivative": true, "difference": true,
	"non_negative_difference": true, "moving_average": true, "cumulative_sum": true,
	"elapsed": true,
}

// unsupportedFuncs are InfluxQL functions chronostream does not evaluate:
// named as such, rather than undefined, in the error.
var unsupportedFuncs = map[string]bool{
	"integral": true, "holt_winters": true, "holt_winters_with_fit": true, "sample": true,
	"exponential_moving_average": true, "double_exponential_moving_average": true,
	"triple_exponential_moving_average": true, "relative_strength_index": true,
	"triple_exponential_derivative": true, "kaufmans_efficiency_ratio": true,
	"kaufmans_adaptive_moving_average": true, "chande_momentum_oscillator": true,
}

// multiRow are the functions that answer several rows a window.
var multiRow = map[string]bool{"top": true, "bottom": true, "distinct": true}

var aggregates = map[string]bool{
	"count": true, "sum": true, "mean": true, "median": true, "mode": true, "min": true, "max": true,
	"first": true, "last": true, "spread": true, "stddev": true, "percentile": true,
}

func (e *Engine) selectStatement(ctx context.Context, s *influxql.SelectStatement, def string) ([]influxjson.Series, error) {
	for _, src := range s.Sources {
		if sq, ok := src.(*influxql.SubQuery); ok {
			if len(s.Sources) > 1 {
				return nil, errors.New("chronostream supports one subquery as the only source")
			}
			return e.selectSubquery(ctx, s, sq, def)
		}
	}
	name, err := oneDB(s.Sources, def)
	if err != nil {
		return nil, err
	}
	db, err := e.database(ctx, name)
	if err != nil {
		return nil, err
	}
	return e.selectOn(db, s)
}

// oneDB is the one database a statement's measurements are in (def for
// those that name none). Measurements of several are refused: the
// statement is evaluated over one index, where "cpu" next to
// "other".."logs" was read from other's cpu.
func oneDB(sources influxql.Sources, def string) (string, error) {
	name, first := def, true
	for _, src := range sources {
		m, ok := src.(*influxql.Measurement)
		if !ok {
			continue
		}
		db := cmp.Or(m.Database, def)
		if !first && db != name {
			return "", fmt.Errorf("chronostream reads the measurements of one database per statement, not of %q and %q", name, db)
		}
		name, first = db, false
	}
	return name, nil
}

// selectOn evaluates a statement over one DB's index.
func (e *Engine) selectOn(db *tsdb.DB, s *influxql.SelectStatement) ([]influxjson.Series, error) {
	var out []influxjson.Series
	// each visits the columns the statement may read.
	each := func(fn func(*tsdb.Column) bool) {
		for _, m := range measurements(db, s.Sources) {
			for _, x := range m.Series() {
				for f := range m.Fields {
					if c := x.Column(f); c != nil && !fn(c) {
						return
					}
				}
			}
		}
	}
	ready := func() bool {
		ok := true
		each(func(c *tsdb.Column) bool { ok = c.Ready(); return ok })
		return ok
	}
	prepare := func() { each(func(c *tsdb.Column) bool { c.Prepare(); return true }) }
	err := withDB(db, ready, prepare, func() error {
		var err error
		out, err = e.evaluate(db, s)
		return err
	})
	return out, err
}

// plan is a statement ready to evaluate.
type plan struct {
	stmt             *influxql.SelectStatement
	lo, hi           int64 // inclusive time range
	interval, offset int64
	dims             []string
	cond             influxql.Expr // without time
	columns          []string
	agg              bool
	fill             fn.FillMode
	fillValue        any
	widths           []int64 // rollup widths, narrowest first
	limitRows        int
	now              int64
	tagsOnly         bool  // only tags selected: InfluxDB answers no series
	multi            bool  // top(), bottom() or distinct(): several rows a window
	first            int64 // windows before this one only feed transformations (see extraWindows)
}

func (e *Engine) evaluate(db *tsdb.DB, s *influxql.SelectStatement) ([]influxjson.Series, error) {
	ms := measurements(db, s.Sources)
	stmt, err := s.RewriteFields(mapper{db})
	if err != nil {
		return nil, err
	}
	stmt.RewriteDistinct() // DISTINCT f is distinct(f), named "distinct"

	p, err := e.compile(stmt)
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 || p.tagsOnly {
		return nil, nil
	}
	var out []influxjson.Series
	rows := 0
	for _, m := range ms {
		for _, g := range p.group(m) {
			var ser *influxjson.Series
			if p.agg {
				ser, err = p.aggregate(m, g)
			} else {
				ser, err = p.raw(m, g)
			}
			if err != nil {
				return nil, err
			}
			if ser == nil || len(ser.Values) == 0 {
				continue
			}
			rows += len(ser.Values)
			if rows > p.limitRows {
				return nil, fmt.Errorf("max-select-point limit exceeded: the statement returns more than %d rows", p.limitRows)
			}
			out = append(out, *ser)
		}
	}
	// SLIMIT and SOFFSET count series in ascending order; descending,
	// InfluxDB then walks the series backwards.
	out = page(out, stmt.SOffset, stmt.SLimit)
	if !stmt.TimeAscending() {
		slices.Reverse(out)
	}
	return out, nil
}

func (e *Engine) compile(stmt *influxql.SelectStatement) (*plan, error) {
	now := e.now().UTC()
	p := &plan{stmt: stmt, columns: stmt.ColumnNames(), limitRows: e.maxRows(), now: now.UnixNano()}
	cond := influxql.Reduce(stmt.Condition, &influxql.NowValuer{Now: now})
	var err error
	p.lo, p.hi, p.cond, err = splitTime(cond)
	if err != nil {
		return nil, err
	}
	iv, err := stmt.GroupByInterval()
	if err != nil {
		return nil, err
	}
	off, err := stmt.GroupByOffset()
	if err != nil {
		return nil, err
	}
	p.interval, p.offset = int64(iv), int64(off)
	if p.interval > 0 {
		p.offset %= p.interval
		if p.offset < 0 {
			p.offset += p.interval
		}
	}
	for _, d := range stmt.Dimensions {
		switch x := d.Expr.(type) {
		case *influxql.VarRef:
			p.dims = append(p.dims, x.Val)
		case *influxql.Call:
			if x.Name != "time" {
				return nil, fmt.Errorf("only time() calls allowed in dimensions")
			}
		default:
			return nil, fmt.Errorf("only time and tag dimensions allowed")
		}
	}
	sort.Strings(p.dims)
	p.dims = slices.Compact(p.dims)
	hasCall, hasRef := false, false
	for _, f := range stmt.Fields {
		if err := checkField(f.Expr, &hasCall, &hasRef, false); err != nil {
			return nil, err
		}
	}
	p.agg = hasCall
	if stmt.Location != nil {
		// Answered in UTC, its windows and times would be wrong.
		return nil, errors.New("chronostream does not support tz(): times and GROUP BY time windows are UTC")
	}
	for _, f := range stmt.Fields {
		if !hasVariable(f.Expr) {
			return nil, errors.New("field must contain at least one variable")
		}
		// InfluxDB computes a transformation of windows in the statement's
		// time order; ours runs ascending, so a descending one would be wrong.
		if c := windowTransform(f.Expr); c != "" && !stmt.TimeAscending() {
			return nil, fmt.Errorf("chronostream does not support %s() with ORDER BY time DESC", c)
		}
	}
	if hasCall && hasRef {
		return nil, errors.New("mixing aggregate and non-aggregate queries is not supported")
	}
	if p.interval > 0 && !hasCall {
		return nil, errors.New("GROUP BY requires at least one aggregate function")
	}
	p.tagsOnly = !hasCall && !hasRef
	if _, _, ok := p.multiRowCall(); ok {
		p.multi = true
	} else {
		for _, f := range stmt.Fields {
			var multi string
			influxql.WalkFunc(f.Expr, func(n influxql.Node) {
				if c, ok := n.(*influxql.Call); ok && multiRow[strings.ToLower(c.Name)] {
					multi = strings.ToLower(c.Name)
				}
			})
			switch {
			case multi == "distinct" && distinctInCount(f.Expr) > 0:
			case multi == "distinct":
				return nil, errors.New("aggregate function distinct() cannot be combined with other functions or fields")
			case multi != "":
				return nil, fmt.Errorf("selector function %s() cannot be combined with other functions", multi)
			}
		}
	}
	switch stmt.Fill {
	case influxql.NullFill:
		p.fill = fn.FillNull
	case influxql.NoFill:
		p.fill = fn.FillNone
	case influxql.NumberFill:
		p.fill, p.fillValue = fn.FillNumber, stmt.FillValue
	case influxql.PreviousFill:
		p.fill = fn.FillPrevious
	case influxql.LinearFill:
		p.fill = fn.FillLinear
	}
	if !e.rawOnly {
		for _, w := range tsdb.DefaultRollups {
			p.widths = append(p.widths, int64(w))
		}
	}
	return p, nil
}

// distinctInCount counts count(distinct(f)) calls in an expression.
func distinctInCount(e influxql.Expr) int {
	n := 0
	influxql.WalkFunc(e, func(x influxql.Node) {
		if c, ok := x.(*influxql.Call); ok {
			if _, ok := distinctOf(c); ok {
				n++
			}
		}
	})
	return n
}

// checkField validates a field expression: calls are known, their field
// argument is a field, raw references and calls are not mixed.
func checkField(e influxql.Expr, hasCall, hasRef *bool, inCall bool) error {
	switch x := e.(type) {
	case *influxql.Call:
		name := strings.ToLower(x.Name)
		switch {
		case aggregates[name]:
			*hasCall = true
			if len(x.Args) == 0 {
				return fmt.Errorf("invalid number of arguments for %s, expected 1, got 0", name)
			}
			switch a := x.Args[0].(type) {
			case *influxql.VarRef:
			case *influxql.Distinct, *influxql.Call:
				if _, ok := distinctOf(x); !ok {
					return fmt.Errorf("chronostream does not support %s of %s", name, a)
				}
			default:
				return fmt.Errorf("expected field argument in %s()", name)
			}
		case multiRow[name]:
			*hasCall = true
			if len(x.Args) == 0 {
				return fmt.Errorf("invalid number of arguments for %s, expected at least 1, got 0", name)
			}
			if _, ok := x.Args[0].(*influxql.VarRef); !ok {
				return fmt.Errorf("expected field argument in %s()", name)
			}
		case transforms[name]:
			*hasCall = true
			if len(x.Args) == 0 {
				return fmt.Errorf("invalid number of arguments for %s, expected at least 1, got 0", name)
			}
			if c, ok := x.Args[0].(*influxql.Call); ok {
				return checkField(c, hasCall, hasRef, true)
			}
		case fn.IsMath(name):
			if err := fn.CheckMathArgs(name, len(x.Args)); err != nil {
				return err
			}
			for _, a := range x.Args {
				if err := checkField(a, hasCall, hasRef, inCall); err != nil {
					return err
				}
			}
		case unsupportedFuncs[name]:
			return fmt.Errorf("%s() is not supported by chronostream", name)
		default:
			return fmt.Errorf("undefined function %s()", x.Name)
		}
	case *influxql.BinaryExpr:
		if err := checkField(x.LHS, hasCall, hasRef, inCall); err != nil {
			return err
		}
		return checkField(x.RHS, hasCall, hasRef, inCall)
	case *influxql.ParenExpr:
		return checkField(x.Expr, hasCall, hasRef, inCall)
	case *influxql.VarRef:
		if x.Type != influxql.Tag {
			*hasRef = true
		}
	case *influxql.Distinct:
		*hasCall = true
	}
	return nil
}

// group is one output series: the series of a measurement sharing the
// GROUP BY tag values.
type group struct {
	tags   map[string]string
	series []selected
}

// selected is a series the condition keeps, with what it leaves to check
// per point (a condition on fields), or nil.
type selected struct {
	s    *tsdb.Series
	cond influxql.Expr
}

func (p *plan) group(m *tsdb.Measurement) []*group {
	byKey := map[string]*group{}
	var keys []string
	for _, s := range m.Series() {
		var residual influxql.Expr
		switch r := reduceTags(p.cond, s, m.Fields).(type) {
		case *influxql.BooleanLiteral:
			if !r.Val {
				continue
			}
		default:
			residual = r
		}
		var kb strings.Builder
		for _, d := range p.dims {
			kb.WriteString(s.Tag(d))
			kb.WriteByte(0)
		}
		key := kb.String()
		g := byKey[key]
		if g == nil {
			g = &group{}
			if len(p.dims) > 0 {
				g.tags = map[string]string{}
				for _, d := range p.dims {
					g.tags[d] = s.Tag(d)
				}
			}
			byKey[key] = g
			keys = append(keys, key)
		}
		g.series = append(g.series, selected{s, residual})
	}
	sort.Strings(keys)
	out := make([]*group, len(keys))
	for i, k := range keys {
		out[i] = byKey[k]
	}
	return out
}

// fieldRefs returns the field (not tag) names an expression reads.
func fieldRefs(e influxql.Expr, into map[string]bool) {
	influxql.WalkFunc(e, func(n influxql.Node) {
		if r, ok := n.(*influxql.VarRef); ok && r.Type != influxql.Tag && !isTime(r) {
			into[r.Val] = true
		}
	})
}

// row is one timestamp of a series: the values of the fields read.
type row struct {
	t    int64
	vals map[string]any
}

// rows merges the columns of fields of one series by time, within [lo, hi]
// (newest first when desc), keeping the rows cond accepts. fn may return
// errStop to end early.
func rows(s selected, fields []string, lo, hi int64, desc bool, fn func(row) error) error {
	type cur struct {
		name       string
		c          *tsdb.Column
		start, end int // [start, end) in the column's time order
		k          int
	}
	var cs []*cur
	for _, f := range fields {
		c := s.s.Column(f)
		if c == nil {
			continue
		}
		x := &cur{name: f, c: c, start: c.Search(lo), end: c.Search(hi + 1)}
		x.k = x.start
		if desc {
			x.k = x.end - 1
		}
		cs = append(cs, x)
	}
	valid := func(x *cur) bool { return x.k >= x.start && x.k < x.end }
	condRefs := map[string]bool{}
	if s.cond != nil {
		fieldRefs(s.cond, condRefs)
	}
	for {
		t, found := int64(0), false
		for _, x := range cs {
			if valid(x) {
				if tt := x.c.Time(x.k); !found || tt < t != desc && tt != t {
					t, found = tt, true
				}
			}
		}
		if !found {
			return nil
		}
		// The condition's fields first: a row it rejects reads nothing else.
		r := row{t: t, vals: make(map[string]any, len(cs))}
		keep := true
		if s.cond != nil {
			for _, x := range cs {
				if condRefs[x.name] && valid(x) && x.c.Time(x.k) == t {
					r.vals[x.name] = x.c.Value(x.k)
				}
			}
			keep = evalCond(s.cond, r.vals, s.s)
		}
		for _, x := range cs {
			if valid(x) && x.c.Time(x.k) == t {
				if keep && r.vals[x.name] == nil {
					r.vals[x.name] = x.c.Value(x.k)
				}
				if desc {
					x.k--
				} else {
					x.k++
				}
			}
		}
		if !keep {
			continue
		}
		if err := fn(r); err != nil {
			if errors.Is(err, errStop) {
				return nil
			}
			return err
		}
	}
}

// errStop ends rows early.
var errStop = errors.New("stop")

// evalCond evaluates a condition on a row's fields and its series' tags.
func evalCond(cond influxql.Expr, vals map[string]any, s *tsdb.Series) bool {
	return (&influxql.ValuerEval{Valuer: rowValuer{vals, s}}).EvalBool(cond)
}

// rowValuer resolves a row's fields, then its series' tags.
type rowValuer struct {
	vals map[string]any
	s    *tsdb.Series
}

func (v rowValuer) Value(key string) (any, bool) {
	if x, ok := v.vals[key]; ok {
		return x, true
	}
	for _, t := range v.s.Tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return nil, false
}

// raw answers a statement without functions: one row per timestamp.
func (p *plan) raw(m *tsdb.Measurement, g *group) (*influxjson.Series, error) {
	need := map[string]bool{}
	for _, f := range p.stmt.Fields {
		fieldRefs(f.Expr, need)
	}
	for _, s := range g.series {
		if s.cond != nil {
			fieldRefs(s.cond, need)
		}
	}
	fields := sortedKeys(need)
	type out struct {
		t    int64
		vals []any
	}
	asc := p.stmt.TimeAscending()
	lists := make([][]out, 0, len(g.series))
	var tags []string // tags selected as columns
	for _, f := range p.stmt.Fields {
		influxql.WalkFunc(f.Expr, func(n influxql.Node) {
			if r, ok := n.(*influxql.VarRef); ok && r.Type == influxql.Tag {
				tags = append(tags, r.Val)
			}
		})
	}
	sort.Strings(tags)
	tags = slices.Compact(tags)
	var keys []string
	n := 0
	want := 0 // rows a series can contribute to the page
	if p.stmt.Limit > 0 {
		want = p.stmt.Offset + p.stmt.Limit
	}
	for _, s := range g.series {
		var list []out
		err := rows(s, fields, p.lo, p.hi, !asc, func(r row) error {
			vals := make([]any, 0, len(p.stmt.Fields)+1)
			vals = append(vals, r.t)
			null := true
			for _, f := range p.stmt.Fields {
				v := evalRaw(f.Expr, r.vals, s.s)
				if v != nil {
					if ref, ok := f.Expr.(*influxql.VarRef); !ok || ref.Type != influxql.Tag {
						null = false
					}
				}
				vals = append(vals, v)
			}
			if !null {
				list = append(list, out{r.t, vals})
				if n++; n > p.limitRows {
					return fmt.Errorf("max-select-point limit exceeded: the statement returns more than %d rows", p.limitRows)
				}
				if want > 0 && len(list) >= want {
					return errStop // no later row of this series can be in the page
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		lists = append(lists, list)
		if len(tags) > 0 {
			keys = append(keys, tagsID(s.s, tags))
		}
	}
	if !asc {
		slices.Reverse(lists) // InfluxDB reads series backwards too
		slices.Reverse(keys)
	}
	all := make([]out, 0, n)
	_ = mergeByTime(lists, keys, func(o out) int64 { return o.t }, asc, func(o out) error {
		all = append(all, o)
		return nil
	})
	all = page(all, p.stmt.Offset, p.stmt.Limit)
	ser := &influxjson.Series{Name: m.Name, Tags: g.tags, Columns: p.columns}
	for _, o := range all {
		ser.Values = append(ser.Values, o.vals)
	}
	return ser, nil
}

// tagsID encodes a series' values of tags as InfluxDB's Tags.ID does
// (keys, then values, NUL-separated), which orders its iterators.
func tagsID(s *tsdb.Series, tags []string) string {
	var b strings.Builder
	for i, k := range tags {
		if i > 0 {
			b.WriteByte(0)
		}
		b.WriteString(k)
	}
	for _, k := range tags {
		b.WriteByte(0)
		b.WriteString(s.Tag(k))
	}
	return b.String()
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// evalRaw evaluates a field expression on a row.
func evalRaw(e influxql.Expr, vals map[string]any, s *tsdb.Series) any {
	switch x := e.(type) {
	case *influxql.VarRef:
		if x.Type == influxql.Tag {
			if v := s.Tag(x.Val); v != "" {
				return v
			}
			return nil
		}
		return castValue(vals[x.Val], x.Type)
	case *influxql.ParenExpr:
		return evalRaw(x.Expr, vals, s)
	case *influxql.BinaryExpr:
		return fn.BinaryOp(x.Op.String(), evalRaw(x.LHS, vals, s), evalRaw(x.RHS, vals, s))
	case *influxql.Call: // a math function (checkField allowed no other)
		args := make([]any, len(x.Args))
		for i, a := range x.Args {
			args[i] = evalRaw(a, vals, s)
		}
		return fn.Math(x.Name, args)
	}
	return literal(e)
}

func literal(e influxql.Expr) any {
	switch x := e.(type) {
	case *influxql.NumberLiteral:
		return x.Val
	case *influxql.IntegerLiteral:
		return x.Val
	case *influxql.UnsignedLiteral:
		return x.Val
	case *influxql.StringLiteral:
		return x.Val
	case *influxql.BooleanLiteral:
		return x.Val
	case *influxql.DurationLiteral:
		return int64(x.Val)
	}
	return nil
}

// hasVariable says whether e reads a field, tag or function (SELECT 1 does not).
func hasVariable(e influxql.Expr) bool {
	found := false
	influxql.WalkFunc(e, func(n influxql.Node) {
		switch n.(type) {
		case *influxql.VarRef, *influxql.Call, *influxql.Distinct, *influxql.Wildcard, *influxql.RegexLiteral:
			found = true
		}
	})
	return found
}

// windowTransform names a transformation of an aggregate in e
// (derivative(mean(f))), or is "".
func windowTransform(e influxql.Expr) string {
	name := ""
	influxql.WalkFunc(e, func(n influxql.Node) {
		if c, ok := n.(*influxql.Call); ok && name == "" && transforms[strings.ToLower(c.Name)] && len(c.Args) > 0 {
			if _, inner := c.Args[0].(*influxql.Call); inner {
				name = strings.ToLower(c.Name)
			}
		}
	})
	return name
}

// castValue applies a field's ::type as influxd does: numbers convert
// between float and integer (truncating), any other mismatch is null.
// Unknown (no cast) and ::field keep the value.
func castValue(v any, t influxql.DataType) any {
	switch t {
	case influxql.Unknown, influxql.AnyField:
		return v
	case influxql.Float:
		switch x := v.(type) {
		case float64:
			return x
		case int64:
			return float64(x)
		case uint64:
			return float64(x)
		}
	case influxql.Integer:
		switch x := v.(type) {
		case int64:
			return x
		case float64:
			return int64(x)
		}
	case influxql.Unsigned:
		if x, ok := v.(uint64); ok {
			return x
		}
	case influxql.String:
		if x, ok := v.(string); ok {
			return x
		}
	case influxql.Boolean:
		if x, ok := v.(bool); ok {
			return x
		}
	}
	return nil
}
