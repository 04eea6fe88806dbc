package trendlines

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/store"
)

// Protocol labels this transport's sources and metrics.
const Protocol = "http-trendlines"

// Store is what the handler needs of the log: appends, and reads for the
// export and the listing.
type Store interface {
	ingest.Log
	Read(ctx context.Context, q store.Query, fn func(*event.Event) error, onGap func(store.Gap) error) (uint64, error)
	Stories(ctx context.Context, chronicle string) ([]store.StoryInfo, error)
}

// Config configures the handler. Its ingest.Config's Log and
// DefaultChronicle are unused: Store and Chronicle say where metrics live.
type Config struct {
	ingest.Config
	Store     Store
	Chronicle string // the metrics chronicle
}

// Handler serves Trendlines' API.
type Handler struct {
	cfg   ingest.Config
	store Store
	warn  *ingest.ThrottledLogger
}

// NewHandler returns a handler.
func NewHandler(cfg Config) *Handler {
	c := cfg.Config
	c.Log, c.DefaultChronicle = cfg.Store, cfg.Chronicle
	c = c.WithDefaults()
	return &Handler{cfg: c, store: cfg.Store, warn: ingest.NewThrottledLogger(c.Logger, time.Second)}
}

// Register adds the routes to mux, each wrapped by protect.
func (h *Handler) Register(mux *http.ServeMux, protect func(http.Handler) http.Handler) {
	mux.Handle("POST /api/v1/data", protect(http.HandlerFunc(h.ServePost)))
	// {metric...}: metric names may hold slashes (sent as %2F or not).
	mux.Handle("GET /api/v1/data/{metric...}", protect(http.HandlerFunc(h.ServeData)))
	mux.Handle("GET /api/v1/metric", protect(http.HandlerFunc(h.ServeMetrics)))
	mux.Handle("GET /api/v1/metric/{metric...}", protect(http.HandlerFunc(h.ServeMetric)))
}

// ServePost serves POST /api/v1/data: 201 with Trendlines' text once the
// point is durable.
func (h *Handler) ServePost(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.Limits.MaxEventBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.fail(w, http.StatusRequestEntityTooLarge, "body_too_large", "invalid-request", "Request body too large",
				fmt.Sprintf("the body exceeds the limit of %d bytes", mbe.Limit))
			return
		}
		h.fail(w, http.StatusBadRequest, "read_error", "invalid-request", "Reading the request failed", err.Error())
		return
	}
	p, err := ParsePoint(body)
	if err != nil {
		reason := "invalid_json"
		if errors.Is(err, ErrMissingKey) {
			reason = "missing_key"
		}
		h.fail(w, http.StatusBadRequest, reason, "invalid-request", "Invalid request", err.Error())
		return
	}
	chronicle := h.cfg.DefaultChronicle
	// Appended directly, not through an ingest.Pipeline: check the
	// token's chronicle here, as Pipeline.Story does for the others.
	if err := auth.FromContext(r.Context()).Check(auth.ScopeWrite, chronicle); err != nil {
		h.fail(w, http.StatusForbidden, "forbidden", "forbidden", "Forbidden", err.Error())
		return
	}
	src := store.Source{Protocol: Protocol, Remote: r.RemoteAddr, Headers: ingest.SourceHeaders(r.Header),
		Chronicle: chronicle, Story: p.Metric, Start: time.Now().UTC()}
	// The client's source is recorded before the point that names it; the
	// request is counted in it however it ends.
	gate := h.cfg.Clients.Open(&src)
	stored := 0
	defer func() { _ = gate.Finish(stored, h.warn) }() // a failed record failed the gate
	if err := gate.Gate(); err != nil {
		h.storeFailed(w, r, fmt.Errorf("recording the source: %w", err))
		return
	}
	ev := event.Event{Time: p.Time, Kind: event.KindMetric, Format: event.FormatJSON, Source: src.ID, Body: body,
		Fields: map[string]event.Value{"value": event.Float(p.Value)}}
	if _, err := h.store.Append(chronicle, p.Metric, []event.Event{ev}).Wait(r.Context()); err != nil {
		h.storeFailed(w, r, err)
		return
	}
	auth.FromContext(r.Context()).Spend(1, len(body))
	if m := h.cfg.Metrics; m != nil {
		m.IngestEvents.WithLabelValues(Protocol).Inc()
		m.IngestBytes.WithLabelValues(Protocol).Add(float64(len(body)))
	}
	stored = 1
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, "Added DataPoint to Metric %s\n", p.Metric)
}

