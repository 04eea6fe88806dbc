package vivo

import (
	"compress/flate"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/ingest/ndjson"
	"github.com/chronostream/chronostream/internal/jsonev"
	"github.com/chronostream/chronostream/internal/store"
)

// Protocol labels metrics and sources of the HTTP input.
const Protocol = "vivo-http"

// DefaultTag is the tag of records posted to the input's bare path, as
// Fluent Bit names records of its first http input that has no tag.
const DefaultTag = "http.0"

// TagFromPath returns the tag a request path names, the way Fluent Bit's
// http input derives it: the (still percent-encoded) path after the
// prefix, with every byte other than ASCII letters, digits, '_' and '.'
// replaced by '_' ("/app/web" is "app_web"); an empty rest is DefaultTag.
func TagFromPath(rest string) string {
	rest = strings.TrimPrefix(rest, "/")
	if rest == "" {
		return DefaultTag
	}
	b := []byte(rest)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}

// NotObjectError reports a record that is a JSON value but not an object.
type NotObjectError struct {
	Line int
	Type string
}

func (e *NotObjectError) Error() string {
	return fmt.Sprintf("line %d: a record must be a JSON object, not %s", e.Line, e.Type)
}

// Decoder yields the records of an input body: one JSON object, a JSON
// array of objects, or objects one after another (NDJSON). It is the NDJSON
// decoder (strict grammar, bounded values, line numbers in errors) with one
// rule on top: every record is an object.
type Decoder struct {
	d *ndjson.Decoder
}

// NewDecoder returns a decoder of r whose records are at most maxRecord bytes.
func NewDecoder(r io.Reader, maxRecord int) *Decoder {
	return &Decoder{d: ndjson.NewDecoder(r, ndjson.Options{MaxValueBytes: maxRecord, UnwrapArray: true})}
}

// Next returns the next record, valid until the next call, or io.EOF.
func (d *Decoder) Next() ([]byte, error) {
	v, err := d.d.Next()
	if err != nil {
		return nil, err
	}
	if v[0] != '{' {
		return nil, &NotObjectError{Line: d.d.Line(), Type: jsonType(v[0])}
	}
	return v, nil
}

// Line is the line on which the last record returned starts.
func (d *Decoder) Line() int { return d.d.Line() }

func jsonType(c byte) string {
	switch c {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// inputHandler takes Fluent Bit http-input style posts: POST {prefix}/input
// or {prefix}/input/{tag}. Each record is one log event of the story named
// by the tag (ingest.TagTarget), its body the record verbatim; the
// chronicle is ?chronicle= (or X-Chronostream-Chronicle), else the
// input's. The answer, as Fluent Bit's, is 201 with no body, sent once the
// records are durable; X-Chronostream-Stored counts them.
func (h *Handler) inputHandler(prefix string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// The path as sent, percent-escapes included, as Fluent Bit sees it.
		h.serveInput(w, r, TagFromPath(strings.TrimPrefix(r.URL.EscapedPath(), prefix+"/input")))
	}
}

func (h *Handler) serveInput(w http.ResponseWriter, r *http.Request, tag string) {
	chronicle, _ := ingest.Target(r, h.cfg.InputChronicle, "")
	chronicle, story := ingest.TagTarget(tag, chronicle, h.cfg.TagChronicle)
	res := h.ingest(r, chronicle, story)
	if m := h.cfg.Metrics; m != nil {
		if res.stored > 0 {
			m.IngestEvents.WithLabelValues(Protocol).Add(float64(res.stored))
		}
		if res.fail != nil {
			m.IngestErrors.WithLabelValues(Protocol, res.fail.reason).Inc()
		}
	}
	if res.source != "" {
		w.Header().Set("X-Chronostream-Source", res.source)
		w.Header().Set("X-Chronostream-Stored", fmt.Sprint(res.stored))
	}
	if res.fail == nil {
		w.WriteHeader(http.StatusCreated)
		return
	}
	if res.fail.status >= 500 {
		h.warn.Warn("vivo input failed", "err", res.fail.detail)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(res.fail.status)
	fmt.Fprintf(w, "error: %s\nstored %d\n", res.fail.detail, res.stored)
}

type result struct {
	stored int
	source string
	fail   *failure
}

type failure struct {
	status int
	reason string // metric label
	detail string
}

func (h *Handler) ingest(r *http.Request, chronicle, story string) result {
	if h.appender == nil {
		return result{fail: mapError(errNoLog)}
	}
	ctx := r.Context()
	start := time.Now()
	if err := event.ValidateChronicle(chronicle); err != nil {
		return result{fail: mapError(fmt.Errorf("%w: %w", store.ErrInvalidName, err))}
	}
	if err := event.ValidateStory(story); err != nil {
		return result{fail: mapError(fmt.Errorf("%w: %w", store.ErrInvalidName, err))}
	}
	lim := h.cfg.Limits.MaxBodyBytes
	body := &limitReader{n: lim}
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		if r.ContentLength > lim {
			return result{fail: &failure{status: http.StatusRequestEntityTooLarge, reason: "body_too_large",
				detail: fmt.Sprintf("Content-Length %d exceeds the limit of %d bytes; nothing was stored", r.ContentLength, lim)}}
		}
		body.r = r.Body
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return result{fail: mapError(fmt.Errorf("%w: %w", errBadGzip, err))}
		}
		defer zr.Close()
		body.r = zr
	default:
		return result{fail: &failure{status: http.StatusUnsupportedMediaType, reason: "unsupported_encoding",
			detail: fmt.Sprintf("content encoding %q is not supported (use gzip or none)", enc)}}
	}

	src := store.Source{
		ID:        store.NewSourceID(),
		Protocol:  Protocol,
		Remote:    r.RemoteAddr,
		Headers:   ingest.SourceHeaders(r.Header),
		Chronicle: chronicle,
		Story:     story,
		Start:     start.UTC(),
	}
	// The source is recorded before the first append (the pipeline's
	// gate), so no stored event names an unrecorded source. A body that
	// fits in one batch is read whole by then: its record is put once,
	// complete with its count.
	var (
		count              int
		bodyDone, complete bool
		gated              bool
	)
	gate := func() error {
		gated = true
		if bodyDone {
			src.Count, src.End, complete = uint64(count), time.Now().UTC(), true
		}
		if err := h.cfg.Log.PutSource(ctx, src); err != nil {
			return fmt.Errorf("recording the source: %w", err)
		}
		return nil
	}
	dec := NewDecoder(body, ingest.EventLimit(h.cfg.Log, h.cfg.Limits.MaxEventBytes, src.ID))
	var p fastjson.Parser
	pipe := h.appender.Begin(ctx, gate)
	ref, err := pipe.Story(chronicle, story)
	if err != nil {
		return result{fail: mapError(err)}
	}
	var inErr error
	for {
		v, err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			inErr = err
			break
		}
		var t int64
		if pv, err := p.ParseBytes(v); err == nil {
			t, _ = jsonev.MetaOf(pv)
		} // else: the decoder validated v; only fastjson's own limits remain, and the time is then ingest time
		ev := event.Event{Time: t, Kind: event.KindLog, Format: event.FormatJSON, Source: src.ID}
		if pipe.Add(ref, &ev, v) != nil {
			break
		}
		count++
	}
	bodyDone = true
	storeErr := pipe.Close()
	res := result{}
	if gated {
		res.source = src.ID
		res.stored = pipe.Acked(ref).N
		if !complete || src.Count != uint64(res.stored) {
			src.Count, src.End = uint64(res.stored), time.Now().UTC()
			// Bookkeeping for durable events: finish it even if the client left.
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if err := h.cfg.Log.PutSource(uctx, src); err != nil {
				h.warn.Warn("recording the count of a source failed", "err", err)
			}
			cancel()
		}
	}
	switch {
	case storeErr != nil:
		res.fail = mapError(storeErr)
	case inErr != nil:
		res.fail = mapError(inErr)
	case count == 0:
		res.fail = &failure{status: http.StatusBadRequest, reason: "empty", detail: "the body holds no record (want a JSON object, an array of objects, or NDJSON)"}
	}
	return res
}

