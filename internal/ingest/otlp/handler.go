package otlp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/store"
)

// Protocol labels metrics and sources of this transport.
const Protocol = "otlp-http"

// DefaultChronicle is where OTLP items go unless configured otherwise.
const DefaultChronicle = "otel"

// DefaultBatch sizes OTLP's appends: an SDK's batch is typically 512
// items of a few hundred bytes each, so one request is one append.
var DefaultBatch = ingest.BatchOptions{Events: 4096, Bytes: 512 << 10, InFlight: 8}

// retryAfter is what a 503 asks clients to wait: long enough for a NATS
// reconnect or leader election, short enough not to lose an SDK's queue.
const retryAfter = "5"

// Config configures the OTLP/HTTP handler.
type Config struct {
	ingest.Config
	// Chronicle receives every signal (DefaultChronicle when empty).
	Chronicle string
	// StoryAttribute is the resource attribute naming the story
	// (DefaultStoryAttribute when empty).
	StoryAttribute string
	// Batch sizes the pipelined appends; zero takes DefaultBatch.
	Batch ingest.BatchOptions
}

// Handler serves POST /v1/logs, /v1/metrics and /v1/traces.
type Handler struct {
	cfg       ingest.Config
	chronicle string
	storyAttr string
	appender  *ingest.Appender
	warn      *ingest.ThrottledLogger
	bufs      sync.Pool // *bytes.Buffer: request bodies
	mappers   sync.Pool // *Mapper
}

// NewHandler returns a handler. An invalid chronicle name (validate it
// with event.ValidateChronicle when configuring) fails every request.
func NewHandler(cfg Config) *Handler {
	c := cfg.Config.WithDefaults()
	if cfg.Chronicle == "" {
		cfg.Chronicle = DefaultChronicle
	}
	if cfg.StoryAttribute == "" {
		cfg.StoryAttribute = DefaultStoryAttribute
	}
	if cfg.Batch == (ingest.BatchOptions{}) {
		cfg.Batch = DefaultBatch
	}
	return &Handler{cfg: c, chronicle: cfg.Chronicle, storyAttr: cfg.StoryAttribute,
		appender: ingest.NewAppender(c.Log, cfg.Batch), warn: ingest.NewThrottledLogger(c.Logger, time.Second)}
}

// signal is what differs between the three endpoints.
type signal struct {
	name   string
	newReq func() proto.Message
	mapReq func(m *Mapper, req proto.Message, emit Emit) (Result, error)
	// resp builds the Export*ServiceResponse, with partial success when
	// items were rejected.
	resp func(rejected int64, msg string) proto.Message
}

var (
	logsSignal = signal{
		name:   "logs",
		newReq: func() proto.Message { return new(collogspb.ExportLogsServiceRequest) },
		mapReq: func(m *Mapper, req proto.Message, emit Emit) (Result, error) {
			return m.Logs(req.(*collogspb.ExportLogsServiceRequest), emit)
		},
		resp: func(n int64, msg string) proto.Message {
			r := &collogspb.ExportLogsServiceResponse{}
			if n > 0 || msg != "" {
				r.PartialSuccess = &collogspb.ExportLogsPartialSuccess{RejectedLogRecords: n, ErrorMessage: msg}
			}
			return r
		},
	}
	metricsSignal = signal{
		name:   "metrics",
		newReq: func() proto.Message { return new(colmetricspb.ExportMetricsServiceRequest) },
		mapReq: func(m *Mapper, req proto.Message, emit Emit) (Result, error) {
			return m.Metrics(req.(*colmetricspb.ExportMetricsServiceRequest), emit)
		},
		resp: func(n int64, msg string) proto.Message {
			r := &colmetricspb.ExportMetricsServiceResponse{}
			if n > 0 || msg != "" {
				r.PartialSuccess = &colmetricspb.ExportMetricsPartialSuccess{RejectedDataPoints: n, ErrorMessage: msg}
			}
			return r
		},
	}
	tracesSignal = signal{
		name:   "traces",
		newReq: func() proto.Message { return new(coltracepb.ExportTraceServiceRequest) },
		mapReq: func(m *Mapper, req proto.Message, emit Emit) (Result, error) {
			return m.Traces(req.(*coltracepb.ExportTraceServiceRequest), emit)
		},
		resp: func(n int64, msg string) proto.Message {
			r := &coltracepb.ExportTraceServiceResponse{}
			if n > 0 || msg != "" {
				r.PartialSuccess = &coltracepb.ExportTracePartialSuccess{RejectedSpans: n, ErrorMessage: msg}
			}
			return r
		},
	}
)

