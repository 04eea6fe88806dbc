// Package query is chronostream's InfluxQL engine: it parses InfluxDB 1.x
// queries with InfluxData's own parser (github.com/influxdata/influxql),
// evaluates them over the columnar index of the log (internal/query/tsdb)
// with InfluxDB's function semantics (internal/query/fn), and serves them
// on /query in InfluxDB's JSON format (internal/query/influxjson).
package query

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/influxdata/influxql"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/query/influxjson"
	"github.com/chronostream/chronostream/internal/query/tsdb"
	"github.com/chronostream/chronostream/internal/store"
)

// Catalog is what the engine needs of the log beyond the index: listing
// and creating chronicles (SHOW DATABASES, CREATE DATABASE).
type Catalog interface {
	ChronicleNames(ctx context.Context) ([]string, error)
	CreateChronicle(ctx context.Context, name string, r store.Retention) error
}

// Source of a database's index: tsdb.Index.Sync.
type Source interface {
	Sync(ctx context.Context, chronicle string) (*tsdb.DB, error)
}

// Engine executes InfluxQL statements.
type Engine struct {
	Index   Source
	Catalog Catalog
	// Retention is what CREATE DATABASE gives a new chronicle.
	Retention store.Retention
	// Now is the clock of now() (time.Now when nil).
	Now func() time.Time
	// MaxRows bounds the rows one statement, and all the statements of a
	// request, may return (default 1,000,000): beyond it the statement
	// fails instead of holding the server's memory.
	MaxRows int

	rawOnly bool // tests: never read rollups, to compare both paths
}

func (e *Engine) maxRows() int {
	if e.MaxRows <= 0 {
		return 1_000_000
	}
	return e.MaxRows
}

// ErrNotExecuted is the error of the statements after a failed one.
var ErrNotExecuted = errors.New("not executed")

// ErrParse wraps a query that does not parse (a request-level 400).
var ErrParse = errors.New("error parsing query")

// errDBRequired and friends are InfluxDB's words.
var (
	errDBRequired = errors.New("database name required")
)

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// Execute parses q and runs each statement against database db (the
// default for statements that name none). A query that does not parse is
// ErrParse; per-statement errors are in the results.
func (e *Engine) Execute(ctx context.Context, q, db string) ([]influxjson.Result, error) {
	results, _, err := e.execute(ctx, q, db)
	return results, err
}

// execute is Execute that also returns the parsed statements.
func (e *Engine) execute(ctx context.Context, q, db string) ([]influxjson.Result, influxql.Statements, error) {
	parsed, err := influxql.NewParser(strings.NewReader(q)).ParseQuery()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrParse, err)
	}
	results := make([]influxjson.Result, 0, len(parsed.Statements))
	// The answer is held whole: its rows over every statement are bounded
	// too, or a 1 MiB text of "SELECT * FROM m;" would hold 50,000 times
	// MaxRows.
	rows, maxRows := 0, e.maxRows()
	for i, st := range parsed.Statements {
		res := influxjson.Result{StatementID: i}
		res.Series, res.Err = e.statement(ctx, st, db)
		for _, s := range res.Series {
			rows += len(s.Values)
		}
		if rows > maxRows && res.Err == nil {
			res.Series, res.Err = nil, fmt.Errorf("max-select-point limit exceeded: the statements return more than %d rows", maxRows)
		}
		results = append(results, res)
		if res.Err != nil {
			// InfluxDB stops at the first failing statement, then sends
			// "not executed" for as many statements as follow it, numbered
			// from the failed one's id (its executor's off-by-one, which
			// the non-chunked answer folds into the failed statement).
			for j := i; j < len(parsed.Statements)-1; j++ {
				results = append(results, influxjson.Result{StatementID: j, Err: ErrNotExecuted})
			}
			break
		}
	}
	return results, parsed.Statements, nil
}

