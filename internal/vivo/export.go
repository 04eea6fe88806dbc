package vivo

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/valyala/fastjson"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest/lineproto"
	"github.com/chronostream/chronostream/internal/jsonev"
	"github.com/chronostream/chronostream/internal/store"
)

// The response headers of Vivo's exporter.
const (
	hdrStart = "Vivo-Stream-Start-ID"
	hdrEnd   = "Vivo-Stream-End-ID"
	hdrNext  = "Vivo-Stream-Next-ID"
)

// page is a parsed exporter request.
type page struct {
	from    uint64 // first id (seq) served; with recent false
	recent  bool   // no from (or a negative one): the newest records
	to      uint64 // last id served (0: none)
	hasTo   bool
	limit   int
	chronic string
}

type paramError struct{ msg string }

func (e *paramError) Error() string { return e.msg }

// parsePage reads from, to and limit. Ids are seqs, never negative, but a
// negative from is taken, not refused: the Vivo UI asks for
// from=lastId-2*limit, which is negative on its first poll.
func (h *Handler) parsePage(q url.Values) (page, error) {
	p := page{limit: h.cfg.MaxPage, recent: true}
	for k, vs := range q {
		switch k {
		case "from", "to", "limit":
			if len(vs) > 1 {
				return p, &paramError{fmt.Sprintf("%s is given %d times", k, len(vs))}
			}
		}
	}
	if v := q.Get("from"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			if u, uerr := strconv.ParseUint(v, 10, 64); uerr == nil {
				n, err = int64(min(u, 1<<63-1)), nil
			}
		}
		if err != nil {
			return p, &paramError{fmt.Sprintf("from: want an integer id, got %q", v)}
		}
		if n >= 0 {
			p.from, p.recent = uint64(n), false
		}
	}
	if v := q.Get("to"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return p, &paramError{fmt.Sprintf("to: want an id (a non-negative integer), got %q", v)}
		}
		p.to, p.hasTo = n, true
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return p, &paramError{fmt.Sprintf("limit: want a count (0: all), got %q", v)}
		}
		if n > 0 {
			p.limit = min(n, h.cfg.MaxPage)
		}
	}
	return p, nil
}

var errPageFull = errors.New("page full")

// RecentScanBlocks bounds the blocks a request without from (the newest
// records) scans, newest first, for records of its signal's kind.
const RecentScanBlocks = 256

// lastBlocker is a log that tells its newest block (store.Store).
type lastBlocker interface {
	LastBlock(ctx context.Context, chronicle string) (uint64, error)
}

func (h *Handler) exportHandler(s Signal, byName bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		chronicle := h.cfg.Chronicles[s]
		if byName {
			chronicle = r.PathValue("chronicle")
			if err := event.ValidateChronicle(chronicle); err != nil {
				exportError(w, http.StatusBadRequest, err.Error())
				return
			}
		}
		p, err := h.parsePage(r.URL.Query())
		if err != nil {
			exportError(w, http.StatusBadRequest, err.Error())
			return
		}
		p.chronic = chronicle
		h.export(w, r, s, p)
	}
}

func exportError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintf(w, "error: %s\n", msg)
}