// ServeData serves GET /api/v1/data/{metric}: the series in Trendlines'
// export shape, {"rows":[{"id":…,"n":…,"timestamp":…,"value":…}],"units":null},
// streamed so that a long series takes no memory. Keys are in the order
// Flask's jsonify sorts them.
func (h *Handler) ServeData(w http.ResponseWriter, r *http.Request) {
	metric := r.PathValue("metric")
	var (
		bw     *bufio.Writer
		n      int
		events int
		buf    []byte
	)
	_, err := h.store.Read(r.Context(), store.Query{Chronicle: h.cfg.DefaultChronicle, Story: metric}, func(e *event.Event) error {
		events++
		v, ok := numericValue(e)
		if !ok {
			return nil // not a sample (an event written by another protocol)
		}
		if bw == nil {
			w.Header().Set("Content-Type", "application/json")
			bw = bufio.NewWriterSize(w, 32<<10)
			bw.WriteString(`{"rows":[`)
		} else {
			bw.WriteByte(',')
		}
		buf = append(buf[:0], `{"id":`...)
		buf = strconv.AppendUint(buf, e.Seq, 10)
		buf = append(buf, `,"n":`...)
		buf = strconv.AppendInt(buf, int64(n), 10)
		buf = append(buf, `,"timestamp":"`...)
		buf = appendISO(buf, e.Time)
		buf = append(buf, `","value":`...)
		buf = appendPyFloat(buf, v)
		buf = append(buf, '}')
		n++
		_, err := bw.Write(buf)
		return err
	}, nil)
	if bw == nil {
		switch {
		case err != nil && !errors.Is(err, store.ErrNotFound):
			h.storeFailed(w, r, err)
		case events > 0:
			h.fail(w, http.StatusNotFound, "", "no-data", "No data for metric", fmt.Sprintf("No data exists for metric '%s'.", metric))
		default:
			h.fail(w, http.StatusNotFound, "", "metric-not-found", "Metric not found", fmt.Sprintf("The metric '%s' does not exist.", metric))
		}
		return
	}
	if err != nil {
		// The status is sent: cut the body short, so the client sees
		// invalid JSON rather than a series that looks complete.
		h.warn.Warn("trendlines: export failed midway", "metric", metric, "err", err)
		panic(http.ErrAbortHandler)
	}
	bw.WriteString(`],"units":null}` + "\n")
	_ = bw.Flush()
	if m := h.cfg.Metrics; m != nil {
		m.ReadEvents.WithLabelValues("trendlines").Add(float64(n))
	}
}

// metricInfo is a metric as Trendlines' API shows it. chronostream keeps
// no units or limits; metric_id is the metric's position in the listing.
type metricInfo struct {
	LowerLimit *float64 `json:"lower_limit"`
	MetricID   int      `json:"metric_id"`
	Name       string   `json:"name"`
	Units      *string  `json:"units"`
	UpperLimit *float64 `json:"upper_limit"`
}

func (h *Handler) metrics(ctx context.Context) ([]metricInfo, error) {
	stories, err := h.store.Stories(ctx, h.cfg.DefaultChronicle)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]metricInfo, len(stories))
	for i, s := range stories {
		out[i] = metricInfo{MetricID: i + 1, Name: s.Name}
	}
	return out, nil
}

// ServeMetrics serves GET /api/v1/metric, Trendlines' listing:
// {"count":…,"next":null,"prev":null,"results":[…]}, sorted by name; 404
// when there are none, as Trendlines answers.
func (h *Handler) ServeMetrics(w http.ResponseWriter, r *http.Request) {
	ms, err := h.metrics(r.Context())
	if err != nil {
		h.storeFailed(w, r, err)
		return
	}
	if len(ms) == 0 {
		h.fail(w, http.StatusNotFound, "", "no-data", "No data", "No data exists: no metric has been written.")
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Count   int          `json:"count"`
		Next    *string      `json:"next"`
		Prev    *string      `json:"prev"`
		Results []metricInfo `json:"results"`
	}{Count: len(ms), Results: ms})
}