func (e *Engine) statement(ctx context.Context, st influxql.Statement, db string) ([]influxjson.Series, error) {
	switch s := st.(type) {
	case *influxql.SelectStatement:
		if s.Target != nil {
			return nil, errors.New("SELECT INTO is not supported by chronostream: the log is written by ingest only")
		}
		return e.selectStatement(ctx, s, db)
	case *influxql.ShowDatabasesStatement:
		names, err := e.Catalog.ChronicleNames(ctx)
		if err != nil {
			return nil, err
		}
		sort.Strings(names)
		return []influxjson.Series{nameList("databases", "name", names)}, nil
	case *influxql.CreateDatabaseStatement:
		if s.RetentionPolicyCreate {
			return nil, errors.New("CREATE DATABASE … WITH is not supported by chronostream: set a chronicle's retention through /api/v1")
		}
		return nil, e.Catalog.CreateChronicle(ctx, s.Name, e.Retention)
	case *influxql.ShowRetentionPoliciesStatement:
		name := s.Database
		if name == "" {
			name = db
		}
		if _, err := e.database(ctx, name); err != nil {
			return nil, err
		}
		return []influxjson.Series{{
			Columns: []string{"name", "duration", "shardGroupDuration", "replicaN", "default"},
			Values:  [][]any{{"autogen", "0s", "168h0m0s", int64(1), true}},
		}}, nil
	case *influxql.ShowMeasurementsStatement:
		return e.showMeasurements(ctx, s, db)
	case *influxql.ShowTagKeysStatement:
		return e.showTagKeys(ctx, s, db)
	case *influxql.ShowTagValuesStatement:
		return e.showTagValues(ctx, s, db)
	case *influxql.ShowFieldKeysStatement:
		return e.showFieldKeys(ctx, s, db)
	case *influxql.ShowSeriesStatement:
		return e.showSeries(ctx, s, db)
	}
	return nil, fmt.Errorf("not supported by chronostream: %s (the log is the truth: chronostream answers SELECT, SHOW and CREATE DATABASE)", statementKind(st))
}

// statementKind names a statement by its leading keywords.
func statementKind(st influxql.Statement) string {
	words := strings.Fields(st.String())
	if len(words) > 2 {
		words = words[:2]
	}
	return strings.Join(words, " ")
}

// database returns the synced index of a database, with InfluxDB's errors.
func (e *Engine) database(ctx context.Context, name string) (*tsdb.DB, error) {
	if name == "" {
		return nil, errDBRequired
	}
	db, err := e.Index.Sync(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("database not found: %s", name)
	}
	return db, err
}

func nameList(series, column string, names []string) influxjson.Series {
	s := influxjson.Series{Name: series, Columns: []string{column}}
	for _, n := range names {
		s.Values = append(s.Values, []any{n})
	}
	return s
}

