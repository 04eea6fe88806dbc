package api

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/downsample"
	"github.com/chronostream/chronostream/internal/query/tsdb"
	"github.com/chronostream/chronostream/internal/store"
)

// Bounds of a series request: the width is a chart's pixel columns, and each
// group is a line of its own, held at about 4·width points while reading.
const (
	defaultSeriesWidth = 1000
	maxSeriesWidth     = 10000
	maxSeriesGroups    = 100
	// maxSeriesColumns bounds the columns of all lines of a request
	// (a column is 72 bytes; a line on the sequence axis holds up to
	// 2·width): 100 lines of width 10,000 would hold 144 MB per request.
	// The lines a request may have is this over its width.
	maxSeriesColumns = 200_000
)

// registerViews adds the read-only routes the web UI draws from; they are
// public API like the rest (docs/api.md).
func (a *API) registerViews(handle func(string, http.HandlerFunc)) {
	const c = "/api/v1/chronicles/{chronicle}"
	handle("GET "+c+"/stories/{story}/series", a.series)
	handle("GET "+c+"/annotations", a.annotations)
	handle("GET "+c+"/traces", a.listTraces)
	handle("GET /api/v1/metrics", a.metricsCatalog)
}

type seriesJSON struct {
	Tags  map[string]string `json:"tags"`
	Count int               `json:"count"`
	Min   *float64          `json:"min"`
	Max   *float64          `json:"max"`
	X     []float64         `json:"x"`
	Y     []float64         `json:"y"`
}

// SeriesIndex is the columnar index of the log that /query keeps
// (*tsdb.Index): the time axis reads a field's points from its columns, in
// time order and already decoded, instead of decoding the log's blocks.
type SeriesIndex interface {
	Sync(ctx context.Context, chronicle string) (*tsdb.DB, error)
}

// indexWait bounds how long a chart waits for the index to catch up with
// the log before it reads the log instead.
const indexWait = 2 * time.Second

// seriesRequest is a parsed GET .../series.
type seriesRequest struct {
	q              store.Query // the story and time range
	f              *filter
	field, groupBy string
	axis           string // "time" or "seq"
	width          int
}

func parseSeries(r *http.Request) (*seriesRequest, error) {
	chronicle, story, err := names(r)
	if err != nil {
		return nil, err
	}
	p, err := newParams(r, "field", "from", "to", "x", "width", "group_by", "tag.", "q", "kind")
	if err != nil {
		return nil, err
	}
	sr := &seriesRequest{q: store.Query{Chronicle: chronicle, Story: story}}
	if sr.field, err = p.one("field"); err == nil && sr.field == "" {
		err = badParam("field", "required: the numeric field to draw")
	}
	if err != nil {
		return nil, err
	}
	switch sr.axis, err = p.one("x"); {
	case err != nil:
		return nil, err
	case sr.axis == "":
		sr.axis = "time"
	case sr.axis != "time" && sr.axis != "seq":
		return nil, badParam("x", "want time or seq, got %q", sr.axis)
	}
	if sr.width, err = intParam(p, "width", defaultSeriesWidth, maxSeriesWidth); err != nil {
		return nil, err
	}
	if sr.groupBy, err = p.one("group_by"); err != nil {
		return nil, err
	}
	if sr.q.From, sr.q.To, err = timeRange(p); err != nil {
		return nil, err
	}
	if sr.f, err = p.filter(); err != nil {
		return nil, err
	}
	return sr, nil
}

// seriesLine is one group's downsampler: Range on the time axis, Sequence
// on the sequential one.
type seriesLine interface {
	Points() []downsample.Point
	Stats() downsample.Stats
}

// lineSet holds a chart's lines, one per value of the group_by tag.
type lineSet struct {
	newLine  func() seriesLine
	groupBy  string
	lines    map[string]seriesLine
	maxLines int  // maxSeriesGroups, fewer for wide charts (maxSeriesColumns)
	read     int  // points added
	cut      bool // a group beyond maxLines was left out
}

