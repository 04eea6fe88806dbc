package lineproto

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/store"
)

// Protocols label metrics and sources.
const (
	ProtocolV1 = "influx-v1"
	ProtocolV2 = "influx-v2"
)

// DefaultMaxLine bounds a line when the event limit is larger (as
// VictoriaMetrics' -influx.maxLineSize).
const DefaultMaxLine = 256 << 10

// DefaultBatch sizes line protocol's appends: TSBS lines are about 340
// bytes, and larger batches than NDJSON's keep the log's group commit fed
// with a request's 5,000 lines in a few appends.
var DefaultBatch = ingest.BatchOptions{Events: 8192, Bytes: 768 << 10, InFlight: 8}

// InfluxDB versions reported in X-Influxdb-Version (and by
// /ping?verbose=true): clients check the major version (the influx CLI and
// client libraries of 1.x want "1."), so chronostream's own version, which
// is "dev" in a development build, would fail them. It is sent in
// X-Chronostream-Version instead, and /health reports it.
const (
	VersionV1 = "1.8.10-chronostream"
	VersionV2 = "2.7.10-chronostream"
)

// Config configures the line protocol handler.
type Config struct {
	ingest.Config
	// Batch sizes the pipelined appends: its zero value takes DefaultBatch
	// (line protocol's); zero fields of a value otherwise set take
	// ingest.DefaultBatch's.
	Batch ingest.BatchOptions
	// Version is chronostream's own, reported in X-Chronostream-Version.
	Version string
}

// Handler serves InfluxDB's write and ping endpoints.
type Handler struct {
	cfg      ingest.Config
	version  string
	batch    ingest.BatchOptions
	appender *ingest.Appender
	warn     *ingest.ThrottledLogger
}

// NewHandler returns a handler.
func NewHandler(cfg Config) *Handler {
	v := cfg.Version
	if v == "" {
		v = "chronostream"
	}
	c := cfg.Config.WithDefaults()
	if cfg.Batch == (ingest.BatchOptions{}) {
		cfg.Batch = DefaultBatch
	}
	if cfg.Batch.Bytes <= 0 {
		cfg.Batch.Bytes = ingest.DefaultBatch.Bytes
	}
	return &Handler{cfg: c, version: v, batch: cfg.Batch, appender: ingest.NewAppender(c.Log, cfg.Batch), warn: ingest.NewThrottledLogger(c.Logger, time.Second)}
}

// ServePing serves InfluxDB 1.x's GET|HEAD /ping: 204 with the version
// headers clients read, or 200 with the version as JSON when verbose.
func (h *Handler) ServePing(w http.ResponseWriter, r *http.Request) {
	h.headers(w, VersionV1)
	if v := r.URL.Query().Get("verbose"); v == "true" || v == "1" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(map[string]string{"version": VersionV1})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) headers(w http.ResponseWriter, influx string) {
	w.Header().Set("X-Influxdb-Version", influx)
	w.Header().Set("X-Influxdb-Build", "OSS")
	w.Header().Set("X-Chronostream-Version", h.version)
}

// DenyV1 answers a request without an accepted token as InfluxDB 1.x does
// (for auth.Route's Deny).
func (h *Handler) DenyV1(w http.ResponseWriter, r *http.Request) {
	h.headers(w, VersionV1)
	writeV1Error(w, http.StatusUnauthorized, "authorization failed")
}

// DenyV2 answers a request without an accepted token as InfluxDB 2.x does.
func (h *Handler) DenyV2(w http.ResponseWriter, r *http.Request) {
	h.headers(w, VersionV2)
	writeV2Error(w, http.StatusUnauthorized, "unauthorized", "unauthorized access")
}

// ForbidV1 answers a request whose token lacks the scope or chronicle it
// needs as InfluxDB 1.x answers a user without the privilege.
func (h *Handler) ForbidV1(w http.ResponseWriter, r *http.Request, err error) {
	h.headers(w, VersionV1)
	writeV1Error(w, auth.Status(err), err.Error())
}

// ForbidV2 answers it as InfluxDB 2.x does.
func (h *Handler) ForbidV2(w http.ResponseWriter, r *http.Request, err error) {
	h.headers(w, VersionV2)
	code := "forbidden"
	if auth.Status(err) == http.StatusTooManyRequests {
		code = "too many requests"
	}
	writeV2Error(w, auth.Status(err), code, err.Error())
}

