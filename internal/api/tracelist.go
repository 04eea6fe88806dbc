package api

import (
	"bytes"
	"cmp"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/chronostream/chronostream/event"
)

const (
	defaultTraceListLimit = 50
	maxTraceListLimit     = 1000
	// defaultTraceScan bounds the spans a trace list reads, newest first.
	defaultTraceScan = 20000
	maxTraceScan     = 200000 // a summary per distinct trace: some 30 MB at most
	// The strings a summary keeps are bounded so that the 30 MB hold: a
	// span's fields are the producer's (up to an event's size each).
	// Trace ids are 32 hex digits (W3C, OTLP); longer ones are left out.
	maxTraceIDBytes  = 128
	maxRootNameBytes = 256
)

// clip returns s cut to at most n bytes (at a UTF-8 boundary), copied so
// that it does not keep the event's body alive.
func clip(s string, n int) string {
	if len(s) <= n {
		return strings.Clone(s)
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return strings.Clone(s) + "…"
}

// traceSummary is one line of the trace list.
type traceSummary struct {
	TraceID    string  `json:"trace_id"`
	Root       string  `json:"root"`    // the root span's name ("" when no root was read)
	Service    string  `json:"service"` // the root span's story (OTLP: its service)
	StartMS    float64 `json:"start_ms"`
	DurationMS float64 `json:"duration_ms"`
	Spans      int     `json:"spans"`
	Errors     int     `json:"errors"`
	rootSeen   bool
	endMS      float64
}

// spanOf says whether e (expanded) is a span and returns its trace id in
// lowercase: an event of kind trace (OTLP ingest writes trace_id), or any
// event with the traceId and spanId fields other producers write. OTLP log
// records carry trace_id and span_id too, but are not spans.
func spanOf(e *event.Event) (string, bool) {
	var id string
	if e.Kind == event.KindTrace {
		id = textOf(e, "trace_id", "traceId", "traceID")
	} else if textOf(e, "spanId", "spanID") != "" {
		id = textOf(e, "traceId", "traceID")
	}
	return strings.ToLower(id), id != ""
}

func spanID(e *event.Event) string { return textOf(e, "span_id", "spanId", "spanID") }

func parentSpanID(e *event.Event) string {
	return textOf(e, "parent_span_id", "parentSpanId", "parentSpanID")
}

// listTraces serves GET /api/v1/chronicles/{chronicle}/traces: the newest
// traces among the chronicle's newest spans (at most scan of them), newest
// first. A span is an event of kind trace (OTLP) or any event with a
// traceId (trace_id) field; its start is its event time, its end its
// end_time_unix_nano, or start plus duration_ns or duration_ms. A trace's
// counts cover the spans within the scan.
func (a *API) listTraces(w http.ResponseWriter, r *http.Request) {
	chronicle, _, err := names(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	p, err := newParams(r, "from", "to", "limit", "scan", "story")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	mq, err := mergedQuery(p, chronicle)
	var limit int
	if err == nil {
		limit, err = intParam(p, "limit", defaultTraceListLimit, maxTraceListLimit)
	}
	if err == nil {
		mq.Limit, err = intParam(p, "scan", defaultTraceScan, maxTraceScan)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	mq.Desc = true
	var x expander
	mq.Match = func(e *event.Event) bool {
		// A byte search first: most events of a chronicle are not spans
		// (both spellings of the id field contain "pan").
		if e.Kind != event.KindTrace && len(e.Body) > 0 && !bytes.Contains(e.Body, []byte("pan")) {
			return false
		}
		x.expand(e)
		_, ok := spanOf(e)
		return ok
	}
	traces := map[string]*traceSummary{}
	spans := 0
	_, err = a.cfg.Store.ReadMerged(r.Context(), mq, func(e *event.Event) error {
		spans++
		id, _ := spanOf(e)
		if len(id) > maxTraceIDBytes {
			return nil
		}
		t, ok := traces[id]
		start := float64(e.Time) / 1e6
		end := numberOr(e, "end_time_unix_nano", 0) / 1e6
		if end == 0 {
			end = start + numberOr(e, "duration_ns", 0)/1e6 + numberOr(e, "duration_ms", 0) + numberOr(e, "durationMs", 0)
		}
		if !ok {
			t = &traceSummary{TraceID: strings.Clone(id), StartMS: start, endMS: end}
			traces[id] = t
		}
		t.Spans++
		t.StartMS, t.endMS = min(t.StartMS, start), max(t.endMS, end)
		if s := textOf(e, "status_code", "status"); s == "error" || s == "ERROR" {
			t.Errors++
		}
		if parentSpanID(e) == "" && !t.rootSeen {
			t.rootSeen, t.Root, t.Service = true, clip(textOf(e, "name", "span_name", "spanName", "msg"), maxRootNameBytes), e.Story
		}
		return nil
	})
	a.cfg.Metrics.ReadEvents.WithLabelValues("traces").Add(float64(spans))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := make([]*traceSummary, 0, len(traces))
	for _, t := range traces {
		t.DurationMS = t.endMS - t.StartMS
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *traceSummary) int {
		return cmp.Or(cmp.Compare(b.StartMS, a.StartMS), strings.Compare(a.TraceID, b.TraceID))
	})
	if len(out) > limit {
		out = out[:limit]
	}
	writeJSON(w, http.StatusOK, map[string]any{"traces": out})
}