// add adds a point at time t (Unix ns) to the line of group key.
func (ls *lineSet) add(key string, t int64, y float64) {
	ls.read++
	l, ok := ls.lines[key]
	if !ok {
		if len(ls.lines) >= ls.maxLines {
			ls.cut = true
			return
		}
		l = ls.newLine()
		ls.lines[key] = l
	}
	switch l := l.(type) {
	case *downsample.Range:
		l.Add(float64(t)/1e6, y)
	case *downsample.Sequence:
		l.Add(y)
	}
}

func (ls *lineSet) json() []seriesJSON {
	out := make([]seriesJSON, 0, len(ls.lines))
	for _, key := range slices.Sorted(maps.Keys(ls.lines)) {
		l := ls.lines[key]
		pts := l.Points()
		s := seriesJSON{Tags: map[string]string{}, X: make([]float64, len(pts)), Y: make([]float64, len(pts))}
		if ls.groupBy != "" {
			s.Tags[ls.groupBy] = key
		}
		for i, pt := range pts {
			s.X[i], s.Y[i] = pt.X, pt.Y
		}
		st := l.Stats()
		s.Count = st.Count
		if st.Count > 0 {
			s.Min, s.Max = &st.Min, &st.Max
		}
		out = append(out, s)
	}
	return out
}