// ServeMetric serves GET /api/v1/metric/{metric}.
func (h *Handler) ServeMetric(w http.ResponseWriter, r *http.Request) {
	metric := r.PathValue("metric")
	ms, err := h.metrics(r.Context())
	if err != nil {
		h.storeFailed(w, r, err)
		return
	}
	for _, m := range ms {
		if m.Name == metric {
			writeJSON(w, http.StatusOK, m)
			return
		}
	}
	h.fail(w, http.StatusNotFound, "", "metric-not-found", "Metric not found", fmt.Sprintf("The metric '%s' does not exist", metric))
}

// numericValue returns the event's "value" field as a float.
func numericValue(e *event.Event) (float64, bool) {
	v, ok := e.Fields["value"]
	if !ok {
		return 0, false
	}
	switch v.Type() {
	case event.TypeFloat:
		return v.FloatValue(), true
	case event.TypeInt:
		return float64(v.IntValue()), true
	case event.TypeUint:
		return float64(v.UintValue()), true
	}
	return 0, false
}

// appendISO writes t as Python's isoformat of a naive UTC datetime, as
// Trendlines' export does: no zone, microseconds only when not zero.
func appendISO(b []byte, ns int64) []byte {
	t := time.Unix(0, ns).UTC()
	b = t.AppendFormat(b, "2006-01-02T15:04:05")
	if us := t.Nanosecond() / 1000; us != 0 {
		b = fmt.Appendf(b, ".%06d", us)
	}
	return b
}

// appendPyFloat writes v as Python's json does (15.0, 52.88, 1e+16),
// except that infinities, which Python writes as invalid JSON, are the
// strings "+Inf" and "-Inf", as in chronostream's own API.
func appendPyFloat(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(b, `"+Inf"`...)
	case math.IsInf(v, -1):
		return append(b, `"-Inf"`...)
	case math.IsNaN(v):
		return append(b, `"NaN"`...)
	}
	if a := math.Abs(v); a == 0 || a >= 1e-4 && a < 1e16 {
		start := len(b)
		b = strconv.AppendFloat(b, v, 'f', -1, 64)
		for _, c := range b[start:] {
			if c == '.' {
				return b
			}
		}
		return append(b, ".0"...)
	}
	return strconv.AppendFloat(b, v, 'e', -1, 64)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers with an RFC 7807 problem, in Trendlines' shape (its types
// are short names: metric-not-found, no-data, invalid-request). reason,
// when set, counts the failure as an ingest error.
func (h *Handler) fail(w http.ResponseWriter, status int, reason, typ, title, detail string) {
	if m := h.cfg.Metrics; m != nil && reason != "" {
		m.IngestErrors.WithLabelValues(Protocol, reason).Inc()
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}{typ, title, status, detail})
}

// storeFailed maps a log failure to its response, once, here at the edge,
// with the status every ingest route uses (ingest.ClassifyStoreError): a
// timeout of the log is a retryable 503, not the client's cancellation.
func (h *Handler) storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	f := ingest.ClassifyStoreError(r.Context(), err)
	switch f.Reason {
	case "no_chronicle":
		h.fail(w, f.Status, f.Reason, "no-chronicle", "No such chronicle",
			fmt.Sprintf("%v: create the metrics chronicle %q, or turn auto-create on", err, h.cfg.DefaultChronicle))
	case "event_too_large":
		h.fail(w, f.Status, f.Reason, "invalid-request", "Data point too large", err.Error())
	case "invalid_name":
		h.fail(w, f.Status, f.Reason, "invalid-request", "Invalid metric name", err.Error())
	case "canceled":
		h.fail(w, f.Status, f.Reason, "canceled", "Request canceled", err.Error())
	default:
		h.warn.Warn("trendlines: the log failed", "err", err)
		w.Header().Set("Retry-After", "5")
		h.fail(w, f.Status, f.Reason, "store-unavailable", "Log unavailable", err.Error())
	}
}