// export serves one page. The page is gathered before anything is sent
// (its size is bounded), so that the headers can say what it holds.
//
// Next-ID is exact: every record of the signal with an id below it and at
// or above the page's start was in this page or an earlier one, and every
// record appended later gets an id at or above it. Three bounds give it:
// after the last record served (the page may have been cut short), the
// log's last id before the read began plus one (a read that was not cut
// saw every block up to it, so records of other kinds are not rescanned
// by every poll), and to+1 (a read bounded by to).
func (h *Handler) export(w http.ResponseWriter, r *http.Request, s Signal, p page) {
	ctx := r.Context()
	kind := s.Kind()
	var (
		lines   [][]byte
		first   uint64
		last    uint64
		size    int
		cut     bool
		x       expander
		logLast uint64
	)
	emit := func(e *event.Event) error {
		if len(lines) >= p.limit || len(lines) > 0 && size >= h.cfg.MaxPageBytes {
			cut = true
			return errPageFull
		}
		b := x.record(s, e)
		lines = append(lines, b)
		size += len(b)
		return nil
	}
	match := func(e *event.Event) bool { return e.Kind == kind }

	// The newest id before the read: see Next-ID above. A log that tells
	// its newest block gives it without reading a block: every id up to
	// that block's end is taken.
	var err error
	var lastBlock uint64
	if lb, ok := h.cfg.Reader.(lastBlocker); ok {
		lastBlock, err = lb.LastBlock(ctx, p.chronic)
		logLast = event.MakeSeq(lastBlock, event.MaxBlockEvents)
	} else {
		_, err = h.cfg.Reader.Read(ctx, store.Query{Chronicle: p.chronic, Desc: true, Limit: 1},
			func(e *event.Event) error { logLast = e.Seq; return nil }, nil)
		lastBlock, _ = event.SplitSeq(logLast)
	}
	if err == nil && !(p.hasTo && p.to < p.from && !p.recent) {
		q := store.Query{Chronicle: p.chronic, Match: match}
		if p.hasTo {
			q.Before = p.to + 1
		}
		if p.recent {
			// Without a from, Vivo serves what its buffer holds: the newest
			// records. A log holds far more, so the newest page of them.
			q.Desc = true
			q.Limit = p.limit
			// Newest first until a page of the kind matched would walk a
			// chronicle without that kind back to its first block on
			// every poll: the scan is bounded to the newest blocks.
			top := lastBlock
			if p.hasTo {
				top = min(top, p.to/event.SeqsPerBlock)
			}
			if top > RecentScanBlocks {
				q.After = event.MakeSeq(top-RecentScanBlocks, event.MaxBlockEvents)
			}
			_, err = h.cfg.Reader.Read(ctx, q, func(e *event.Event) error {
				if size >= h.cfg.MaxPageBytes {
					return errPageFull
				}
				b := x.record(s, e)
				lines = append(lines, b)
				size += len(b)
				if first == 0 || e.Seq < first {
					first = e.Seq
				}
				last = max(last, e.Seq)
				return nil
			}, nil)
			slices.Reverse(lines)
		} else {
			if p.from > 0 {
				q.After = p.from - 1
			}
			// One more than the page: cut tells whether more follow.
			q.Limit = p.limit + 1
			_, err = h.cfg.Reader.Read(ctx, q, func(e *event.Event) error {
				if err := emit(e); err != nil {
					return err
				}
				if first == 0 {
					first = e.Seq
				}
				last = e.Seq
				return nil
			}, nil)
		}
	}
	if errors.Is(err, errPageFull) {
		err = nil
	}
	if errors.Is(err, store.ErrNotFound) {
		err = nil // no such chronicle yet: an empty stream, as Vivo's before its first record
	}
	if err != nil {
		if ctx.Err() == nil {
			h.warn.Warn("vivo: export failed", "chronicle", p.chronic, "signal", s, "err", err)
		}
		exportError(w, http.StatusServiceUnavailable, "reading the log: "+err.Error())
		return
	}

	next := last + 1
	if !p.recent {
		next = max(next, p.from)
	}
	// A page that ends in the log's newest block goes on right after its
	// last record (exact, as Vivo's ring buffer); one that does not, after
	// that block (the blocks between held none of the signal's kind).
	if !cut && (last == 0 || last/event.SeqsPerBlock < lastBlock) {
		bound := logLast + 1
		if p.hasTo {
			bound = min(bound, p.to+1)
		}
		next = max(next, bound)
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	if len(lines) > 0 {
		hd.Set(hdrStart, strconv.FormatUint(first, 10))
		hd.Set(hdrEnd, strconv.FormatUint(last, 10))
	}
	hd.Set(hdrNext, strconv.FormatUint(next, 10))
	hd.Set("Content-Length", strconv.Itoa(size+len(lines)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	buf := make([]byte, 0, size+len(lines))
	for _, l := range lines {
		buf = append(buf, l...)
		buf = append(buf, '\n')
	}
	_, _ = w.Write(buf)
}

// expander encodes records in Vivo's shapes.
type expander struct {
	p fastjson.Parser
}

// record encodes e as one line (no newline) of signal s:
//
//	logs:    [[TIME_NS,{"_tag":STORY}],RECORD]
//	metrics: {"meta":{"_tag":STORY},"timestamp":TIME_NS,"name":STORY,"labels":{TAGS},"values":{FIELDS},"record":BODY}
//	traces:  {"meta":{"_tag":STORY},"timestamp":TIME_NS,"record":BODY}
//
// RECORD is a JSON object body verbatim; any other body is wrapped as
// {"log": ...} (text as a string, other JSON as is, bytes as "log_base64").
func (x *expander) record(s Signal, e *event.Event) []byte {
	b := make([]byte, 0, len(e.Body)+64)
	switch s {
	case Logs:
		b = append(b, "[["...)
		b = strconv.AppendInt(b, e.Time, 10)
		b = append(b, `,{"_tag":`...)
		b = jsonev.AppendString(b, e.Story)
		b = append(b, "}],"...)
		b = appendRecord(b, e)
		return append(b, ']')
	case Metrics:
		switch e.Format {
		case event.FormatJSON:
			jsonev.Expand(&x.p, e)
		case event.FormatLine:
			_ = lineproto.Expand(e)
		}
		b = append(b, `{"meta":{"_tag":`...)
		b = jsonev.AppendString(b, e.Story)
		b = append(b, `},"timestamp":`...)
		b = strconv.AppendInt(b, e.Time, 10)
		b = append(b, `,"name":`...)
		b = jsonev.AppendString(b, e.Story)
		b = append(b, `,"labels":`...)
		b = appendJSON(b, e.Tags, "{}")
		b = append(b, `,"values":`...)
		b = appendJSON(b, e.Fields, "{}")
		if e.Format == event.FormatJSON {
			b = append(b, `,"record":`...)
			b = appendRecord(b, e)
		}
		return append(b, '}')
	default:
		b = append(b, `{"meta":{"_tag":`...)
		b = jsonev.AppendString(b, e.Story)
		b = append(b, `},"timestamp":`...)
		b = strconv.AppendInt(b, e.Time, 10)
		b = append(b, `,"record":`...)
		b = appendRecord(b, e)
		return append(b, '}')
	}
}

// appendRecord appends e's body as a JSON object on one line.
func appendRecord(b []byte, e *event.Event) []byte {
	body := bytes.TrimSpace(e.Body)
	if e.Format == event.FormatJSON && json.Valid(body) {
		if bytes.ContainsAny(body, "\r\n") {
			var buf bytes.Buffer
			_ = json.Compact(&buf, body) // valid: cannot fail
			body = buf.Bytes()
		}
		if len(body) > 0 && body[0] == '{' {
			return append(b, body...)
		}
		b = append(b, `{"log":`...)
		b = append(b, body...)
		return append(b, '}')
	}
	if utf8.Valid(e.Body) {
		b = append(b, `{"log":`...)
		b = jsonev.AppendString(b, string(e.Body))
		return append(b, '}')
	}
	b = append(b, `{"log_base64":"`...)
	b = base64.StdEncoding.AppendEncode(b, e.Body)
	return append(b, `"}`...)
}

// appendJSON appends v (a map with sorted keys in the output), or empty
// when v is nil.
func appendJSON[M ~map[string]V, V any](b []byte, v M, empty string) []byte {
	if len(v) == 0 {
		return append(b, empty...)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return append(b, empty...)
	}
	return append(b, out...)
}

func jsonValid(b []byte) bool { return json.Valid(b) }
