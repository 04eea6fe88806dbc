package ndjson

import (
	"compress/flate"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fastjson"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/jsonev"
	"github.com/chronostream/chronostream/internal/obs"
	"github.com/chronostream/chronostream/internal/store"
)

// Protocol labels metrics and sources of this transport.
const Protocol = "http-ndjson"

// Batching: a batch goes to the log when it holds this many events or
// bytes, and up to maxInFlight batches of one request are appended before
// the oldest is waited for. Pipelining keeps the log's group commit fed
// while the body is still being read; the window bounds a request's memory.
const (
	batchEvents = 4096
	batchBytes  = 256 << 10
	maxInFlight = 8
)

// Config configures the NDJSON ingest handler.
type Config struct {
	Log                            ingest.Log
	Limits                         ingest.Limits
	Metrics                        *obs.Metrics
	Logger                         *slog.Logger
	DefaultChronicle, DefaultStory string
}

// Handler takes NDJSON (and JSON array) bodies over HTTP POST.
type Handler struct {
	cfg     Config
	batches sync.Pool // *batch
	parsers fastjson.ParserPool
	lastLog atomic.Int64 // unix ns of the last logged store error (throttle)
}

// NewHandler returns a handler.
func NewHandler(cfg Config) *Handler {
	if cfg.Limits.MaxBodyBytes <= 0 {
		cfg.Limits.MaxBodyBytes = ingest.DefaultLimits.MaxBodyBytes
	}
	if cfg.Limits.MaxEventBytes <= 0 {
		cfg.Limits.MaxEventBytes = ingest.DefaultLimits.MaxEventBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DefaultChronicle == "" {
		cfg.DefaultChronicle = "default"
	}
	if cfg.DefaultStory == "" {
		cfg.DefaultStory = "default"
	}
	return &Handler{cfg: cfg}
}

// ServeRoot serves the anacrolix-style "POST /": the chronicle and story
// come from the query (chronicle=, story=) or the X-Chronostream-Chronicle
// and X-Chronostream-Story headers, else the configured defaults. The reply
// is the number of events stored, as a plain-text integer.
func (h *Handler) ServeRoot(w http.ResponseWriter, r *http.Request) {
	chronicle, story := Target(r, h.cfg.DefaultChronicle, h.cfg.DefaultStory)
	res := h.ingest(r, chronicle, story, false)
	if res.fail == nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "%d\n", res.stored)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(res.fail.status)
	fmt.Fprintf(w, "%s\nstored %d\n", res.fail.detail, res.stored)
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

// Target returns the chronicle and story a compatibility request writes
// to: query parameters first, then headers, then the defaults.
func Target(r *http.Request, defChronicle, defStory string) (chronicle, story string) {
	pick := func(param, header, def string) string {
		if v := r.URL.Query().Get(param); v != "" {
			return v
		}
		if v := r.Header.Get(header); v != "" {
			return v
		}
		return def
	}
	return pick("chronicle", "X-Chronostream-Chronicle", defChronicle), pick("story", "X-Chronostream-Story", defStory)
}

// SourceHeaders returns a copy of h fit to be stored with a source:
// credentials are redacted, since sources are readable through the API.
func SourceHeaders(h http.Header) map[string][]string {
	out := make(map[string][]string, len(h))
	for k, vs := range h {
		switch http.CanonicalHeaderKey(k) {
		case "Authorization", "Proxy-Authorization", "Cookie":
			red := make([]string, len(vs))
			for i := range red {
				red[i] = "[REDACTED]"
			}
			out[k] = red
		default:
			out[k] = append([]string(nil), vs...)
		}
	}
	return out
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

// batch is a unit of append: events whose bodies live in arena.
type batch struct {
	evs   []event.Event
	arena []byte
	p     *store.Pending
}

func (h *Handler) getBatch() *batch {
	if b, ok := h.batches.Get().(*batch); ok {
		return b
	}
	return &batch{evs: make([]event.Event, 0, batchEvents), arena: make([]byte, 0, batchBytes)}
}

// putBatch recycles a batch the log is done with.
func (h *Handler) putBatch(b *batch) {
	if cap(b.arena) != batchBytes {
		return // a one-off arena sized for a huge value
	}
	clear(b.evs) // drop references to bodies
	b.evs, b.arena, b.p = b.evs[:0], b.arena[:0], nil
	h.batches.Put(b)
}

// run is the state of one request's appends.
type run struct {
	h                *Handler
	ctx              context.Context
	chronicle, story string
	window           []*batch
	stored           int
	first, last      uint64
	err              error // first store error; nothing is appended after it
}

func (ru *run) append(b *batch) {
	if len(b.evs) == 0 {
		ru.h.putBatch(b)
		return
	}
	b.p = ru.h.cfg.Log.Append(ru.chronicle, ru.story, b.evs)
	ru.window = append(ru.window, b)
	if len(ru.window) > maxInFlight {
		ru.waitOldest()
	}
}

func (ru *run) waitOldest() {
	b := ru.window[0]
	ru.window = ru.window[1:]
	if ru.err != nil {
		// An ack covers a prefix only: what follows a failed batch is not
		// counted even if it was stored. Still wait, so that no request
		// returns while the log holds its memory.
		if _, err := b.p.Wait(ru.ctx); err == nil {
			ru.h.putBatch(b)
		}
		return
	}
	a, err := b.p.Wait(ru.ctx)
	if err != nil {
		ru.err = err
		return
	}
	if ru.stored == 0 {
		ru.first = a.First
	}
	ru.stored += a.N
	ru.last = a.Last
	ru.h.putBatch(b)
}

func (ru *run) waitAll() {
	for len(ru.window) > 0 {
		ru.waitOldest()
	}
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
	if err := event.ValidateChronicle(chronicle); err != nil {
		return result{fail: mapError(fmt.Errorf("%w: %w", store.ErrInvalidName, err))}
	}
	if err := event.ValidateStory(story); err != nil {
		return result{fail: mapError(fmt.Errorf("%w: %w", store.ErrInvalidName, err))}
	}
	counter := &limitReader{n: h.cfg.Limits.MaxBodyBytes}
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		counter.r = r.Body
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return result{fail: mapError(fmt.Errorf("%w: %w", errBadGzip, err))}
		}
		defer zr.Close()
		counter.r = zr
	default:
		return result{fail: &failure{status: http.StatusUnsupportedMediaType, reason: "unsupported_encoding",
			title: "Unsupported content encoding", detail: fmt.Sprintf("content encoding %q is not supported (use gzip or none)", enc)}}
	}

	src := store.Source{
		ID:        store.NewSourceID(),
		Protocol:  Protocol,
		Remote:    r.RemoteAddr,
		Headers:   SourceHeaders(r.Header),
		Chronicle: chronicle,
		Story:     story,
		Start:     start.UTC(),
	}
	// Recording the source overlaps with reading the body; it only has to
	// be done before the reply acknowledges events that name it.
	srcDone := make(chan error, 1)
	go func() { srcDone <- h.cfg.Log.PutSource(ctx, src) }()

	dec := NewDecoder(counter, Options{MaxValueBytes: EventLimit(h.cfg.Log, h.cfg.Limits.MaxEventBytes, src.ID), UnwrapArray: api && isJSON(r.Header.Get("Content-Type"))})
	p := h.parsers.Get()
	defer h.parsers.Put(p)
	ru := &run{h: h, ctx: ctx, chronicle: chronicle, story: story}
	cur := h.getBatch()
	var inErr error
	for ru.err == nil {
		v, err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			inErr = err
			break
		}
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
		if len(cur.evs) == batchEvents || len(cur.arena)+len(v) > cap(cur.arena) {
			ru.append(cur)
			cur = h.getBatch()
			if len(v) > cap(cur.arena) {
				cur.arena = make([]byte, 0, len(v))
			}
		}
		// The decoder reuses its buffer; bodies must outlive it until Wait.
		off := len(cur.arena)
		cur.arena = append(cur.arena, v...)
		cur.evs = append(cur.evs, event.Event{Time: t, Kind: k, Body: cur.arena[off:len(cur.arena):len(cur.arena)], Format: event.FormatJSON, Source: src.ID})
	}
	if ru.err == nil {
		ru.append(cur)
	} else {
		h.putBatch(cur)
	}
	ru.waitAll()
	if m := h.cfg.Metrics; m != nil {
		m.IngestBytes.WithLabelValues(Protocol).Add(float64(counter.read))
	}

	res := result{source: src.ID}
	srcErr := <-srcDone
	if srcErr == nil {
		res.stored, res.first, res.last = ru.stored, ru.first, ru.last
		src.End = time.Now().UTC()
		src.Count = uint64(ru.stored)
		// The count is bookkeeping: the events are durable either way, so
		// finish it even when the client has gone.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if err := h.cfg.Log.PutSource(uctx, src); err != nil {
			h.logStoreError("recording the count of a source failed", err)
		}
		cancel()
	}
	switch {
	case ru.err != nil:
		res.fail = mapError(ru.err)
	case srcErr != nil:
		res.fail = mapError(fmt.Errorf("recording the source: %w", srcErr))
	case inErr != nil:
		res.fail = mapError(inErr)
	}
	if res.fail != nil && res.fail.status >= 500 {
		h.logStoreError("ndjson ingest failed", res.fail.detail)
	}
	return res
}

