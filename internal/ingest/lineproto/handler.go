package lineproto

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/chronostream/chronostream/event"
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

// Config configures the line protocol handler.
type Config struct {
	ingest.Config
	// Batch sizes the pipelined appends; zero fields take ingest.DefaultBatch.
	Batch ingest.BatchOptions
	// Version is reported in X-Influxdb-Version (and by /ping?verbose=true).
	Version string
}

// Handler serves InfluxDB's write and ping endpoints.
type Handler struct {
	cfg      ingest.Config
	version  string
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
	return &Handler{cfg: c, version: v, appender: ingest.NewAppender(c.Log, cfg.Batch), warn: ingest.NewThrottledLogger(c.Logger, time.Second)}
}

// ServePing serves InfluxDB 1.x's GET|HEAD /ping: 204 with the version
// headers clients read, or 200 with the version as JSON when verbose.
func (h *Handler) ServePing(w http.ResponseWriter, r *http.Request) {
	h.headers(w)
	if v := r.URL.Query().Get("verbose"); v == "true" || v == "1" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(map[string]string{"version": h.version})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) headers(w http.ResponseWriter) {
	w.Header().Set("X-Influxdb-Version", h.version)
	w.Header().Set("X-Influxdb-Build", "OSS")
}

// ServeWriteV1 serves InfluxDB 1.x's POST /write?db=&rp=&precision=. The
// database is the chronicle; rp is accepted and ignored (a chronicle has
// one retention); u and p are checked by the server's token wrapper.
func (h *Handler) ServeWriteV1(w http.ResponseWriter, r *http.Request) {
	h.headers(w)
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
	h.headers(w)
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
	counter := &limitReader{n: h.cfg.Limits.MaxBodyBytes}
	gzipped := false
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		// A declared length over the limit is refused before anything is
		// stored; a chunked body is only known to be over it once read.
		if r.ContentLength > h.cfg.Limits.MaxBodyBytes {
			return result{fail: &failure{status: http.StatusRequestEntityTooLarge, reason: "body_too_large",
				msg: fmt.Sprintf("request body of %d bytes exceeds the limit of %d bytes", r.ContentLength, h.cfg.Limits.MaxBodyBytes)}}
		}
		counter.r = r.Body
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return result{fail: &failure{status: http.StatusBadRequest, reason: "invalid_gzip", msg: "invalid gzip body: " + err.Error()}}
		}
		defer zr.Close()
		counter.r, gzipped = zr, true
	default:
		return result{fail: &failure{status: http.StatusUnsupportedMediaType, reason: "unsupported_encoding",
			msg: fmt.Sprintf("content encoding %q is not supported (use gzip or none)", enc)}}
	}

	src := store.Source{
		ID:        store.NewSourceID(),
		Protocol:  proto,
		Remote:    r.RemoteAddr,
		Headers:   ingest.SourceHeaders(r.Header),
		Chronicle: chronicle,
		Start:     start.UTC(),
	}
	// Recording the source overlaps reading and parsing the first batch;
	// the pipeline awaits it before its first append.
	srcDone := make(chan error, 1)
	go func() { srcDone <- h.cfg.Log.PutSource(ctx, src) }()
	srcErr := sync.OnceValue(func() error {
		if err := <-srcDone; err != nil {
			return fmt.Errorf("recording the source: %w", err)
		}
		return nil
	})

	maxLine := min(ingest.EventLimit(h.cfg.Log, h.cfg.Limits.MaxEventBytes, src.ID), DefaultMaxLine)
	sc := NewScanner(counter, maxLine)
	pipe := h.appender.Begin(ctx, srcErr)
	now := start.UnixNano()

	var res result
	refs := make(map[string]ingest.StoryRef)
	var lastMeas []byte
	lastRef := ingest.StoryRef(-1)
	var inErr error
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
			var ok bool
			if ref, ok = refs[string(meas)]; !ok {
				if ref, err = pipe.Story(chronicle, string(meas)); err != nil {
					res.refuse(NewLineError(n, line, err))
					lastRef = -1
					continue
				}
				refs[string(meas)] = ref
			}
			lastRef, lastMeas = ref, append(lastMeas[:0], meas...)
		}
		ev := event.Event{Time: t, Kind: event.KindMetric, Format: event.FormatLine, Source: src.ID}
		if pipe.Add(ref, &ev, line) != nil {
			break
		}
	}
	storeErr := pipe.Close()
	if m := h.cfg.Metrics; m != nil {
		m.IngestBytes.WithLabelValues(proto).Add(float64(counter.read))
	}
	if srcErr() == nil {
		res.stored = pipe.Stored()
		src.End = time.Now().UTC()
		src.Count = uint64(res.stored)
		// The count is bookkeeping: the events are durable either way.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if err := h.cfg.Log.PutSource(uctx, src); err != nil {
			h.warn.Warn("recording the count of a source failed", "err", err)
		}
		cancel()
	}
	switch {
	case storeErr != nil:
		res.fail = mapError(storeErr)
	case srcErr() != nil:
		res.fail = mapError(srcErr())
	case inErr != nil && errors.Is(inErr, errBodyTooLarge):
		res.fail = mapError(inErr)
	case inErr != nil && gzipped:
		res.fail = &failure{status: http.StatusBadRequest, reason: "invalid_gzip", msg: "invalid gzip body: " + inErr.Error()}
	case inErr != nil:
		res.fail = &failure{status: http.StatusBadRequest, reason: "read_error", msg: "reading the request body: " + inErr.Error()}
	}
	return res
}

func (r *result) refuse(le *LineError) {
	r.dropped++
	if r.bad == nil {
		r.bad = le
	}
}

var errBodyTooLarge = errors.New("request body too large")

// limitReader bounds the (decompressed) body and counts what was read.
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

// mapError maps a request's failure to its status, once, at the edge.
func mapError(err error) *failure {
	var ce flate.CorruptInputError
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, errBodyTooLarge), errors.As(err, &mbe):
		return &failure{status: http.StatusRequestEntityTooLarge, reason: "body_too_large", msg: err.Error()}
	case errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum), errors.As(err, &ce):
		return &failure{status: http.StatusBadRequest, reason: "invalid_gzip", msg: "invalid gzip body: " + err.Error()}
	case errors.Is(err, store.ErrNoChronicle):
		return &failure{status: http.StatusNotFound, reason: "no_chronicle", msg: err.Error()}
	case errors.Is(err, store.ErrInvalidName):
		return &failure{status: http.StatusBadRequest, reason: "invalid_name", msg: err.Error()}
	case errors.Is(err, store.ErrTooLarge):
		return &failure{status: http.StatusRequestEntityTooLarge, reason: "event_too_large", msg: err.Error()}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &failure{status: 499, reason: "canceled", msg: err.Error()}
	}
	return &failure{status: http.StatusServiceUnavailable, reason: "store_unavailable", msg: err.Error()}
}