// ServeLogs serves POST /v1/logs.
func (h *Handler) ServeLogs(w http.ResponseWriter, r *http.Request) { h.serve(w, r, &logsSignal) }

// ServeMetrics serves POST /v1/metrics.
func (h *Handler) ServeMetrics(w http.ResponseWriter, r *http.Request) {
	h.serve(w, r, &metricsSignal)
}

// ServeTraces serves POST /v1/traces.
func (h *Handler) ServeTraces(w http.ResponseWriter, r *http.Request) { h.serve(w, r, &tracesSignal) }

// Register adds the three endpoints to mux, each wrapped by protect.
func (h *Handler) Register(mux *http.ServeMux, protect func(http.Handler) http.Handler) {
	mux.Handle("POST /v1/logs", protect(http.HandlerFunc(h.ServeLogs)))
	mux.Handle("POST /v1/metrics", protect(http.HandlerFunc(h.ServeMetrics)))
	mux.Handle("POST /v1/traces", protect(http.HandlerFunc(h.ServeTraces)))
}

// grpcCode is a google.rpc.Code, the code of the Status message an error
// response carries (the numbers are gRPC's, fixed by its spec).
type grpcCode int32

const (
	codeCanceled          grpcCode = 1
	codeInvalidArgument   grpcCode = 3
	codeNotFound          grpcCode = 5
	codeResourceExhausted grpcCode = 8
	codeUnavailable       grpcCode = 14
)

// failure is a request refused or failed as a whole.
type failure struct {
	status int
	code   grpcCode // for the Status message of the body
	reason string   // metric label
	msg    string
}

func (f *failure) Error() string { return f.msg }

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, sig *signal) {
	enc, fail := requestEncoding(r)
	var res Result
	stored := 0
	if fail == nil {
		res, stored, fail = h.ingest(r, sig, enc)
	}
	if m := h.cfg.Metrics; m != nil {
		if stored > 0 {
			m.IngestEvents.WithLabelValues(Protocol).Add(float64(stored))
		}
		if res.Rejected > 0 {
			m.IngestErrors.WithLabelValues(Protocol, "rejected_item").Add(float64(res.Rejected))
		}
		if fail != nil {
			m.IngestErrors.WithLabelValues(Protocol, fail.reason).Inc()
		}
	}
	if fail != nil {
		if fail.status >= 500 {
			h.warn.Warn("otlp ingest failed", "signal", sig.name, "err", fail.msg)
		}
		if fail.status == ingest.StatusClientClosed {
			return // the client is gone
		}
		if fail.status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", retryAfter)
		}
		writeMessage(w, enc, fail.status, &statuspb.Status{Code: int32(fail.code), Message: fail.msg})
		return
	}
	writeMessage(w, enc, http.StatusOK, sig.resp(res.Rejected, res.Message))
}