// partial words a failure reading the body (over the limit, or stalled)
// after part of it was stored, as InfluxDB's partial write: 400 "partial
// write: ... dropped=N", which clients do not retry, where a 413 or 408
// makes them split or resend the body and store its stored part twice.
// dropped counts the lines refused and the line cut off (the rest of the
// body is not read, so not counted).
func (r *result) partial() (string, bool) {
	if r.fail == nil || r.stored == 0 {
		return "", false
	}
	var what string
	switch r.fail.status {
	case http.StatusRequestEntityTooLarge:
		if r.fail.reason != "body_too_large" {
			return "", false
		}
		what = r.fail.msg
	case http.StatusRequestTimeout:
		what = r.fail.msg
	default:
		return "", false
	}
	return fmt.Sprintf("partial write: %s dropped=%d", what, r.dropped+1), true
}

// ServeWriteV1 serves InfluxDB 1.x's POST /write?db=&rp=&precision=. The
// database is the chronicle; rp is accepted and ignored (a chronicle has
// one retention); u and p are checked by the server's token wrapper.
func (h *Handler) ServeWriteV1(w http.ResponseWriter, r *http.Request) {
	h.headers(w, VersionV1)
	q := r.URL.Query()
	db := q.Get("db")
	if db == "" {
		writeV1Error(w, http.StatusBadRequest, "database is required")
		return
	}
	prec, err := ParsePrecision(q.Get("precision"), true)
	if err != nil {
		writeV1Error(w, http.StatusBadRequest, err.Error())
		return
	}
	res := h.ingest(r, db, prec, ProtocolV1)
	if msg, ok := res.partial(); ok {
		writeV1Error(w, http.StatusBadRequest, msg)
		return
	}
	switch {
	case res.fail != nil && res.fail.status == http.StatusNotFound:
		writeV1Error(w, http.StatusNotFound, fmt.Sprintf("database not found: %q", db))
	case res.fail != nil && res.fail.status == http.StatusRequestEntityTooLarge:
		writeV1Error(w, http.StatusRequestEntityTooLarge, http.StatusText(http.StatusRequestEntityTooLarge))
	case res.fail != nil:
		writeV1Error(w, res.fail.status, res.fail.msg)
	case res.bad != nil:
		writeV1Error(w, http.StatusBadRequest, res.badMessage())
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// ServeWriteV2 serves InfluxDB 2.x's POST /api/v2/write?org=&bucket=&precision=.
// The bucket is the chronicle; org is accepted and ignored.
func (h *Handler) ServeWriteV2(w http.ResponseWriter, r *http.Request) {
	h.headers(w, VersionV2)
	q := r.URL.Query()
	bucket := q.Get("bucket")
	if bucket == "" {
		writeV2Error(w, http.StatusBadRequest, "invalid", "bucket is required")
		return
	}
	prec, err := ParsePrecision(q.Get("precision"), false)
	if err != nil {
		writeV2Error(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	res := h.ingest(r, bucket, prec, ProtocolV2)
	if msg, ok := res.partial(); ok {
		writeV2Error(w, http.StatusBadRequest, "invalid", msg)
		return
	}
	switch {
	case res.fail != nil && res.fail.status == http.StatusNotFound:
		writeV2Error(w, http.StatusNotFound, "not found", fmt.Sprintf("bucket %q not found", bucket))
	case res.fail != nil && res.fail.status == http.StatusRequestEntityTooLarge:
		writeV2Error(w, http.StatusRequestEntityTooLarge, "request too large", "unable to read data: "+res.fail.msg)
	case res.fail != nil:
		code := "invalid"
		if res.fail.status >= 500 {
			code = "unavailable"
		}
		writeV2Error(w, res.fail.status, code, res.fail.msg)
	case res.bad != nil:
		writeV2Error(w, http.StatusBadRequest, "invalid", res.badMessage())
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func writeV1Error(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Influxdb-Error", msg)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func writeV2Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": code, "message": msg})
}

// result is the outcome of one write.
type result struct {
	stored  int
	dropped int
	bad     *LineError // the first line refused
	fail    *failure   // the request failed as a whole
}

// badMessage words a write with refused lines as InfluxDB 1.x does:
// "partial write: unable to parse '<line>': <reason> dropped=N", with the
// line's number before the reason. With nothing stored there is no
// "partial write" prefix, as in InfluxDB.
func (r *result) badMessage() string {
	msg := fmt.Sprintf("unable to parse '%s': line %d: %v", r.bad.Text, r.bad.Line, r.bad.Err)
	if r.stored == 0 {
		return fmt.Sprintf("%s dropped=%d", msg, r.dropped)
	}
	return fmt.Sprintf("partial write: %s dropped=%d", msg, r.dropped)
}

type failure struct {
	status int
	reason string // metric label
	msg    string
}

func (h *Handler) ingest(r *http.Request, chronicle string, prec Precision, proto string) result {
	res := h.ingestBody(r, chronicle, prec, proto)
	if m := h.cfg.Metrics; m != nil {
		if res.stored > 0 {
			m.IngestEvents.WithLabelValues(proto).Add(float64(res.stored))
		}
		if res.dropped > 0 {
			m.IngestErrors.WithLabelValues(proto, "invalid_line").Add(float64(res.dropped))
		}
		if res.fail != nil {
			m.IngestErrors.WithLabelValues(proto, res.fail.reason).Inc()
		}
	}
	if res.fail != nil && res.fail.status >= 500 {
		h.warn.Warn("line protocol ingest failed", "protocol", proto, "err", res.fail.msg)
	}
	return res
}

func (h *Handler) ingestBody(r *http.Request, chronicle string, prec Precision, proto string) result {
	ctx := r.Context()
	start := time.Now()
	if err := event.ValidateChronicle(chronicle); err != nil {
		return result{fail: &failure{status: http.StatusBadRequest, reason: "invalid_name", msg: err.Error()}}
	}
	body, err := ingest.OpenBody(r, h.cfg.Limits.MaxBodyBytes)
	if err != nil {
		return result{fail: mapError(ctx, err)}
	}

	src := store.Source{
		ID:        store.NewSourceID(),
		Protocol:  proto,
		Remote:    r.RemoteAddr,
		Headers:   ingest.SourceHeaders(r.Header),
		Chronicle: chronicle,
		Start:     start.UTC(),
	}
	gate := h.cfg.Clients.Open(&src)
	maxLine := min(ingest.EventLimit(h.cfg.Log, h.cfg.Limits.MaxEventBytes, src.ID), DefaultMaxLine)
	sc := NewScanner(body, maxLine)
	pipe := h.appender.Begin(ctx, gate.Gate)
	now := start.UnixNano()

	var res result
	// The pipeline looks stories up by name, but converting each line's
	// measurement to a string would allocate: a run of lines of one
	// measurement (the common case) reuses the ref of the first.
	var lastMeas []byte
	lastRef := ingest.StoryRef(-1)
	var inErr error
	added := 0
	for {
		line, n, err := sc.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			var le *LineError
			if errors.As(err, &le) {
				res.refuse(le)
				continue
			}
			inErr = err
			break
		}
		meas, t, err := Parse(line, prec, now)
		if err != nil {
			res.refuse(NewLineError(n, line, err))
			continue
		}
		ref := lastRef
		if ref < 0 || !bytes.Equal(meas, lastMeas) {
			if ref, err = pipe.Story(chronicle, string(meas)); err != nil {
				res.refuse(NewLineError(n, line, err))
				lastRef = -1
				continue
			}
			lastRef, lastMeas = ref, append(lastMeas[:0], meas...)
		}
		ev := event.Event{Time: t, Kind: event.KindMetric, Format: event.FormatLine, Source: src.ID}
		if pipe.Add(ref, &ev, line) != nil {
			break
		}
		added++
	}
	gate.BodyRead(added)
	storeErr := pipe.Close()
	if m := h.cfg.Metrics; m != nil {
		m.IngestBytes.WithLabelValues(proto).Add(float64(body.N()))
	}
	srcErr := gate.Finish(pipe.Stored(), h.warn)
	if srcErr == nil {
		res.stored = pipe.Stored()
	}
	switch {
	case storeErr != nil:
		res.fail = mapError(ctx, storeErr)
	case srcErr != nil:
		res.fail = mapError(ctx, srcErr)
	case inErr != nil:
		res.fail = mapReadError(inErr)
	}
	return res
}

func (r *result) refuse(le *LineError) {
	r.dropped++
	if r.bad == nil {
		r.bad = le
	}
}

// mapError maps a request's failure to its status, once, at the edge.
func mapError(ctx context.Context, err error) *failure {
	f, ok := ingest.ClassifyBodyError(err)
	if !ok {
		f = ingest.ClassifyStoreError(ctx, err)
	}
	return &failure{status: f.Status, reason: f.Reason, msg: err.Error()}
}

// mapReadError maps an error reading the body.
func mapReadError(err error) *failure {
	if f, ok := ingest.ClassifyBodyError(err); ok {
		return &failure{status: f.Status, reason: f.Reason, msg: err.Error()}
	}
	return &failure{status: http.StatusBadRequest, reason: "read_error", msg: "reading the request body: " + err.Error()}
}
