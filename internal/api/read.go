package api

import (
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/store"
)

const (
	defaultJSONLimit = 1000
	// flushBytes is how much output is gathered before it is written and
	// flushed: exports stream in constant memory and reach the client soon.
	flushBytes = 32 << 10
)

type format int

const (
	formatJSON format = iota
	formatNDJSON
	formatCSV
)

var formatNames = map[string]format{"json": formatJSON, "ndjson": formatNDJSON, "csv": formatCSV}

var contentTypes = [...]string{
	formatJSON:   "application/json",
	formatNDJSON: "application/x-ndjson",
	formatCSV:    "text/csv; charset=utf-8",
}

// negotiate picks the format from the format parameter, else the Accept header.
func negotiate(p *params, r *http.Request) (format, error) {
	v, err := p.one("format")
	if err != nil {
		return 0, err
	}
	if v != "" {
		f, ok := formatNames[v]
		if !ok {
			return 0, badParam("format", "want json, ndjson or csv, got %q", v)
		}
		return f, nil
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/jsonlines":
			return formatNDJSON, nil
		case "text/csv":
			return formatCSV, nil
		case "application/json":
			return formatJSON, nil
		}
	}
	return formatJSON, nil
}

// readRequest is a parsed read.
type readRequest struct {
	q      store.Query
	format format
	filter *filter
	// merged: a chronicle read in time order (sort=time, the default for
	// chronicles), paged by mq.After instead of q.After/Before.
	merged bool
	mq     store.MergedQuery
}

func parseRead(r *http.Request) (*readRequest, error) {
	chronicle, story, err := names(r)
	if err != nil {
		return nil, err
	}
	allowed := []string{"after", "before", "from", "to", "order", "limit", "format", "q", "kind", "tag.", "field."}
	if story == "" {
		allowed = append(allowed, "story", "sort")
	}
	p, err := newParams(r, allowed...)
	if err != nil {
		return nil, err
	}
	rr := &readRequest{q: store.Query{Chronicle: chronicle, Story: story}}
	if rr.format, err = negotiate(p, r); err != nil {
		return nil, err
	}
	if story == "" {
		switch sort, err := p.one("sort"); {
		case err != nil:
			return nil, err
		case sort == "" || sort == "time":
			rr.merged = true
		case sort != "seq":
			return nil, badParam("sort", "want time or seq, got %q", sort)
		}
	}
	if rr.merged {
		if rr.mq.After, err = p.timeCursor("after"); err != nil {
			return nil, err
		}
		before, err := p.timeCursor("before")
		if err != nil {
			return nil, err
		}
		if before != (store.TimeCursor{}) {
			if rr.mq.After != (store.TimeCursor{}) {
				return nil, badParam("before", "a time-ordered read takes after (ascending) or before (descending), not both")
			}
			rr.mq.After = before
		}
	} else {
		if rr.q.After, _, err = p.seq("after"); err != nil {
			return nil, err
		}
		if rr.q.Before, _, err = p.seq("before"); err != nil {
			return nil, err
		}
	}
	if rr.q.From, _, err = p.time("from"); err != nil {
		return nil, err
	}
	if rr.q.To, _, err = p.time("to"); err != nil {
		return nil, err
	}
	if rr.q.From != 0 && rr.q.To != 0 && rr.q.From > rr.q.To {
		return nil, badParam("to", "to is before from")
	}
	switch order, err := p.one("order"); {
	case err != nil:
		return nil, err
	case order == "desc":
		rr.q.Desc = true
	case order != "" && order != "asc":
		return nil, badParam("order", "want asc or desc, got %q", order)
	}
	if rr.format == formatJSON {
		rr.q.Limit = defaultJSONLimit
	}
	switch v, err := p.one("limit"); {
	case err != nil:
		return nil, err
	case v != "":
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return nil, badParam("limit", "want a positive integer, got %q", v)
		}
		rr.q.Limit = n
	}
	if rr.filter, err = p.filter(); err != nil {
		return nil, err
	}
	for _, st := range rr.filter.stories {
		if err := event.ValidateStory(st); err != nil {
			return nil, badParam("story", "%w", err)
		}
	}
	if rr.merged {
		if rr.q.Desc && p.q.Has("after") {
			return nil, badParam("after", "a newest-first time-ordered read pages with before")
		}
		if !rr.q.Desc && p.q.Has("before") {
			return nil, badParam("before", "an oldest-first time-ordered read pages with after")
		}
		// Stories are merged rather than filtered event by event.
		rr.mq.Chronicle, rr.mq.Stories, rr.filter.stories = chronicle, rr.filter.stories, nil
		rr.mq.From, rr.mq.To, rr.mq.Desc, rr.mq.Limit = rr.q.From, rr.q.To, rr.q.Desc, rr.q.Limit
		return rr, nil
	}
	// One story of a chronicle reads only that story's blocks.
	if len(rr.filter.stories) == 1 {
		rr.q.Story, rr.filter.stories = rr.filter.stories[0], nil
	}
	return rr, nil
}