func writeMessage(w http.ResponseWriter, enc Encoding, status int, m proto.Message) {
	var b []byte
	var err error
	if enc == JSON {
		b, err = protojson.Marshal(m)
	} else {
		b, err = proto.Marshal(m)
	}
	if err != nil { // cannot happen for these messages; answer without a body
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", enc.ContentType())
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// requestEncoding reads Content-Type. An unsupported one is answered in
// protobuf, OTLP's default.
func requestEncoding(r *http.Request) (Encoding, *failure) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil {
		switch mt {
		case "application/x-protobuf", "application/protobuf":
			return Protobuf, nil
		case "application/json":
			return JSON, nil
		}
	}
	return Protobuf, &failure{status: http.StatusUnsupportedMediaType, code: codeInvalidArgument, reason: "unsupported_content_type",
		msg: fmt.Sprintf("content type %q is not supported (use application/x-protobuf or application/json)", ct)}
}

// readBody reads the whole (decompressed) body into buf, refusing more
// than limit bytes: a message cannot be decoded before it is complete. The
// body is read by ingest.OpenBody (gzip or none, the limit counted after
// decompression, so a gzip bomb is cut off at it) and its errors classed
// by ingest.ClassifyBodyError.
func readBody(r *http.Request, buf *bytes.Buffer, limit int64) *failure {
	body, err := ingest.OpenBody(r, limit)
	if err == nil {
		if r.ContentLength > 0 && r.ContentLength <= limit {
			buf.Grow(int(r.ContentLength))
		}
		_, err = buf.ReadFrom(body)
	}
	if err == nil {
		return nil
	}
	if f, ok := ingest.ClassifyBodyError(err); ok {
		fl := classified(f, err)
		if errors.Is(err, ingest.ErrBodyTooLarge) {
			fl.msg += " (counted after decompression)"
		}
		return fl
	}
	return &failure{status: http.StatusBadRequest, code: codeInvalidArgument, reason: "read_error", msg: "reading the request body: " + err.Error()}
}

// classified is an ingest.Failure as an OTLP failure, with the gRPC code
// of its Status message.
func classified(f ingest.Failure, err error) *failure {
	code := codeInvalidArgument
	msg := err.Error()
	switch f.Status {
	case http.StatusNotFound:
		code = codeNotFound
	case http.StatusRequestEntityTooLarge:
		code = codeResourceExhausted
	case ingest.StatusClientClosed:
		code = codeCanceled
	case http.StatusServiceUnavailable:
		code, msg = codeUnavailable, "the log is unavailable: "+msg
	}
	return &failure{status: f.Status, code: code, reason: f.Reason, msg: msg}
}

func (h *Handler) ingest(r *http.Request, sig *signal, enc Encoding) (Result, int, *failure) {
	ctx := r.Context()
	start := time.Now()
	buf, _ := h.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	defer func() {
		if buf.Cap() <= 4<<20 { // keep no huge buffers alive
			h.bufs.Put(buf)
		}
	}()
	if f := readBody(r, buf, h.cfg.Limits.MaxBodyBytes); f != nil {
		return Result{}, 0, f
	}
	if m := h.cfg.Metrics; m != nil {
		m.IngestBytes.WithLabelValues(Protocol).Add(float64(buf.Len()))
	}
	req := sig.newReq()
	if err := Decode(enc, buf.Bytes(), req); err != nil {
		return Result{}, 0, &failure{status: http.StatusBadRequest, code: codeInvalidArgument, reason: "invalid_" + enc.String(), msg: err.Error()}
	}

	src := store.Source{
		ID:        store.NewSourceID(),
		Protocol:  Protocol,
		Remote:    r.RemoteAddr,
		Headers:   ingest.SourceHeaders(r.Header),
		Chronicle: h.chronicle,
		Start:     start.UTC(),
	}
	// The client's source is recorded before the first append (an
	// acknowledged event never names an unrecorded source).
	gate := h.cfg.Clients.Open(&src)
	added := 0
	pipe := h.appender.Begin(ctx, gate.Gate)
	m, _ := h.mappers.Get().(*Mapper)
	if m == nil {
		m = &Mapper{}
	}
	defer h.mappers.Put(m)
	m.StoryAttribute, m.MaxBodyBytes = h.storyAttr, ingest.EventLimit(h.cfg.Log, h.cfg.Limits.MaxEventBytes, src.ID)
	res, mapErr := sig.mapReq(m, req, func(story string, e *event.Event, body []byte) error {
		ref, err := pipe.Story(h.chronicle, story)
		if err != nil {
			return err
		}
		e.Source = src.ID
		if err := pipe.Add(ref, e, body); err != nil {
			return err
		}
		added++
		return nil
	})
	gate.BodyRead(added)
	storeErr := pipe.Close()
	stored := pipe.Stored()
	// A request that appended nothing (all rejected, or empty) is still
	// recorded; the events are durable whether or not its count is.
	if err := gate.Finish(stored, h.warn); err != nil && storeErr == nil {
		storeErr = err
	}
	if err := errors.Join(storeErr, mapErr); err != nil {
		return res, stored, mapStoreError(ctx, err)
	}
	return res, stored, nil
}

// mapStoreError maps a failure of the log to its response, once, at the
// edge (ingest.ClassifyStoreError). Only unavailability is worth a retry
// (503 with Retry-After), the log's own timeouts included; OTLP clients
// retry nothing else. 499 (no answer) only when the client went away.
func mapStoreError(ctx context.Context, err error) *failure {
	return classified(ingest.ClassifyStoreError(ctx, err), err)
}
