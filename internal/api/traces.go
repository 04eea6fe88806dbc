package api

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/jsonev"
	"github.com/chronostream/chronostream/internal/store"
)

// defaultTraceLimit bounds the spans of one trace read unless limit= says
// otherwise: a trace is held whole in memory to be ordered as a tree.
const (
	defaultTraceLimit = 10000
	maxTraceLimit     = 100000
)

// maxTraceBytes bounds the span bodies held, whatever their number: a span
// is as large as its producer made it (up to an event's size). A variable
// for tests.
var maxTraceBytes = 64 << 20

// errTraceFull ends a trace's read once maxTraceBytes are held.
var errTraceFull = errors.New("trace: byte budget reached")

// getTrace serves GET /api/v1/chronicles/{chronicle}/traces/{traceId}:
// every span (trace event, as OTLP ingest stores them) whose top-level
// trace_id is the one asked for, across the chronicle's stories, ordered
// as a tree. There is no index: the read scans the chronicle (within
// from/to), with a byte search before any JSON is parsed.
func (a *API) getTrace(w http.ResponseWriter, r *http.Request) {
	chronicle, _, err := names(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	p, err := newParams(r, "from", "to", "limit")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	id := strings.ToLower(r.PathValue("traceId"))
	if raw, err := hex.DecodeString(id); err != nil || len(raw) != 16 || id == strings.Repeat("0", 32) {
		a.writeError(w, r, badParam("traceId", "want 32 hex digits, not all zero, got %q", r.PathValue("traceId")))
		return
	}
	mq := store.MergedQuery{Chronicle: chronicle}
	if mq.From, _, err = p.time("from"); err != nil {
		a.writeError(w, r, err)
		return
	}
	if mq.To, _, err = p.time("to"); err != nil {
		a.writeError(w, r, err)
		return
	}
	limit := defaultTraceLimit
	if v, err := p.one("limit"); err != nil {
		a.writeError(w, r, err)
		return
	} else if v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit <= 0 || limit > maxTraceLimit {
			a.writeError(w, r, badParam("limit", "want an integer from 1 to %d, got %q", maxTraceLimit, v))
			return
		}
	}
	mq.Limit = limit + 1 // one more tells that the trace was cut
	lower, upper := []byte(id), []byte(strings.ToUpper(id))
	var x expander
	mq.Match = func(e *event.Event) bool {
		// A byte search first; then links, which name other traces in
		// nested objects, are told apart: only the span's own top-level
		// trace id counts, which the expanded fields hold.
		if len(e.Body) > 0 && !bytes.Contains(e.Body, lower) && !bytes.Contains(e.Body, upper) {
			return false
		}
		x.expand(e)
		tid, ok := spanOf(e)
		return ok && tid == id
	}
	var spans []event.Event
	held, full := 0, false
	_, err = a.cfg.Store.ReadMerged(r.Context(), mq, func(e *event.Event) error {
		if held += len(e.Body); held > maxTraceBytes && len(spans) > 0 {
			return errTraceFull
		}
		c := *e
		c.Body = bytes.Clone(e.Body)
		spans = append(spans, c)
		return nil
	})
	if errors.Is(err, errTraceFull) {
		err, full = nil, true
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.cfg.Metrics.ReadEvents.WithLabelValues("traces").Add(float64(len(spans)))
	if len(spans) == 0 {
		writeProblem(w, problem{Type: "about:blank", Title: http.StatusText(http.StatusNotFound), Status: http.StatusNotFound,
			Detail: "no spans of trace " + id + " in chronicle " + strconv.Quote(chronicle), Instance: r.URL.Path})
		return
	}
	truncated := len(spans) > limit || full
	if len(spans) > limit {
		spans = spans[:limit]
	}
	b := append([]byte(`{"trace_id":"`), id...)
	b = append(b, `","truncated":`...)
	b = strconv.AppendBool(b, truncated)
	b = append(b, `,"spans":[`...)
	var prefix []byte
	for i, n := range spanTree(spans) {
		if i > 0 {
			b = append(b, ',')
		}
		e := &spans[n.i]
		prefix = append(prefix[:0], `"depth":`...)
		prefix = strconv.AppendInt(prefix, int64(n.depth), 10)
		prefix = append(prefix, `,"span_id":`...)
		prefix = jsonev.AppendString(prefix, spanID(e))
		prefix = append(prefix, `,"parent_span_id":`...)
		prefix = jsonev.AppendString(prefix, parentSpanID(e))
		if n.orphan {
			prefix = append(prefix, `,"missing_parent":true`...)
		}
		if n.duplicate {
			prefix = append(prefix, `,"duplicate":true`...)
		}
		prefix = append(prefix, ',')
		b = appendEvent(b, e, string(prefix))
	}
	b = append(b, "]}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b)
}

func fieldText(e *event.Event, k string) string {
	if v, ok := e.Fields[k]; ok && v.Type() == event.TypeString {
		return v.StringValue()
	}
	return ""
}

// treeNode is a span's place in the tree order.
type treeNode struct {
	i         int // index in the spans read
	depth     int
	orphan    bool // has a parent id that is not among the spans read
	duplicate bool // the same span id was stored again (an OTLP retry)
}

// spanTree orders spans depth first: each parent before its children,
// siblings (and roots) in the order read, which is time order. Spans whose
// parent is missing are roots marked orphan; a repeated span id (a retried
// export stores its spans again) follows its first copy at the same depth;
// spans caught in a parent cycle, which no SDK writes, come last as roots.
func spanTree(spans []event.Event) []treeNode {
	first := make(map[string]int, len(spans))
	for i := range spans {
		if id := spanID(&spans[i]); id != "" {
			if _, dup := first[id]; !dup {
				first[id] = i
			}
		}
	}
	children := make(map[int][]int)
	var roots []int
	dupOf := make(map[int][]int)
	orphan := make([]bool, len(spans))
	for i := range spans {
		id := spanID(&spans[i])
		if f, ok := first[id]; ok && f != i {
			dupOf[f] = append(dupOf[f], i)
			continue
		}
		parent := parentSpanID(&spans[i])
		if parent == "" {
			roots = append(roots, i)
			continue
		}
		pi, ok := first[parent]
		if !ok {
			orphan[i] = true
			roots = append(roots, i)
			continue
		}
		children[pi] = append(children[pi], i)
	}
	out := make([]treeNode, 0, len(spans))
	visited := make([]bool, len(spans))
	type frame struct{ i, depth int }
	walk := func(root int) {
		stack := []frame{{root, 0}}
		for len(stack) > 0 {
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if visited[f.i] {
				continue
			}
			visited[f.i] = true
			out = append(out, treeNode{i: f.i, depth: f.depth, orphan: orphan[f.i]})
			for _, d := range dupOf[f.i] {
				visited[d] = true
				out = append(out, treeNode{i: d, depth: f.depth, orphan: orphan[f.i], duplicate: true})
			}
			kids := children[f.i]
			for k := len(kids) - 1; k >= 0; k-- { // pushed in reverse: popped in order
				stack = append(stack, frame{kids[k], f.depth + 1})
			}
		}
	}
	for _, r := range roots {
		walk(r)
	}
	for i := range spans {
		if !visited[i] {
			orphan[i] = true
			walk(i)
		}
	}
	return out
}
