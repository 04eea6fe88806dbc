package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chronostream/chronostream/event"
)

func TestTraceList(t *testing.T) {
	e := newEnv(t, Config{})
	s := int64(time.Second)
	span := func(story string, ts int64, body string) event.Event {
		return event.Event{Time: ts, Kind: event.KindTrace, Story: story, Body: []byte(body), Format: event.FormatJSON}
	}
	const tA, tB = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	e.append("otel", "frontend", span("frontend", t0, fmt.Sprintf(
		`{"trace_id":"%s","span_id":"0000000000000001","name":"GET /checkout","end_time_unix_nano":%d}`, tA, t0+2*s)))
	e.append("otel", "backend",
		span("backend", t0+s/2, fmt.Sprintf(`{"trace_id":"%s","span_id":"0000000000000002","parent_span_id":"0000000000000001","name":"db","duration_ns":%d,"status_code":"error"}`, tA, s)),
		// A plain event with camelCase ids is a span too.
		event.Event{Time: t0 + 10*s, Body: []byte(fmt.Sprintf(`{"traceId":"%s","spanId":"01","name":"job","duration_ms":250}`, tB)), Format: event.FormatJSON},
		event.Event{Time: t0 + 11*s, Body: []byte(`{"msg":"no trace here"}`), Format: event.FormatJSON})
	var out struct {
		Traces []traceSummary `json:"traces"`
	}
	e.getJSON("/api/v1/chronicles/otel/traces", 200, &out)
	if len(out.Traces) != 2 {
		t.Fatalf("%d traces, want 2: %+v", len(out.Traces), out.Traces)
	}
	b, a := out.Traces[0], out.Traces[1]
	if b.TraceID != tB || b.Root != "job" || b.DurationMS != 250 || b.Spans != 1 || b.Service != "backend" {
		t.Errorf("newest trace: %+v", b)
	}
	if a.TraceID != tA || a.Root != "GET /checkout" || a.Service != "frontend" || a.Spans != 2 || a.Errors != 1 ||
		a.DurationMS != 2000 || a.StartMS != float64(t0)/1e6 {
		t.Errorf("OTLP trace: %+v", a)
	}
	e.getJSON("/api/v1/chronicles/otel/traces?limit=1", 200, &out)
	if len(out.Traces) != 1 || out.Traces[0].TraceID != tB {
		t.Fatalf("limit=1: %+v", out.Traces)
	}
	for _, q := range []string{"limit=0", "scan=0", "scan=x", "from=x"} {
		resp := e.do("GET", "/api/v1/chronicles/otel/traces?"+q, nil)
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("%s: %d, want 400", q, resp.StatusCode)
		}
	}
}

// Events with camelCase ids from any producer are spans: the waterfall
// shows them as a tree. OTLP log records carrying trace_id and span_id are
// not spans, in the list or the waterfall.
func TestTraceOfCamelCaseEventsAndNotOfLogs(t *testing.T) {
	e := newEnv(t, Config{})
	const id = "0123456789ABCDEF0123456789ABCDEF" // upper case, as some producers write it
	ev := func(ts int64, kind event.Kind, body string) event.Event {
		return event.Event{Time: t0 + ts, Kind: kind, Body: []byte(body), Format: event.FormatJSON}
	}
	e.append("app", "jobs",
		ev(0, event.KindEvent, `{"traceId":"`+id+`","spanId":"a1","name":"nightly job","duration_ms":900}`),
		ev(1, event.KindLog, `{"traceId":"`+id+`","spanId":"b2","parentSpanId":"a1","name":"fetch","duration_ms":300}`),
		ev(2, event.KindLog, `{"msg":"fetched","trace_id":"`+id+`","span_id":"b2"}`), // an OTLP-style log record
		ev(3, event.KindEvent, `{"traceId":"`+id+`","spanId":"c3","parentSpanId":"b2","name":"parse"}`))
	var tr struct {
		Spans []struct {
			Depth  int               `json:"depth"`
			SpanID string            `json:"span_id"`
			Fields map[string]any    `json:"fields"`
			Tags   map[string]string `json:"tags"`
		} `json:"spans"`
	}
	e.getJSON("/api/v1/chronicles/app/traces/"+id, 200, &tr)
	var got []string
	for _, s := range tr.Spans {
		got = append(got, fmt.Sprint(s.Depth, s.SpanID, s.Fields["name"]))
	}
	if fmt.Sprint(got) != "[0a1nightly job 1b2fetch 2c3parse]" {
		t.Fatalf("tree %q", got)
	}
	var list struct {
		Traces []traceSummary `json:"traces"`
	}
	e.getJSON("/api/v1/chronicles/app/traces", 200, &list)
	if len(list.Traces) != 1 || list.Traces[0].Spans != 3 || list.Traces[0].Root != "nightly job" || list.Traces[0].DurationMS != 900 {
		t.Fatalf("list %+v", list.Traces)
	}
}

// TestTraceListBoundsStrings: a summary keeps at most maxRootNameBytes of
// a root's name, and a "trace id" longer than any real one (a producer's
// field, up to an event's size) makes no summary.
func TestTraceListBoundsStrings(t *testing.T) {
	e := newEnv(t, Config{})
	long := strings.Repeat("é", 4000)
	ev := func(ts int64, body string) event.Event {
		return event.Event{Time: t0 + ts, Kind: event.KindEvent, Body: []byte(body), Format: event.FormatJSON}
	}
	e.append("app", "jobs",
		ev(0, `{"traceId":"0123456789abcdef0123456789abcdef","spanId":"a1","name":"`+long+`"}`),
		ev(1, `{"traceId":"`+strings.Repeat("f", 10000)+`","spanId":"b1","name":"x"}`))
	var list struct {
		Traces []traceSummary `json:"traces"`
	}
	e.getJSON("/api/v1/chronicles/app/traces", 200, &list)
	if len(list.Traces) != 1 {
		t.Fatalf("%d traces, want 1 (the 10,000-byte id left out)", len(list.Traces))
	}
	root := list.Traces[0].Root
	if len(root) > maxRootNameBytes+len("…") || !utf8.ValidString(root) || !strings.HasPrefix(long, strings.TrimSuffix(root, "…")) {
		t.Errorf("root of %d bytes: %.40q", len(root), root)
	}
}

// TestTraceBoundsBytes: a trace's read stops once its spans' bodies reach
// maxTraceBytes, and says it was cut, whatever the span count.
func TestTraceBoundsBytes(t *testing.T) {
	defer func(n int) { maxTraceBytes = n }(maxTraceBytes)
	maxTraceBytes = 2000
	e := newEnv(t, Config{})
	const id = "cccccccccccccccccccccccccccccccc"
	var evs []event.Event
	for i := range 20 {
		evs = append(evs, event.Event{Time: t0 + int64(i), Kind: event.KindTrace, Format: event.FormatJSON,
			Body: []byte(fmt.Sprintf(`{"trace_id":"%s","span_id":"%016x","name":"%s"}`, id, i+1, strings.Repeat("n", 200)))})
	}
	e.append("otel", "svc", evs...)
	var tr struct {
		Truncated bool              `json:"truncated"`
		Spans     []json.RawMessage `json:"spans"`
	}
	e.getJSON("/api/v1/chronicles/otel/traces/"+id, 200, &tr)
	if !tr.Truncated || len(tr.Spans) == 0 || len(tr.Spans) >= 20 {
		t.Fatalf("truncated %v with %d of 20 spans of ~260 bytes at a 2,000-byte budget", tr.Truncated, len(tr.Spans))
	}
}
