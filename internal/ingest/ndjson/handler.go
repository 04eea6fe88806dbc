package ndjson

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/jsonev"
	"github.com/chronostream/chronostream/internal/store"
)

// Protocol labels metrics and sources of this transport.
const Protocol = "http-ndjson"

// Config configures the NDJSON ingest handler.
type Config struct {
	ingest.Config
	// Batch sizes the pipelined appends; zero fields take ingest.DefaultBatch.
	Batch ingest.BatchOptions
}

// Handler takes NDJSON (and JSON array) bodies over HTTP POST.
type Handler struct {
	cfg        ingest.Config
	batchBytes int
	appender   *ingest.Appender
	parsers    fastjson.ParserPool
	warn       *ingest.ThrottledLogger
}

// NewHandler returns a handler.
func NewHandler(cfg Config) *Handler {
	c := cfg.Config.WithDefaults()
	bb := cfg.Batch.Bytes
	if bb <= 0 {
		bb = ingest.DefaultBatch.Bytes
	}
	return &Handler{cfg: c, batchBytes: bb, appender: ingest.NewAppender(c.Log, cfg.Batch), warn: ingest.NewThrottledLogger(c.Logger, time.Second)}
}

// ServeRoot serves the anacrolix-style "POST /": the chronicle and story
// come from the query (chronicle=, story=) or the X-Chronostream-Chronicle
// and X-Chronostream-Story headers, else the configured defaults. The reply
// is the number of events stored, as a plain-text integer.
func (h *Handler) ServeRoot(w http.ResponseWriter, r *http.Request) {
	chronicle, story := ingest.Target(r, h.cfg.DefaultChronicle, h.cfg.DefaultStory)
	res := h.ingest(r, chronicle, story, false)
	if res.fail == nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "%d\n", res.stored)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	setFailureHeaders(w, res)
	w.WriteHeader(res.fail.status)
	fmt.Fprintf(w, "%s\nstored %d\n", res.fail.detail, res.stored)
}

// Headers of a refused request, for clients to act on (see docs/api.md).
const (
	// HeaderStored is the count of the request's events stored (a prefix
	// of its body, duplicates of a client stream included).
	HeaderStored = "X-Chronostream-Stored"
	// HeaderReason is the reason of the refusal (the problem type's last
	// part, with '_': "body_too_large", "event_too_large", "invalid_stream"…).
	HeaderReason = "X-Chronostream-Reason"
	// HeaderRejectedLine is the line of the body refused on its own (an
	// event too large, invalid JSON): the event after the stored ones.
	// Without it, a refusal is of the request as a whole.
	HeaderRejectedLine = "X-Chronostream-Rejected-Line"
)

func setFailureHeaders(w http.ResponseWriter, res result) {
	h := w.Header()
	h.Set(HeaderStored, strconv.Itoa(res.stored))
	h.Set(HeaderReason, res.fail.reason)
	if res.fail.line > 0 {
		h.Set(HeaderRejectedLine, strconv.Itoa(res.fail.line))
	}
}

// ServeEvents serves POST /api/v1/chronicles/{chronicle}/stories/{story}/events.
// Besides NDJSON it takes one JSON array of events when the content type is
// application/json and the body starts with '['.
func (h *Handler) ServeEvents(w http.ResponseWriter, r *http.Request) {
	res := h.ingest(r, r.PathValue("chronicle"), r.PathValue("story"), true)
	if res.fail != nil {
		writeProblem(w, res)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		Stored   int    `json:"stored"`
		FirstSeq uint64 `json:"first_seq,omitempty"`
		LastSeq  uint64 `json:"last_seq,omitempty"`
		Source   string `json:"source"`
	}{res.stored, res.first, res.last, res.source})
}

// result is the outcome of one request.
type result struct {
	stored      int
	first, last uint64
	source      string
	fail        *failure
}

// failure says what went wrong, once mapped for the response.
type failure struct {
	status int
	reason string // metric label and problem type
	title  string
	detail string
	line   int
}