// series serves a numeric field of one story downsampled for a chart of
// width pixel columns: per column the first, last, lowest and highest
// points (M4), so that the drawn line is the one all points would draw.
// x=time puts points at their event time (Unix milliseconds), x=seq at
// their position in the story (0, 1, 2…), Trendlines' sequential axis.
// group_by=TAG draws one line per value of the tag.
func (a *API) series(w http.ResponseWriter, r *http.Request) {
	sr, err := parseSeries(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	q, ctx := sr.q, r.Context()
	ls := &lineSet{groupBy: sr.groupBy, lines: map[string]seriesLine{},
		maxLines: max(1, min(maxSeriesGroups, maxSeriesColumns/(2*sr.width)))}
	// The time axis needs its range before the first point: an open end
	// is the story's own first or last event time.
	lo, hi := q.From, q.To
	if sr.axis == "time" {
		if lo == 0 || hi == 0 {
			first, last, err := a.storyTimes(r, q.Chronicle, q.Story)
			if err != nil {
				a.writeError(w, r, err)
				return
			}
			lo, hi = cmp.Or(lo, first), cmp.Or(hi, last)
		}
		ls.newLine = func() seriesLine { return downsample.NewRange(float64(lo)/1e6, float64(hi)/1e6, sr.width) }
	} else {
		ls.newLine = func() seriesLine { return downsample.NewSequence(sr.width) }
	}
	f := sr.f
	source := "log"
	if sr.axis == "time" && len(f.text) == 0 && len(f.kinds) == 0 && len(f.fields) == 0 && a.fromIndex(ctx, q, sr.field, sr.groupBy, f.tags, ls.add) {
		source = "index"
	} else {
		err = a.seriesFromLog(ctx, q, f, sr.field, sr.groupBy, ls.add)
	}
	a.cfg.Metrics.ReadEvents.WithLabelValues("series").Add(float64(ls.read))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	resp := map[string]any{
		"chronicle": q.Chronicle, "story": q.Story, "field": sr.field, "x": sr.axis, "width": sr.width,
		"points": ls.read, "series": ls.json(), "groups_truncated": ls.cut, "source": source,
	}
	if sr.axis == "time" {
		resp["from_ms"], resp["to_ms"] = float64(lo)/1e6, float64(hi)/1e6
	}
	writeJSON(w, http.StatusOK, resp)
}

// seriesFromLog reads the story's events in log order and adds the value
// of field of each to its group's line.
func (a *API) seriesFromLog(ctx context.Context, q store.Query, f *filter, field, groupBy string, add func(key string, t int64, y float64)) error {
	var x expander
	if !f.empty() {
		q.Match = func(e *event.Event) bool {
			x.expand(e)
			return f.match(e)
		}
	}
	_, err := a.cfg.Store.Read(ctx, q, func(e *event.Event) error {
		if f.empty() {
			x.expand(e)
		}
		v, ok := e.Fields[field]
		if !ok {
			return nil
		}
		if y, ok := v.Number(); ok {
			add(e.Tags[groupBy], e.Time, y)
		}
		return nil
	}, nil)
	return err
}

// fromIndex adds the points of field in [q.From, q.To] from the query
// index, series by series, and says whether it could: without an index,
// or while it is still reading the log, the caller reads the log. The
// index keeps InfluxDB's rules: a field keeps the type it was first seen
// with, and of points with the same time and tags the last one written.
func (a *API) fromIndex(ctx context.Context, q store.Query, field, groupBy string, tags map[string][]string, add func(key string, t int64, y float64)) bool {
	if a.cfg.Index == nil {
		return false
	}
	wctx, cancel := context.WithTimeout(ctx, indexWait)
	defer cancel()
	db, err := a.cfg.Index.Sync(wctx, q.Chronicle)
	if err != nil {
		return false
	}
	// The write lock: Prepare may rebuild a column's time order, and
	// nothing may append while the columns are read.
	db.Lock()
	defer db.Unlock()
	m := db.Measurement(q.Story)
	if m == nil {
		return true
	}
	for _, s := range m.Series() {
		c := s.Column(field)
		if c == nil || !seriesTagsMatch(s, tags) {
			continue
		}
		if !c.Ready() {
			c.Prepare()
		}
		key := s.Tag(groupBy)
		k := 0
		if q.From != 0 {
			k = c.Search(q.From)
		}
		for ; k < c.Len(); k++ {
			t := c.Time(k)
			if q.To != 0 && t > q.To {
				break
			}
			switch c.Type {
			case event.TypeFloat:
				add(key, t, c.Float(k))
			case event.TypeInt:
				add(key, t, float64(c.Value(k).(int64)))
			case event.TypeUint:
				add(key, t, float64(c.Value(k).(uint64)))
			default:
				return true // strings and bools are not drawn
			}
		}
	}
	return true
}

func seriesTagsMatch(s *tsdb.Series, tags map[string][]string) bool {
	for k, vs := range tags {
		if !contains(vs, s.Tag(k)) {
			return false
		}
	}
	return true
}

// storyTimes returns the first and last event times of a story (Unix ns);
// the last hour when it has no events.
func (a *API) storyTimes(r *http.Request, chronicle, story string) (first, last int64, err error) {
	sts, err := a.cfg.Store.Stories(r.Context(), chronicle)
	if err != nil {
		return 0, 0, err
	}
	now := time.Now().UnixNano()
	for _, st := range sts {
		if st.Name == story {
			return st.FirstTime.UnixNano(), max(st.LastTime.UnixNano(), st.FirstTime.UnixNano()+1), nil
		}
	}
	return now - int64(time.Hour), now, nil
}

// metricJSON is one drawable series of the catalog: a story's numeric field.
type metricJSON struct {
	Chronicle string    `json:"chronicle"`
	Story     string    `json:"story"`
	Field     string    `json:"field"`
	Tags      []string  `json:"tags"`
	Events    uint64    `json:"events"`
	LastTime  time.Time `json:"last_time"`
}

// catalogSample is how many of a story's newest events name its fields.
const (
	catalogSample     = 64
	maxCatalogStories = 5000
	// A story's fields and tag keys listed are bounded too: an event may
	// carry as many as its size allows, and every field is an entry.
	maxCatalogFields = 1000
	maxCatalogTags   = 100
)

// metricsCatalog serves GET /api/v1/metrics: every numeric field of every
// story (of one chronicle with chronicle=), as found in the story's newest
// events, with the tag keys seen there (what group_by can take).
func (a *API) metricsCatalog(w http.ResponseWriter, r *http.Request) {
	p, err := newParams(r, "chronicle")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	only, err := p.one("chronicle")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ctx := r.Context()
	var chronicles []string
	if only != "" {
		if err := event.ValidateChronicle(only); err != nil {
			a.writeError(w, r, badParam("chronicle", "%w", err))
			return
		}
		chronicles = []string{only}
	} else {
		cs, err := a.cfg.Store.Chronicles(ctx)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		who := auth.FromContext(ctx)
		for _, c := range cs {
			if who.Can(auth.ScopeRead, c.Name) {
				chronicles = append(chronicles, c.Name)
			}
		}
	}
	out := []metricJSON{}
	scanned, cut := 0, false
	var x expander
	for _, c := range chronicles {
		sts, err := a.cfg.Store.Stories(ctx, c)
		if errors.Is(err, store.ErrNotFound) && only == "" {
			continue // deleted meanwhile
		}
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		for _, st := range sts {
			if scanned >= maxCatalogStories {
				break
			}
			scanned++
			fields, tags := map[string]bool{}, map[string]bool{}
			q := store.Query{Chronicle: c, Story: st.Name, Desc: true, Limit: catalogSample,
				Match: func(e *event.Event) bool { return e.Kind != event.KindTrace && e.Kind != event.KindAnnotation }}
			_, err := a.cfg.Store.Read(ctx, q, func(e *event.Event) error {
				x.expand(e)
				for k, v := range e.Fields {
					if _, ok := v.Number(); ok && !fields[k] {
						if len(fields) >= maxCatalogFields {
							cut = true
							continue
						}
						fields[k] = true
					}
				}
				for k := range e.Tags {
					if !tags[k] {
						if len(tags) >= maxCatalogTags {
							cut = true
							continue
						}
						tags[k] = true
					}
				}
				return nil
			}, nil)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				a.writeError(w, r, err)
				return
			}
			tagList := slices.Sorted(maps.Keys(tags))
			for _, fname := range slices.Sorted(maps.Keys(fields)) {
				out = append(out, metricJSON{Chronicle: c, Story: st.Name, Field: fname, Tags: tagList, Events: st.Events, LastTime: st.LastTime})
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"metrics": out, "stories_truncated": scanned >= maxCatalogStories, "fields_truncated": cut})
}

// numberOr returns a numeric field's value, or def.
func numberOr(e *event.Event, k string, def float64) float64 {
	if v, ok := e.Fields[k]; ok {
		if n, ok := v.Number(); ok {
			return n
		}
	}
	return def
}

// textOf returns the first of the fields keys that e has as a string.
func textOf(e *event.Event, keys ...string) string {
	for _, k := range keys {
		if v, ok := e.Fields[k]; ok && v.Type() == event.TypeString {
			return v.StringValue()
		}
	}
	return ""
}

// intParam parses an integer parameter within [1, max], def when absent.
func intParam(p *params, name string, def, maxN int) (int, error) {
	v, err := p.one(name)
	if err != nil || v == "" {
		return def, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxN {
		return 0, badParam(name, "want an integer from 1 to %d, got %q", maxN, v)
	}
	return n, nil
}

// timeRange parses from= and to= (event time, inclusive; 0 when absent).
func timeRange(p *params) (from, to int64, err error) {
	if from, _, err = p.time("from"); err != nil {
		return 0, 0, err
	}
	if to, _, err = p.time("to"); err != nil {
		return 0, 0, err
	}
	if from != 0 && to != 0 && from > to {
		return 0, 0, badParam("to", "to is before from")
	}
	return from, to, nil
}

// mergedQuery is a time-ordered read of a chronicle's stories (story=,
// repeatable; all when absent) within from= and to=.
func mergedQuery(p *params, chronicle string) (store.MergedQuery, error) {
	mq := store.MergedQuery{Chronicle: chronicle, Stories: p.q["story"]}
	for _, st := range mq.Stories {
		if err := event.ValidateStory(st); err != nil {
			return mq, badParam("story", "%w", err)
		}
	}
	var err error
	mq.From, mq.To, err = timeRange(p)
	return mq, err
}
