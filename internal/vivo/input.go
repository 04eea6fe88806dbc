package vivo

import (
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
		return result{fail: mapError(r.Context(), errNoLog)}
	}
	ctx := r.Context()
	start := time.Now()
	if err := store.ValidateNames(chronicle, story); err != nil {
		return result{fail: mapError(ctx, err)}
	}
	body, err := ingest.OpenBody(r, h.cfg.Limits.MaxBodyBytes)
	if err != nil {
		return result{fail: mapError(ctx, err)}
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
	// The client's source is recorded before the first append (the
	// pipeline's gate), so no stored event names an unrecorded source.
	gate := h.cfg.Clients.Open(&src)
	count := 0
	dec := NewDecoder(body, ingest.EventLimit(h.cfg.Log, h.cfg.Limits.MaxEventBytes, src.ID))
	var p fastjson.Parser
	pipe := h.appender.Begin(ctx, gate.Gate)
	ref, err := pipe.Story(chronicle, story)
	if err != nil {
		return result{fail: mapError(ctx, err)}
	}
	var inErr error
	for v := range ndjson.Values(dec.Next, &inErr) {
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
	gate.BodyRead(count)
	storeErr := pipe.Close()
	res := result{source: src.ID}
	srcErr := gate.Finish(pipe.Acked(ref).N, h.warn)
	if srcErr == nil {
		res.stored = pipe.Acked(ref).N
	}
	switch {
	case storeErr != nil:
		res.fail = mapError(ctx, storeErr)
	case srcErr != nil:
		res.fail = mapError(ctx, srcErr)
	case inErr != nil:
		res.fail = mapError(ctx, inErr)
	case count == 0:
		res.fail = &failure{status: http.StatusBadRequest, reason: "empty", detail: "the body holds no record (want a JSON object, an array of objects, or NDJSON)"}
	}
	return res
}

// mapError maps an input error to its response, once, at the edge: the
// body's and the log's errors by ingest's shared classes. A canceled or
// expired context is 499 only when the client went away; the log's own
// timeouts are 503 (Fluent Bit retries 5xx, and drops on 4xx).
func mapError(ctx context.Context, err error) *failure {
	var se *ndjson.SyntaxError
	var tl *ndjson.TooLargeError
	var no *NotObjectError
	var re *ndjson.ReadError
	switch {
	case errors.As(err, &se):
		return &failure{status: http.StatusBadRequest, reason: "invalid_json", detail: se.Error()}
	case errors.As(err, &no):
		return &failure{status: http.StatusBadRequest, reason: "not_object", detail: no.Error()}
	case errors.As(err, &tl):
		return &failure{status: http.StatusRequestEntityTooLarge, reason: "event_too_large", detail: tl.Error()}
	}
	if f, ok := ingest.ClassifyBodyError(err); ok {
		return &failure{status: f.Status, reason: f.Reason, detail: err.Error()}
	}
	if errors.As(err, &re) {
		return &failure{status: http.StatusBadRequest, reason: "read_error", detail: err.Error()}
	}
	f := ingest.ClassifyStoreError(ctx, err)
	return &failure{status: f.Status, reason: f.Reason, detail: err.Error()}
}
