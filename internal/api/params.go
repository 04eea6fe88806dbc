package api

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest/lineproto"
	"github.com/chronostream/chronostream/internal/jsonev"
	"github.com/chronostream/chronostream/internal/store"
)

// filter is what the tag., field., q, kind and story parameters select.
// Different parameters must all hold; repeating one (the same tag key, kind
// or story) accepts any of its values; every q must occur in the body.
type filter struct {
	tags    map[string][]string
	fields  map[string][]string
	text    [][]byte
	kinds   []event.Kind
	stories []string
}

func (f *filter) empty() bool {
	return len(f.tags) == 0 && len(f.fields) == 0 && len(f.text) == 0 && len(f.kinds) == 0 && len(f.stories) == 0
}

// needsExpand says whether matching looks at tags or fields, which JSON
// bodies only carry once expanded.
func (f *filter) needsExpand() bool { return len(f.tags) > 0 || len(f.fields) > 0 }

func (f *filter) match(e *event.Event) bool {
	if len(f.kinds) > 0 && !contains(f.kinds, e.Kind) {
		return false
	}
	if len(f.stories) > 0 && !contains(f.stories, e.Story) {
		return false
	}
	for k, vs := range f.tags {
		v, ok := e.Tags[k]
		if !ok || !contains(vs, v) {
			return false
		}
	}
	for k, vs := range f.fields {
		v, ok := e.Fields[k]
		if !ok || !contains(vs, v.Text()) {
			return false
		}
	}
	for _, t := range f.text {
		if !bytes.Contains(e.Body, t) {
			return false
		}
	}
	return true
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// expander derives tags and fields of JSON and line protocol bodies once
// per event: matching needs them before output does.
type expander struct {
	p fastjson.Parser
}

func (x *expander) expand(e *event.Event) {
	switch e.Format {
	case event.FormatJSON:
		jsonev.Expand(&x.p, e)
	case event.FormatLine:
		// Ingest validated the line; a body that fails here was not
		// written by it and keeps whatever tags and fields it has.
		_ = lineproto.Expand(e)
	}
}

// params parses a query string, rejecting parameters the route does not take
// so that a typo is an error rather than a silently ignored filter.
type params struct {
	q       url.Values
	allowed map[string]bool
}

// Parameters every read and tail takes; keys starting with "_" are ignored
// (cache busters).
var filterParams = []string{"q", "kind", "story"}

func newParams(r *http.Request, allowed ...string) (*params, error) {
	q := r.URL.Query()
	p := &params{q: q, allowed: map[string]bool{}}
	for _, a := range allowed {
		p.allowed[a] = true
	}
	for k := range q {
		if p.allowed[k] || strings.HasPrefix(k, "_") ||
			p.allowed["tag."] && strings.HasPrefix(k, "tag.") || p.allowed["field."] && strings.HasPrefix(k, "field.") {
			continue
		}
		return nil, badParam(k, "unknown parameter")
	}
	return p, nil
}

// one returns the single value of a parameter, "" when absent.
func (p *params) one(name string) (string, error) {
	vs := p.q[name]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", badParam(name, "given %d times; give it once", len(vs))
}

func (p *params) seq(name string) (uint64, bool, error) {
	v, err := p.one(name)
	if err != nil || v == "" {
		return 0, false, err
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false, badParam(name, "want a sequence number (a non-negative integer), got %q", v)
	}
	return n, true, nil
}

// timeCursor parses a position in time order, "TIME.SEQ" (Unix ns and seq),
// as a time-ordered read's next gives it.
func (p *params) timeCursor(name string) (store.TimeCursor, error) {
	v, err := p.one(name)
	if err != nil || v == "" {
		return store.TimeCursor{}, err
	}
	t, s, ok := strings.Cut(v, ".")
	ti, err1 := strconv.ParseInt(t, 10, 64)
	si, err2 := strconv.ParseUint(s, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return store.TimeCursor{}, badParam(name, "a time-ordered read pages with TIME.SEQ, as its next gives it, not %q (use sort=seq to page by seq)", v)
	}
	return store.TimeCursor{Time: ti, Seq: si}, nil
}

// time parses RFC 3339 or Unix nanoseconds.
func (p *params) time(name string) (int64, bool, error) {
	v, err := p.one(name)
	if err != nil || v == "" {
		return 0, false, err
	}
	t, err := parseTime(v)
	if err != nil {
		return 0, false, badParam(name, "%w", err)
	}
	return t, true, nil
}

func parseTime(v string) (int64, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return 0, errors.New("want RFC 3339 (2006-01-02T15:04:05Z) or Unix nanoseconds, got " + strconv.Quote(v))
	}
	return t.UnixNano(), nil
}

func (p *params) filter() (*filter, error) {
	f := &filter{}
	for k, vs := range p.q {
		switch {
		case strings.HasPrefix(k, "tag."):
			if f.tags == nil {
				f.tags = map[string][]string{}
			}
			f.tags[k[len("tag."):]] = vs
		case strings.HasPrefix(k, "field."):
			if f.fields == nil {
				f.fields = map[string][]string{}
			}
			f.fields[k[len("field."):]] = vs
		}
	}
	for _, v := range p.q["q"] {
		if v == "" {
			return nil, badParam("q", "empty text")
		}
		f.text = append(f.text, []byte(v))
	}
	for _, v := range p.q["kind"] {
		k, err := event.ParseKind(v)
		if err != nil {
			return nil, badParam("kind", "%w", err)
		}
		f.kinds = append(f.kinds, k)
	}
	f.stories = p.q["story"]
	return f, nil
}

// names returns the chronicle and (possibly empty) story of the path.
func names(r *http.Request) (chronicle, story string, err error) {
	chronicle = r.PathValue("chronicle")
	if err := event.ValidateChronicle(chronicle); err != nil {
		return "", "", badParam("chronicle", "%w", err)
	}
	story = r.PathValue("story")
	if r.Pattern != "" && strings.Contains(r.Pattern, "{story}") {
		if err := event.ValidateStory(story); err != nil {
			return "", "", badParam("story", "%w", err)
		}
	}
	return chronicle, story, nil
}