// measurements resolves sources (names and regexes; hold db's lock).
func measurements(db *tsdb.DB, sources influxql.Sources) []*tsdb.Measurement {
	if len(sources) == 0 {
		var all []*tsdb.Measurement
		for _, n := range db.Measurements() {
			all = append(all, db.Measurement(n))
		}
		return all
	}
	seen := map[string]bool{}
	var out []*tsdb.Measurement
	for _, src := range sources {
		m, ok := src.(*influxql.Measurement)
		if !ok {
			continue
		}
		for _, n := range db.Measurements() {
			if seen[n] {
				continue
			}
			if m.Regex != nil && m.Regex.Val.MatchString(n) || m.Regex == nil && m.Name == n {
				seen[n] = true
				out = append(out, db.Measurement(n))
			}
		}
	}
	slices.SortFunc(out, func(a, b *tsdb.Measurement) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// withDB runs fn under db's read lock when every column it reads is
// ready (ready reports it), else under the write lock after prepare made
// them so: a query never reads a column an append left unsorted.
func withDB(db *tsdb.DB, ready func() bool, prepare func(), fn func() error) error {
	if ready == nil {
		db.RLock()
		defer db.RUnlock()
		return fn()
	}
	db.RLock()
	if ready() {
		defer db.RUnlock()
		return fn()
	}
	db.RUnlock()
	db.Lock()
	defer db.Unlock()
	prepare()
	return fn()
}

// seriesMatch evaluates a tag-only condition for a series (nil: all).
// tagCondition is the condition of SHOW TAG KEYS or VALUES without its
// time bounds, which influxd 1.6 ignores there: taken as a tag, a Grafana
// variable's "WHERE $timeFilter" matched no series and listed nothing.
func (e *Engine) tagCondition(cond influxql.Expr) (influxql.Expr, error) {
	if cond == nil || !influxql.HasTimeExpr(cond) {
		return cond, nil
	}
	_, _, rest, err := splitTime(influxql.Reduce(cond, &influxql.NowValuer{Now: e.now().UTC()}))
	return rest, err
}

func seriesMatch(cond influxql.Expr, s *tsdb.Series) bool {
	b, ok := reduceTags(cond, s, nil).(*influxql.BooleanLiteral)
	return cond == nil || ok && b.Val
}

// reduceTags evaluates the comparisons of a condition that involve a
// series' tags (a missing tag is "", as in InfluxDB) and returns what is
// left: a BooleanLiteral, or an expression on fields to check per row.
func reduceTags(e influxql.Expr, s *tsdb.Series, fields map[string]event.FieldType) influxql.Expr {
	switch x := e.(type) {
	case nil:
		return &influxql.BooleanLiteral{Val: true}
	case *influxql.ParenExpr:
		r := reduceTags(x.Expr, s, fields)
		if _, ok := r.(*influxql.BinaryExpr); ok {
			return &influxql.ParenExpr{Expr: r}
		}
		return r
	case *influxql.BinaryExpr:
		switch x.Op {
		case influxql.AND, influxql.OR:
			l, r := reduceTags(x.LHS, s, fields), reduceTags(x.RHS, s, fields)
			lb, lok := l.(*influxql.BooleanLiteral)
			rb, rok := r.(*influxql.BooleanLiteral)
			and := x.Op == influxql.AND
			switch {
			case lok && rok:
				if and {
					return &influxql.BooleanLiteral{Val: lb.Val && rb.Val}
				}
				return &influxql.BooleanLiteral{Val: lb.Val || rb.Val}
			case lok:
				if lb.Val != and { // false AND x, true OR x
					return lb
				}
				return r
			case rok:
				if rb.Val != and {
					return rb
				}
				return l
			}
			return &influxql.BinaryExpr{Op: x.Op, LHS: l, RHS: r}
		case influxql.EQ, influxql.NEQ, influxql.EQREGEX, influxql.NEQREGEX:
			ref, lit := x.LHS, x.RHS
			if _, ok := ref.(*influxql.VarRef); !ok {
				ref, lit = lit, ref
			}
			v, ok := ref.(*influxql.VarRef)
			if !ok || isTime(v) || v.Type != influxql.Tag && fields[v.Val] != 0 {
				return x
			}
			tag := s.Tag(v.Val)
			switch l := lit.(type) {
			case *influxql.StringLiteral:
				switch x.Op {
				case influxql.EQ:
					return &influxql.BooleanLiteral{Val: tag == l.Val}
				case influxql.NEQ:
					return &influxql.BooleanLiteral{Val: tag != l.Val}
				}
			case *influxql.RegexLiteral:
				switch x.Op {
				case influxql.EQREGEX:
					return &influxql.BooleanLiteral{Val: l.Val.MatchString(tag)}
				case influxql.NEQREGEX:
					return &influxql.BooleanLiteral{Val: !l.Val.MatchString(tag)}
				}
			}
			if v.Type == influxql.Tag {
				// A tag compared with a number or a bool never matches.
				return &influxql.BooleanLiteral{Val: false}
			}
		}
	}
	return e
}

func (e *Engine) showMeasurements(ctx context.Context, s *influxql.ShowMeasurementsStatement, def string) ([]influxjson.Series, error) {
	db, err := e.database(ctx, firstNonEmpty(s.Database, def))
	if err != nil {
		if strings.HasPrefix(err.Error(), "database not found") {
			return nil, nil // InfluxDB 1.6 lists no measurements
		}
		return nil, err
	}
	var names []string
	if s.Condition != nil && influxql.HasTimeExpr(s.Condition) {
		return nil, errors.New("SHOW MEASUREMENTS doesn't support time in WHERE clause")
	}
	err = withDB(db, nil, nil, func() error {
		for _, n := range db.Measurements() {
			if s.Source != nil {
				if m, ok := s.Source.(*influxql.Measurement); ok {
					if m.Regex != nil && !m.Regex.Val.MatchString(n) || m.Regex == nil && m.Name != n {
						continue
					}
				}
			}
			if s.Condition != nil && !slices.ContainsFunc(db.Measurement(n).Series(), func(x *tsdb.Series) bool { return seriesMatch(s.Condition, x) }) {
				continue
			}
			names = append(names, n)
		}
		return nil
	})
	names = page(names, s.Offset, s.Limit)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	return []influxjson.Series{nameList("measurements", "name", names)}, nil
}

func page[T any](a []T, offset, limit int) []T {
	if offset > 0 {
		if offset >= len(a) {
			return nil
		}
		a = a[offset:]
	}
	if limit > 0 && limit < len(a) {
		a = a[:limit]
	}
	return a
}

// showDB is the database a SHOW statement reads: its ON database, else the
// request's, and the one its FROM names, which must agree.
func (e *Engine) showDB(ctx context.Context, sources influxql.Sources, on, def string) (*tsdb.DB, error) {
	name, err := oneDB(sources, firstNonEmpty(on, def))
	if err != nil {
		return nil, err
	}
	return e.database(ctx, name)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (e *Engine) showTagKeys(ctx context.Context, s *influxql.ShowTagKeysStatement, def string) ([]influxjson.Series, error) {
	db, err := e.showDB(ctx, s.Sources, s.Database, def)
	if err != nil {
		return nil, err
	}
	cond, err := e.tagCondition(s.Condition)
	if err != nil {
		return nil, err
	}
	var out []influxjson.Series
	err = withDB(db, nil, nil, func() error {
		for _, m := range measurements(db, s.Sources) {
			set := map[string]bool{}
			for _, x := range m.Series() {
				if !seriesMatch(cond, x) {
					continue
				}
				for _, t := range x.Tags {
					set[t.Key] = true
				}
			}
			keys := page(sortedKeys(set), s.Offset, s.Limit)
			if len(keys) > 0 {
				out = append(out, nameList(m.Name, "tagKey", keys))
			}
		}
		return nil
	})
	return page(out, s.SOffset, s.SLimit), err
}

func sortedKeys(set map[string]bool) []string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (e *Engine) showTagValues(ctx context.Context, s *influxql.ShowTagValuesStatement, def string) ([]influxjson.Series, error) {
	db, err := e.showDB(ctx, s.Sources, s.Database, def)
	if err != nil {
		return nil, err
	}
	keyMatch, err := tagKeyMatcher(s.Op, s.TagKeyExpr)
	if err != nil {
		return nil, err
	}
	cond, err := e.tagCondition(s.Condition)
	if err != nil {
		return nil, err
	}
	var out []influxjson.Series
	err = withDB(db, nil, nil, func() error {
		for _, m := range measurements(db, s.Sources) {
			type kv struct{ k, v string }
			set := map[kv]bool{}
			for _, x := range m.Series() {
				if !seriesMatch(cond, x) {
					continue
				}
				for _, t := range x.Tags {
					if keyMatch(t.Key) {
						set[kv{t.Key, t.Value}] = true
					}
				}
			}
			pairs := make([]kv, 0, len(set))
			for p := range set {
				pairs = append(pairs, p)
			}
			slices.SortFunc(pairs, func(a, b kv) int {
				if c := strings.Compare(a.k, b.k); c != 0 {
					return c
				}
				return strings.Compare(a.v, b.v)
			})
			pairs = page(pairs, s.Offset, s.Limit)
			if len(pairs) == 0 {
				continue
			}
			ser := influxjson.Series{Name: m.Name, Columns: []string{"key", "value"}}
			for _, p := range pairs {
				ser.Values = append(ser.Values, []any{p.k, p.v})
			}
			out = append(out, ser)
		}
		return nil
	})
	return out, err
}

// tagKeyMatcher turns WITH KEY = / != / =~ / !~ / IN into a predicate.
func tagKeyMatcher(op influxql.Token, expr influxql.Literal) (func(string) bool, error) {
	switch x := expr.(type) {
	case *influxql.StringLiteral:
		switch op {
		case influxql.EQ:
			return func(k string) bool { return k == x.Val }, nil
		case influxql.NEQ:
			return func(k string) bool { return k != x.Val }, nil
		}
	case *influxql.RegexLiteral:
		re := x.Val
		switch op {
		case influxql.EQREGEX:
			return re.MatchString, nil
		case influxql.NEQREGEX:
			return func(k string) bool { return !re.MatchString(k) }, nil
		}
	case *influxql.ListLiteral:
		return func(k string) bool { return slices.Contains(x.Vals, k) }, nil
	}
	return nil, fmt.Errorf("unsupported WITH KEY %s %s", op, expr)
}

func (e *Engine) showFieldKeys(ctx context.Context, s *influxql.ShowFieldKeysStatement, def string) ([]influxjson.Series, error) {
	db, err := e.showDB(ctx, s.Sources, s.Database, def)
	if err != nil {
		return nil, err
	}
	var out []influxjson.Series
	err = withDB(db, nil, nil, func() error {
		for _, m := range measurements(db, s.Sources) {
			names := make([]string, 0, len(m.Fields))
			for f := range m.Fields {
				names = append(names, f)
			}
			sort.Strings(names)
			names = page(names, s.Offset, s.Limit)
			if len(names) == 0 {
				continue
			}
			ser := influxjson.Series{Name: m.Name, Columns: []string{"fieldKey", "fieldType"}}
			for _, f := range names {
				ser.Values = append(ser.Values, []any{f, m.Fields[f].String()})
			}
			out = append(out, ser)
		}
		return nil
	})
	return out, err
}

func (e *Engine) showSeries(ctx context.Context, s *influxql.ShowSeriesStatement, def string) ([]influxjson.Series, error) {
	db, err := e.showDB(ctx, s.Sources, s.Database, def)
	if err != nil {
		return nil, err
	}
	if s.Condition != nil && influxql.HasTimeExpr(s.Condition) {
		return nil, errors.New("SHOW SERIES with a time condition is not supported by chronostream")
	}
	type named struct {
		m string
		s *tsdb.Series
	}
	var found []named
	var keys []string
	err = withDB(db, nil, nil, func() error {
		for _, m := range measurements(db, s.Sources) {
			for _, x := range m.Series() {
				if seriesMatch(s.Condition, x) {
					found = append(found, named{m.Name, x})
				}
			}
		}
		// influxd lists series by measurement, then tag keys and values
		// unescaped ("h 1" before "h2", though "h\ 1" sorts after).
		slices.SortFunc(found, func(a, b named) int {
			if c := strings.Compare(a.m, b.m); c != 0 {
				return c
			}
			return slices.CompareFunc(a.s.Tags, b.s.Tags, func(x, y tsdb.Tag) int {
				return cmp.Or(strings.Compare(x.Key, y.Key), strings.Compare(x.Value, y.Value))
			})
		})
		for _, f := range page(found, s.Offset, s.Limit) {
			keys = append(keys, seriesKey(f.m, f.s))
		}
		return nil
	})
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	return []influxjson.Series{nameList("", "key", keys)}, nil
}

var measurementEscaper = strings.NewReplacer(",", `\,`, " ", `\ `)

// seriesKey is InfluxDB's series key: the measurement and tags escaped as
// in line protocol (the index's Key holds the tags so).
func seriesKey(name string, s *tsdb.Series) string {
	if s.Key == "" {
		return measurementEscaper.Replace(name)
	}
	return measurementEscaper.Replace(name) + "," + s.Key
}
