package query

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/influxdata/influxql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chronostream/chronostream/internal/query/influxjson"
	"github.com/chronostream/chronostream/internal/query/tsdb"
)

// MaxQueryBytes bounds a request's query text (and a POST form body).
const MaxQueryBytes = 1 << 20

// Handler serves InfluxDB 1.x's GET and POST /query.
type Handler struct {
	engine  *Engine
	log     *slog.Logger
	queries *prometheus.CounterVec
	seconds prometheus.Histogram
}

// NewHandler returns the /query handler; its metrics go to reg (nil: none).
func NewHandler(e *Engine, log *slog.Logger, reg prometheus.Registerer) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		engine: e,
		log:    log,
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chronostream_query_requests_total",
			Help: "InfluxQL /query requests, by outcome (ok, statement_error, bad_request, unavailable, failed)."}, []string{"outcome"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "chronostream_query_duration_seconds",
			Help: "Time to evaluate a /query request, writing the answer excluded.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9)}),
	}
	if reg != nil {
		reg.MustRegister(h.queries, h.seconds)
	}
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	outcome := "bad_request"
	defer func() { h.queries.WithLabelValues(outcome).Inc() }()
	r.Body = http.MaxBytesReader(w, r.Body, MaxQueryBytes)
	if err := r.ParseForm(); err != nil {
		status := http.StatusBadRequest
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		influxjson.WriteRequestError(w, r, status, fmt.Errorf("invalid request: %w", err))
		return
	}
	q := r.FormValue("q")
	if q == "" {
		influxjson.WriteRequestError(w, r, http.StatusBadRequest, errors.New(`missing required parameter "q"`))
		return
	}
	if len(q) > MaxQueryBytes {
		influxjson.WriteRequestError(w, r, http.StatusRequestEntityTooLarge, fmt.Errorf("query is longer than %d bytes", MaxQueryBytes))
		return
	}
	// An epoch InfluxDB does not know gives nanoseconds there, as here
	// (influxjson.FormatTime); clients rely on getting an answer.
	epoch := r.FormValue("epoch")
	pretty := r.FormValue("pretty") == "true"
	start := time.Now()
	results, stmts, err := h.engine.execute(r.Context(), q, r.FormValue("db"))
	h.seconds.Observe(time.Since(start).Seconds())
	if err != nil {
		if errors.Is(err, ErrParse) {
			influxjson.WriteRequestError(w, r, http.StatusBadRequest, err)
			return
		}
		outcome = "failed"
		h.log.Warn("query failed", "err", err)
		influxjson.WriteRequestError(w, r, http.StatusInternalServerError, err)
		return
	}
	outcome = "ok"
	for _, res := range results {
		// The index still loading a large chronicle is worth a retry, not
		// an answer: InfluxDB's clients retry a 503.
		if errors.Is(res.Err, tsdb.ErrCatchUp) {
			outcome = "unavailable"
			w.Header().Set("Retry-After", "1")
			influxjson.WriteRequestError(w, r, http.StatusServiceUnavailable, res.Err)
			return
		}
		if res.Err != nil {
			outcome = "statement_error"
		}
	}
	if r.FormValue("chunked") == "true" {
		size, _ := strconv.Atoi(strings.TrimSpace(r.FormValue("chunk_size")))
		cw := influxjson.NewChunkedWriter(w, r, epoch, size)
		cw.Pretty = pretty
		for _, res := range results {
			write := cw.WriteResult
			if res.StatementID < len(stmts) && unsplit(stmts[res.StatementID]) {
				write = cw.WriteUnsplit
			}
			if err := write(res); err != nil {
				return // the client went away
			}
		}
		_ = cw.Close()
		return
	}
	influxjson.WriteResponse(w, r, foldResults(results), epoch, pretty)
}

// unsplit says whether influxd answers a statement whole even when
// chunked: the meta statements, except SHOW SERIES and SHOW FIELD KEYS.
func unsplit(st influxql.Statement) bool {
	switch st.(type) {
	case *influxql.ShowDatabasesStatement, *influxql.ShowMeasurementsStatement, *influxql.ShowTagKeysStatement,
		*influxql.ShowTagValuesStatement, *influxql.ShowRetentionPoliciesStatement:
		return true
	}
	return false
}

// foldResults merges consecutive results of one statement as InfluxDB's
// non-chunked answer does: a later error replaces the result.
func foldResults(results []influxjson.Result) []influxjson.Result {
	out := results[:0:0]
	for _, r := range results {
		if n := len(out); n > 0 && out[n-1].StatementID == r.StatementID {
			if r.Err != nil {
				out[n-1] = r
			} else {
				out[n-1].Series = append(out[n-1].Series, r.Series...)
			}
			continue
		}
		out = append(out, r)
	}
	return out
}