var (
	errBodyTooLarge = errors.New("request body too large")
	errBadGzip      = errors.New("invalid gzip body")
)

// limitReader bounds the (decompressed) body: it hands on at most n bytes
// and fails once the body holds more.
type limitReader struct {
	r    io.Reader
	n    int64
	read int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.read > l.n {
		return 0, fmt.Errorf("%w: over %d bytes", errBodyTooLarge, l.n)
	}
	if rem := l.n + 1 - l.read; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	if l.read > l.n {
		return n - int(l.read-l.n), fmt.Errorf("%w: over %d bytes", errBodyTooLarge, l.n)
	}
	return n, err
}

// mapError maps an input error to its response, once, at the edge.
func mapError(err error) *failure {
	var se *ndjson.SyntaxError
	var tl *ndjson.TooLargeError
	var no *NotObjectError
	var ce flate.CorruptInputError
	var re *ndjson.ReadError
	switch {
	case errors.As(err, &se):
		return &failure{status: http.StatusBadRequest, reason: "invalid_json", detail: se.Error()}
	case errors.As(err, &no):
		return &failure{status: http.StatusBadRequest, reason: "not_object", detail: no.Error()}
	case errors.As(err, &tl):
		return &failure{status: http.StatusRequestEntityTooLarge, reason: "event_too_large", detail: tl.Error()}
	case errors.Is(err, errBodyTooLarge):
		return &failure{status: http.StatusRequestEntityTooLarge, reason: "body_too_large", detail: err.Error()}
	case errors.Is(err, errBadGzip), errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum), errors.As(err, &ce):
		return &failure{status: http.StatusBadRequest, reason: "invalid_gzip", detail: err.Error()}
	case errors.Is(err, store.ErrInvalidName):
		return &failure{status: http.StatusBadRequest, reason: "invalid_name", detail: err.Error()}
	case errors.Is(err, store.ErrNoChronicle):
		return &failure{status: http.StatusNotFound, reason: "no_chronicle", detail: err.Error()}
	case errors.Is(err, store.ErrTooLarge):
		return &failure{status: http.StatusRequestEntityTooLarge, reason: "event_too_large", detail: err.Error()}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &failure{status: 499, reason: "canceled", detail: err.Error()}
	case errors.As(err, &re):
		return &failure{status: http.StatusBadRequest, reason: "read_error", detail: err.Error()}
	}
	return &failure{status: http.StatusServiceUnavailable, reason: "store_unavailable", detail: err.Error()}
}