// readEvents serves reads and exports of a story or a whole chronicle. The
// output is written as it is read, in chunks of flushBytes: memory stays
// constant however many events an export holds. Until the first chunk goes
// out, a failure is still answered with a problem document; after, the
// connection is aborted so that a client never takes a truncated export for
// a complete one.
func (a *API) readEvents(w http.ResponseWriter, r *http.Request) {
	rr, err := parseRead(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var (
		x       expander
		buf     = make([]byte, 0, flushBytes+4096)
		started bool
		n       int
		gaps    []store.Gap
		rc      = http.NewResponseController(w)
		f       = rr.filter
	)
	expandInMatch := f.needsExpand()
	if !f.empty() {
		rr.q.Match = func(e *event.Event) bool {
			if expandInMatch {
				x.expand(e)
			}
			return f.match(e)
		}
	}
	flush := func() error {
		if !started {
			w.Header().Set("Content-Type", contentTypes[rr.format])
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		buf = buf[:0]
		_ = rc.Flush()
		return nil
	}
	switch rr.format {
	case formatJSON:
		buf = append(buf, `{"events":[`...)
	case formatCSV:
		buf = append(buf, csvHeader...)
	}
	fn := func(e *event.Event) error {
		if !expandInMatch {
			x.expand(e)
		}
		switch rr.format {
		case formatJSON:
			if n > 0 {
				buf = append(buf, ',')
			}
			buf = appendEvent(buf, e, "")
		case formatNDJSON:
			buf = appendEvent(buf, e, "")
			buf = append(buf, '\n')
		case formatCSV:
			buf = appendCSVRow(buf, e)
		}
		n++
		if len(buf) >= flushBytes {
			return flush()
		}
		return nil
	}
	onGap := func(g store.Gap) error {
		switch rr.format {
		case formatJSON:
			gaps = append(gaps, g)
		case formatNDJSON:
			buf = append(buf, `{"gap":`...)
			buf = appendGap(buf, g)
			buf = append(buf, "}\n"...)
		}
		return nil
	}
	var next []byte
	if rr.merged {
		rr.mq.Match = rr.q.Match
		var last store.TimeCursor
		last, err = a.cfg.Store.ReadMerged(r.Context(), rr.mq, fn)
		next = fmt.Appendf(nil, "%d.%d", last.Time, last.Seq)
	} else {
		var last uint64
		last, err = a.cfg.Store.Read(r.Context(), rr.q, fn, onGap)
		next = strconv.AppendUint(nil, last, 10)
	}
	a.cfg.Metrics.ReadEvents.WithLabelValues("events").Add(float64(n))
	if err != nil {
		if !started {
			a.writeError(w, r, err)
			return
		}
		if r.Context().Err() == nil {
			a.cfg.Logger.Warn("api: read ended early", "path", r.URL.Path, "err", err)
		}
		panic(http.ErrAbortHandler)
	}
	if rr.format == formatJSON {
		buf = append(buf, ']')
		if rr.q.Limit > 0 && n >= rr.q.Limit {
			buf = append(buf, `,"next":"`...)
			buf = append(buf, next...)
			buf = append(buf, '"')
		}
		if len(gaps) > 0 {
			buf = append(buf, `,"gaps":[`...)
			for i, g := range gaps {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = appendGap(buf, g)
			}
			buf = append(buf, ']')
		}
		buf = append(buf, "}\n"...)
	}
	_ = flush()
}