func (h *Handler) logStoreError(msg string, err any) {
	now := time.Now().UnixNano()
	last := h.lastLog.Load()
	if now-last < int64(time.Second) || !h.lastLog.CompareAndSwap(last, now) {
		return
	}
	h.cfg.Logger.Warn(msg, "err", err)
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

var (
	errBodyTooLarge = errors.New("request body too large")
	errBadGzip      = errors.New("invalid gzip body")
)

// limitReader bounds the (decompressed) body and counts what was read.
type limitReader struct {
	r    io.Reader
	n    int64 // the limit
	read int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.read > l.n {
		return 0, fmt.Errorf("%w: over %d bytes", errBodyTooLarge, l.n)
	}
	// Read one byte past the limit to tell "exactly at" from "over", but
	// never hand that byte on: no value may end beyond the limit.
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

// mapError maps an ingest error to its response, once, at the edge.
func mapError(err error) *failure {
	var se *SyntaxError
	var tl *TooLargeError
	var mbe *http.MaxBytesError
	var ce flate.CorruptInputError
	var re *ReadError
	switch {
	case errors.As(err, &se):
		return &failure{status: http.StatusBadRequest, reason: "invalid_json", title: "Invalid JSON", detail: se.Error(), line: se.Line}
	case errors.As(err, &tl):
		return &failure{status: http.StatusRequestEntityTooLarge, reason: "event_too_large", title: "Event too large", detail: tl.Error(), line: tl.Line}
	case errors.Is(err, errBodyTooLarge), errors.As(err, &mbe):
		return &failure{status: http.StatusRequestEntityTooLarge, reason: "body_too_large", title: "Request body too large", detail: err.Error()}
	case errors.Is(err, errBadGzip), errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum), errors.As(err, &ce):
		return &failure{status: http.StatusBadRequest, reason: "invalid_gzip", title: "Invalid gzip body", detail: err.Error()}
	case errors.Is(err, store.ErrInvalidName):
		return &failure{status: http.StatusBadRequest, reason: "invalid_name", title: "Invalid name", detail: err.Error()}
	case errors.Is(err, store.ErrNoChronicle):
		return &failure{status: http.StatusNotFound, reason: "no_chronicle", title: "No such chronicle", detail: err.Error()}
	case errors.Is(err, store.ErrTooLarge):
		return &failure{status: http.StatusRequestEntityTooLarge, reason: "event_too_large", title: "Event too large", detail: err.Error()}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The client is gone; the status is for logs and metrics only.
		return &failure{status: 499, reason: "canceled", title: "Request canceled", detail: err.Error()}
	case errors.As(err, &re):
		return &failure{status: http.StatusBadRequest, reason: "read_error", title: "Reading the request body failed", detail: err.Error()}
	}
	return &failure{status: http.StatusServiceUnavailable, reason: "store_unavailable", title: "Log unavailable", detail: err.Error()}
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
	w.WriteHeader(f.status)
	_ = json.NewEncoder(w).Encode(p)
}

// EventLimit is the largest event body a transport should accept: limit,
// lowered to what one log block can hold (when log tells) so that an
// oversized event is refused on its own rather than failing the batch it
// would be appended with.
func EventLimit(log ingest.Log, limit int64, srcID string) int {
	if bl, ok := log.(interface{ MaxBlockBytes() int }); ok {
		// Leave room for the event's encoding around its body.
		limit = min(limit, int64(bl.MaxBlockBytes()-64-len(srcID)))
	}
	return int(max(limit, 1))
}