func (h *Handler) ingest(r *http.Request, chronicle, story string, api bool) result {
	start := time.Now()
	m := h.cfg.Metrics
	res := h.ingestBody(r, chronicle, story, api, start)
	if m != nil {
		if res.stored > 0 {
			m.IngestEvents.WithLabelValues(Protocol).Add(float64(res.stored))
		}
		if res.fail != nil {
			m.IngestErrors.WithLabelValues(Protocol, res.fail.reason).Inc()
		}
	}
	return res
}

func (h *Handler) ingestBody(r *http.Request, chronicle, story string, api bool, start time.Time) result {
	ctx := r.Context()
	kind := event.KindEvent
	override := false
	if k := r.URL.Query().Get("kind"); k != "" {
		var err error
		if kind, err = event.ParseKind(k); err != nil {
			return result{fail: &failure{status: http.StatusBadRequest, reason: "invalid_kind", title: "Invalid kind", detail: err.Error()}}
		}
		override = true
	}
	if err := store.ValidateNames(chronicle, story); err != nil {
		return result{fail: mapError(ctx, err)}
	}
	streamID, index, isStream, err := ingest.StreamOf(r)
	if err != nil {
		return result{fail: mapError(ctx, err)}
	}
	// A declared length over the limit is refused before anything is
	// stored. Bodies whose size is only known once read (chunked, gzip)
	// store and acknowledge the values before the limit instead: refusing
	// them whole would mean buffering up to the limit.
	counter, err := ingest.OpenBody(r, h.cfg.Limits.MaxBodyBytes)
	if err != nil {
		f := mapError(ctx, err)
		if f.reason == "body_too_large" {
			f.detail += "; nothing was stored (a chunked or gzip-encoded body over the limit stores and acknowledges the events before the limit)"
		}
		return result{fail: f}
	}

	src := ingest.NewSource(r, Protocol, chronicle, story)
	src.Start = start.UTC()
	// A client stream is one source across its requests. Its requests
	// serialize from the check of its next index to the durability of what
	// was appended, and their appends are waited for even when the client
	// goes: a later request must see them in the log, not race them.
	var (
		guard   *ingest.StreamGuard
		dropped int // values the log holds already, dropped: a prefix of the body
	)
	pipeCtx := ctx
	if isStream {
		if h.cfg.Streams == nil {
			return result{fail: &failure{status: http.StatusNotImplemented, reason: "no_streams", title: "Client streams unsupported",
				detail: "this server cannot remove duplicates of client streams"}}
		}
		guard, err = h.cfg.Streams.Acquire(ctx, chronicle, story, streamID)
		if err != nil {
			return result{fail: mapError(ctx, err)}
		}
		defer guard.Release()
		src.ID = streamID
		src.Stream = guard.Position()
		pipeCtx = context.WithoutCancel(ctx)
	}
	// The pipeline awaits the source record before its first append, so no
	// stored event names a source that is not recorded: a client stream's
	// record per request (it carries the stream's position), any other
	// request's by its client.
	var gate ingest.Recorder
	if isStream {
		gate = ingest.NewSourceGate(ctx, h.cfg.Log, &src, r.ContentLength, h.batchBytes)
	} else {
		gate = h.cfg.Clients.Open(&src)
	}
	n := 0 // events handed to the pipeline

	dec := NewDecoder(counter, Options{MaxValueBytes: ingest.EventLimit(h.cfg.Log, h.cfg.Limits.MaxEventBytes, src.ID), UnwrapArray: api && isJSON(r.Header.Get("Content-Type"))})
	p := h.parsers.Get()
	defer h.parsers.Put(p)
	pipe := h.appender.Begin(pipeCtx, gate.Gate)
	ref, err := pipe.Story(chronicle, story)
	if err != nil {
		return result{fail: mapError(ctx, err)}
	}
	var inErr error
	for v := range Values(dec.Next, &inErr) {
		pv, err := p.ParseBytes(v)
		if err != nil {
			// The decoder validated v; only fastjson's own limits remain.
			inErr = &SyntaxError{Line: dec.Line(), Msg: err.Error()}
			break
		}
		t, k := jsonev.MetaOf(pv)
		if override {
			k = kind
		}
		ev := event.Event{Time: t, Kind: k, Format: event.FormatJSON, Source: src.ID}
		if isStream {
			ev.Index, ev.Indexed = index+uint64(dropped+n), true
			if guard.Stored(ev.Index) {
				dropped++
				continue
			}
		}
		if pipe.Add(ref, &ev, v) != nil {
			break
		}
		n++
	}
	gate.BodyRead(n)
	storeErr := pipe.Close()
	if m := h.cfg.Metrics; m != nil {
		m.IngestBytes.WithLabelValues(Protocol).Add(float64(counter.N()))
	}

	if m := h.cfg.Metrics; m != nil && dropped > 0 {
		m.IngestErrors.WithLabelValues(Protocol, "duplicate").Add(float64(dropped))
	}
	res := result{source: src.ID}
	acked := pipe.Acked(ref)
	if guard != nil {
		guard.Appended(index+uint64(dropped+acked.N), acked.Last, storeErr)
		// Finish's record carries the new position; the record put
		// in the background (if any) is done with src first.
		_ = gate.Gate()
		src.Stream = guard.Position()
	}
	srcErr := gate.Finish(acked.N, h.warn)
	if guard != nil && n > 0 && srcErr != nil {
		guard.Appended(0, 0, srcErr)
	}
	if srcErr == nil {
		// Duplicates count as acknowledged: they are in the log, and a
		// client counts what it sent.
		res.stored, res.first, res.last = dropped+acked.N, acked.First, acked.Last
	}
	switch {
	case storeErr != nil:
		res.fail = mapError(ctx, storeErr)
	case srcErr != nil:
		res.fail = mapError(ctx, srcErr)
	case inErr != nil:
		res.fail = mapError(ctx, inErr)
	}
	if res.fail != nil && res.fail.status >= 500 {
		h.warn.Warn("ndjson ingest failed", "err", res.fail.detail)
	}
	return res
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// mapError maps an ingest error to its response, once, at the edge.
func mapError(ctx context.Context, err error) *failure {
	var se *SyntaxError
	var tl *TooLargeError
	var re *ReadError
	switch {
	case errors.As(err, &se):
		return &failure{status: http.StatusBadRequest, reason: "invalid_json", title: "Invalid JSON", detail: se.Error(), line: se.Line}
	case errors.As(err, &tl):
		return &failure{status: http.StatusRequestEntityTooLarge, reason: "event_too_large", title: "Event too large", detail: tl.Error(), line: tl.Line}
	case errors.Is(err, ingest.ErrInvalidStream):
		return &failure{status: http.StatusBadRequest, reason: "invalid_stream", title: "Invalid client stream", detail: err.Error()}
	}
	f, ok := ingest.ClassifyBodyError(err)
	if !ok && errors.As(err, &re) {
		return &failure{status: http.StatusBadRequest, reason: "read_error", title: "Reading the request body failed", detail: err.Error()}
	}
	if !ok {
		f = ingest.ClassifyStoreError(ctx, err)
	}
	// The client is gone on 499; the status is for logs and metrics only.
	return &failure{status: f.Status, reason: f.Reason, title: titles[f.Reason], detail: err.Error()}
}

// titles are the problem titles of ingest.Failure's reasons.
var titles = map[string]string{
	"body_too_large":       "Request body too large",
	"body_timeout":         "Request body timed out",
	"invalid_gzip":         "Invalid gzip body",
	"unsupported_encoding": "Unsupported content encoding",
	"no_chronicle":         "No such chronicle",
	"invalid_name":         "Invalid name",
	"event_too_large":      "Event too large",
	"canceled":             "Request canceled",
	"store_unavailable":    "Log unavailable",
	"store_timeout":        "Log unavailable",
}

// problem is an RFC 7807 problem document.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Line   int    `json:"line,omitempty"`
	Stored *int   `json:"stored,omitempty"`
	Source string `json:"source,omitempty"`
}

func writeProblem(w http.ResponseWriter, res result) {
	f := res.fail
	p := problem{Type: "urn:chronostream:problem:" + strings.ReplaceAll(f.reason, "_", "-"), Title: f.title,
		Status: f.status, Detail: f.detail, Line: f.line, Source: res.source}
	if res.source != "" {
		p.Stored = &res.stored
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	setFailureHeaders(w, res)
	w.WriteHeader(f.status)
	_ = json.NewEncoder(w).Encode(p)
}
