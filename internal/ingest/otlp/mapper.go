package otlp

import (
	"fmt"
	"math"
	"strconv"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/jsonev"
)

// DefaultStoryAttribute is the resource attribute naming an item's story.
const DefaultStoryAttribute = "service.name"

// UnknownService is the story of items whose resource has no story
// attribute, as OpenTelemetry names a service that does not say its name.
const UnknownService = "unknown_service"

// Emit receives one mapped item: its story, its event (Time, Kind and
// Format set) and its JSON body. Both may be reused once Emit returns. An
// error ends the mapping and is returned by it.
type Emit func(story string, e *event.Event, body []byte) error

// Mapper maps decoded requests to events. Its zero value uses the default
// story attribute and no body limit. It is not safe for concurrent use (it
// reuses its buffers).
type Mapper struct {
	// StoryAttribute is the resource attribute naming the story
	// (DefaultStoryAttribute when empty).
	StoryAttribute string
	// MaxBodyBytes rejects items whose body would be larger (0: no limit).
	MaxBodyBytes int

	buf []byte // the item being written
	res []byte // members shared by the items of one resource and scope
	ev  event.Event
}

// Result counts what a request's mapping rejected, with the first reason.
type Result struct {
	Accepted int
	Rejected int64
	Message  string
}

func (r *Result) reject(n int, format string, args ...any) {
	if n <= 0 {
		return
	}
	r.Rejected += int64(n)
	if r.Message == "" {
		r.Message = fmt.Sprintf(format, args...)
	}
}

// resource returns the story of a resource and writes the members every
// item of it (and of scope) carries: "scope", "resource" and "tags".
func (m *Mapper) resource(r *resourcepb.Resource, scope *commonpb.InstrumentationScope, schemaURL string) (story string, err error) {
	attr := m.StoryAttribute
	if attr == "" {
		attr = DefaultStoryAttribute
	}
	story = UnknownService
	for _, kv := range r.GetAttributes() {
		if kv.GetKey() == attr {
			if s, ok := scalarText(kv.GetValue()); ok && s != "" {
				story = s
			}
		}
	}
	b := m.res[:0]
	if scope != nil {
		b = appendKey(b, "scope")
		b = append(b, '{')
		if scope.GetName() != "" {
			b = appendKey(b, "name")
			b = jsonev.AppendString(b, scope.GetName())
		}
		if scope.GetVersion() != "" {
			b = appendKey(b, "version")
			b = jsonev.AppendString(b, scope.GetVersion())
		}
		if len(scope.GetAttributes()) > 0 {
			b = appendKey(b, "attributes")
			b = appendAttrs(b, scope.GetAttributes(), 0)
		}
		b = append(b, '}')
	}
	if schemaURL != "" {
		b = appendKey(b, "schema_url")
		b = jsonev.AppendString(b, schemaURL)
	}
	b = appendKey(b, "resource")
	b = appendAttrs(b, r.GetAttributes(), 0)
	// Scalar resource attributes are also tags, so that reads filter on
	// them (tag.service.name=checkout, tag.host.name=web-1).
	b = appendKey(b, "tags")
	b = append(b, '{')
	first := true
	for _, kv := range r.GetAttributes() {
		if s, ok := scalarText(kv.GetValue()); ok {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = jsonev.AppendString(b, kv.GetKey())
			b = append(b, ':')
			b = jsonev.AppendString(b, s)
		}
	}
	b = append(b, '}')
	m.res = b
	if err := event.ValidateStory(story); err != nil {
		return story, fmt.Errorf("resource attribute %s: %w", attr, err)
	}
	return story, nil
}

// finish closes the item's body with the shared members and emits it.
func (m *Mapper) finish(res *Result, emit Emit, story string, kind event.Kind, t uint64, what string) error {
	if m.buf[len(m.buf)-1] != '{' {
		m.buf = append(m.buf, ',')
	}
	m.buf = append(m.buf, m.res...)
	m.buf = append(m.buf, '}')
	if m.MaxBodyBytes > 0 && len(m.buf) > m.MaxBodyBytes {
		res.reject(1, "%s: its event of %d bytes exceeds the limit of %d bytes", what, len(m.buf), m.MaxBodyBytes)
		return nil
	}
	m.ev = event.Event{Time: unixNano(t), Kind: kind, Format: event.FormatJSON}
	if err := emit(story, &m.ev, m.buf); err != nil {
		return err
	}
	res.Accepted++
	return nil
}

// unixNano converts an OTLP time; 0 (unset) and times an int64 cannot
// hold take the ingest time.
func unixNano(t uint64) int64 {
	if t > math.MaxInt64 {
		return 0
	}
	return int64(t)
}

func appendTime(b []byte, key string, t uint64) []byte {
	if t == 0 {
		return b
	}
	b = appendKey(b, key)
	return strconv.AppendUint(b, t, 10)
}

func appendUint(b []byte, key string, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = appendKey(b, key)
	return strconv.AppendUint(b, v, 10)
}

func appendStr(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	b = appendKey(b, key)
	return jsonev.AppendString(b, v)
}

func appendID(b []byte, key string, id []byte) []byte {
	if len(id) == 0 {
		return b
	}
	b = appendKey(b, key)
	return appendHex(b, id)
}

func appendAttrMember(b []byte, key string, kvs []*commonpb.KeyValue) []byte {
	if len(kvs) == 0 {
		return b
	}
	b = appendKey(b, key)
	return appendAttrs(b, kvs, 0)
}

// checkID tells whether an id has its size (or, when optional, is absent).
func checkID(id []byte, size int, optional bool) bool {
	if len(id) == 0 {
		return optional
	}
	if len(id) != size {
		return false
	}
	for _, c := range id {
		if c != 0 {
			return true
		}
	}
	return false // all zeros is OTLP's invalid id
}

// Logs maps each log record to a log event.
func (m *Mapper) Logs(req *collogspb.ExportLogsServiceRequest, emit Emit) (Result, error) {
	var res Result
	for _, rl := range req.GetResourceLogs() {
		for _, sl := range rl.GetScopeLogs() {
			story, err := m.resource(rl.GetResource(), sl.GetScope(), sl.GetSchemaUrl())
			if err != nil {
				res.reject(len(sl.GetLogRecords()), "%v", err)
				continue
			}
			for _, lr := range sl.GetLogRecords() {
				if !checkID(lr.GetTraceId(), 16, true) || !checkID(lr.GetSpanId(), 8, true) {
					res.reject(1, "log record: trace_id must be 16 bytes and span_id 8 bytes, not all zero, when present")
					continue
				}
				b := append(m.buf[:0], '{')
				b = appendTime(b, "time_unix_nano", lr.GetTimeUnixNano())
				b = appendTime(b, "observed_time_unix_nano", lr.GetObservedTimeUnixNano())
				if n := lr.GetSeverityNumber(); n != 0 {
					b = appendKey(b, "severity_number")
					b = strconv.AppendInt(b, int64(n), 10)
				}
				b = appendStr(b, "severity_text", lr.GetSeverityText())
				if lr.GetBody() != nil {
					b = appendKey(b, "body")
					b = appendAny(b, lr.GetBody(), 0)
				}
				b = appendStr(b, "event_name", lr.GetEventName())
				b = appendID(b, "trace_id", lr.GetTraceId())
				b = appendID(b, "span_id", lr.GetSpanId())
				b = appendUint(b, "flags", uint64(lr.GetFlags()))
				b = appendAttrMember(b, "attributes", lr.GetAttributes())
				b = appendUint(b, "dropped_attributes_count", uint64(lr.GetDroppedAttributesCount()))
				m.buf = b
				t := lr.GetTimeUnixNano()
				if t == 0 {
					t = lr.GetObservedTimeUnixNano()
				}
				if err := m.finish(&res, emit, story, event.KindLog, t, "log record"); err != nil {
					return res, err
				}
			}
		}
	}
	return res, nil
}

var spanKinds = map[tracepb.Span_SpanKind]string{
	tracepb.Span_SPAN_KIND_UNSPECIFIED: "unspecified",
	tracepb.Span_SPAN_KIND_INTERNAL:    "internal",
	tracepb.Span_SPAN_KIND_SERVER:      "server",
	tracepb.Span_SPAN_KIND_CLIENT:      "client",
	tracepb.Span_SPAN_KIND_PRODUCER:    "producer",
	tracepb.Span_SPAN_KIND_CONSUMER:    "consumer",
}

var statusCodes = map[tracepb.Status_StatusCode]string{
	tracepb.Status_STATUS_CODE_UNSET: "unset",
	tracepb.Status_STATUS_CODE_OK:    "ok",
	tracepb.Status_STATUS_CODE_ERROR: "error",
}

func enumName[E ~int32](names map[E]string, v E) string {
	if s, ok := names[v]; ok {
		return s
	}
	return strconv.Itoa(int(v))
}

// Traces maps each span to a trace event, timed at its start.
func (m *Mapper) Traces(req *coltracepb.ExportTraceServiceRequest, emit Emit) (Result, error) {
	var res Result
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			story, err := m.resource(rs.GetResource(), ss.GetScope(), ss.GetSchemaUrl())
			if err != nil {
				res.reject(len(ss.GetSpans()), "%v", err)
				continue
			}
			for _, sp := range ss.GetSpans() {
				if !checkID(sp.GetTraceId(), 16, false) || !checkID(sp.GetSpanId(), 8, false) || !checkID(sp.GetParentSpanId(), 8, true) {
					res.reject(1, "span %q: trace_id must be 16 bytes, span_id and parent_span_id (when present) 8 bytes, none all zero", sp.GetName())
					continue
				}
				b := append(m.buf[:0], '{')
				b = appendID(b, "trace_id", sp.GetTraceId())
				b = appendID(b, "span_id", sp.GetSpanId())
				b = appendID(b, "parent_span_id", sp.GetParentSpanId())
				b = appendStr(b, "trace_state", sp.GetTraceState())
				b = appendKey(b, "name")
				b = jsonev.AppendString(b, sp.GetName())
				b = appendKey(b, "span_kind")
				b = jsonev.AppendString(b, enumName(spanKinds, sp.GetKind()))
				start, end := sp.GetStartTimeUnixNano(), sp.GetEndTimeUnixNano()
				b = appendTime(b, "start_time_unix_nano", start)
				b = appendTime(b, "end_time_unix_nano", end)
				if end >= start && start > 0 {
					b = appendKey(b, "duration_ns")
					b = strconv.AppendUint(b, end-start, 10)
				}
				b = appendKey(b, "status_code")
				b = jsonev.AppendString(b, enumName(statusCodes, sp.GetStatus().GetCode()))
				b = appendStr(b, "status_message", sp.GetStatus().GetMessage())
				b = appendUint(b, "flags", uint64(sp.GetFlags()))
				b = appendAttrMember(b, "attributes", sp.GetAttributes())
				b = appendUint(b, "dropped_attributes_count", uint64(sp.GetDroppedAttributesCount()))
				if evs := sp.GetEvents(); len(evs) > 0 {
					b = appendKey(b, "events")
					b = appendArray(b, evs, appendSpanEvent)
				}
				b = appendUint(b, "dropped_events_count", uint64(sp.GetDroppedEventsCount()))
				if links := sp.GetLinks(); len(links) > 0 {
					b = appendKey(b, "links")
					b = appendArray(b, links, appendSpanLink)
				}
				b = appendUint(b, "dropped_links_count", uint64(sp.GetDroppedLinksCount()))
				m.buf = b
				if err := m.finish(&res, emit, story, event.KindTrace, start, "span "+strconv.Quote(sp.GetName())); err != nil {
					return res, err
				}
			}
		}
	}
	return res, nil
}

func appendSpanEvent(b []byte, se *tracepb.Span_Event) []byte {
	b = append(b, '{')
	b = appendTime(b, "time_unix_nano", se.GetTimeUnixNano())
	b = appendKey(b, "name")
	b = jsonev.AppendString(b, se.GetName())
	b = appendAttrMember(b, "attributes", se.GetAttributes())
	b = appendUint(b, "dropped_attributes_count", uint64(se.GetDroppedAttributesCount()))
	return append(b, '}')
}

func appendSpanLink(b []byte, l *tracepb.Span_Link) []byte {
	b = append(b, '{')
	b = appendID(b, "trace_id", l.GetTraceId())
	b = appendID(b, "span_id", l.GetSpanId())
	b = appendStr(b, "trace_state", l.GetTraceState())
	b = appendUint(b, "flags", uint64(l.GetFlags()))
	b = appendAttrMember(b, "attributes", l.GetAttributes())
	b = appendUint(b, "dropped_attributes_count", uint64(l.GetDroppedAttributesCount()))
	return append(b, '}')
}

var temporalities = map[metricspb.AggregationTemporality]string{
	metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_UNSPECIFIED: "unspecified",
	metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA:       "delta",
	metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE:  "cumulative",
}

// Metrics maps each data point to a metric event, timed at the point's time.
func (m *Mapper) Metrics(req *colmetricspb.ExportMetricsServiceRequest, emit Emit) (Result, error) {
	var res Result
	for _, rm := range req.GetResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			story, err := m.resource(rm.GetResource(), sm.GetScope(), sm.GetSchemaUrl())
			if err != nil {
				for _, mt := range sm.GetMetrics() {
					res.reject(countPoints(mt), "%v", err)
				}
				continue
			}
			for _, mt := range sm.GetMetrics() {
				if err := m.metric(&res, emit, story, mt); err != nil {
					return res, err
				}
			}
		}
	}
	return res, nil
}

func countPoints(mt *metricspb.Metric) int {
	switch d := mt.GetData().(type) {
	case *metricspb.Metric_Gauge:
		return len(d.Gauge.GetDataPoints())
	case *metricspb.Metric_Sum:
		return len(d.Sum.GetDataPoints())
	case *metricspb.Metric_Histogram:
		return len(d.Histogram.GetDataPoints())
	case *metricspb.Metric_ExponentialHistogram:
		return len(d.ExponentialHistogram.GetDataPoints())
	case *metricspb.Metric_Summary:
		return len(d.Summary.GetDataPoints())
	}
	return 0
}

// head starts a point's body with what its metric says of every point.
func (m *Mapper) head(mt *metricspb.Metric, typ string) []byte {
	b := append(m.buf[:0], '{')
	b = appendKey(b, "name")
	b = jsonev.AppendString(b, mt.GetName())
	b = appendStr(b, "description", mt.GetDescription())
	b = appendStr(b, "unit", mt.GetUnit())
	b = appendKey(b, "metric_type")
	b = jsonev.AppendString(b, typ)
	return appendAttrMember(b, "metadata", mt.GetMetadata())
}

func appendTemporality(b []byte, t metricspb.AggregationTemporality) []byte {
	b = appendKey(b, "aggregation_temporality")
	return jsonev.AppendString(b, enumName(temporalities, t))
}

func appendPointCommon(b []byte, attrs []*commonpb.KeyValue, start, t uint64, flags uint32) []byte {
	b = appendTime(b, "start_time_unix_nano", start)
	b = appendTime(b, "time_unix_nano", t)
	b = appendUint(b, "flags", uint64(flags))
	return appendAttrMember(b, "attributes", attrs)
}

func appendOptFloat(b []byte, key string, has bool, f float64) []byte {
	if !has {
		return b
	}
	b = appendKey(b, key)
	return appendFloat(b, f)
}

func appendUints(b []byte, key string, vs []uint64) []byte {
	b = appendKey(b, key)
	return appendArray(b, vs, func(b []byte, v uint64) []byte { return strconv.AppendUint(b, v, 10) })
}

func appendExemplars(b []byte, exs []*metricspb.Exemplar) []byte {
	if len(exs) == 0 {
		return b
	}
	b = appendKey(b, "exemplars")
	return appendArray(b, exs, appendExemplar)
}

func appendExemplar(b []byte, ex *metricspb.Exemplar) []byte {
	b = append(b, '{')
	b = appendTime(b, "time_unix_nano", ex.GetTimeUnixNano())
	switch v := ex.GetValue().(type) {
	case *metricspb.Exemplar_AsDouble:
		b = appendKey(b, "value")
		b = appendFloat(b, v.AsDouble)
	case *metricspb.Exemplar_AsInt:
		b = appendKey(b, "value")
		b = strconv.AppendInt(b, v.AsInt, 10)
	}
	b = appendID(b, "trace_id", ex.GetTraceId())
	b = appendID(b, "span_id", ex.GetSpanId())
	b = appendAttrMember(b, "filtered_attributes", ex.GetFilteredAttributes())
	return append(b, '}')
}

func appendQuantile(b []byte, q *metricspb.SummaryDataPoint_ValueAtQuantile) []byte {
	b = append(b, '{')
	b = appendKey(b, "quantile")
	b = appendFloat(b, q.GetQuantile())
	b = appendKey(b, "value")
	b = appendFloat(b, q.GetValue())
	return append(b, '}')
}

func (m *Mapper) metric(res *Result, emit Emit, story string, mt *metricspb.Metric) error {
	what := "metric " + strconv.Quote(mt.GetName())
	switch d := mt.GetData().(type) {
	case *metricspb.Metric_Gauge, *metricspb.Metric_Sum:
		var pts []*metricspb.NumberDataPoint
		typ := "gauge"
		if g, ok := d.(*metricspb.Metric_Gauge); ok {
			pts = g.Gauge.GetDataPoints()
		} else {
			pts, typ = d.(*metricspb.Metric_Sum).Sum.GetDataPoints(), "sum"
		}
		for _, p := range pts {
			b := m.head(mt, typ)
			if s, ok := d.(*metricspb.Metric_Sum); ok {
				b = appendTemporality(b, s.Sum.GetAggregationTemporality())
				b = appendKey(b, "is_monotonic")
				b = strconv.AppendBool(b, s.Sum.GetIsMonotonic())
			}
			switch v := p.GetValue().(type) {
			case *metricspb.NumberDataPoint_AsDouble:
				b = appendKey(b, "value")
				b = appendFloat(b, v.AsDouble)
			case *metricspb.NumberDataPoint_AsInt:
				b = appendKey(b, "value")
				b = strconv.AppendInt(b, v.AsInt, 10)
			default:
				// A point flagged "no recorded value" (a staleness
				// marker) is kept without one; any other is invalid.
				if p.GetFlags()&uint32(metricspb.DataPointFlags_DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK) == 0 {
					m.buf = b
					res.reject(1, "%s: a number data point without a value", what)
					continue
				}
			}
			b = appendPointCommon(b, p.GetAttributes(), p.GetStartTimeUnixNano(), p.GetTimeUnixNano(), p.GetFlags())
			b = appendExemplars(b, p.GetExemplars())
			m.buf = b
			if err := m.finish(res, emit, story, event.KindMetric, p.GetTimeUnixNano(), what); err != nil {
				return err
			}
		}
	case *metricspb.Metric_Histogram:
		for _, p := range d.Histogram.GetDataPoints() {
			if n := len(p.GetBucketCounts()); n > 0 && n != len(p.GetExplicitBounds())+1 {
				res.reject(1, "%s: %d bucket counts for %d explicit bounds (want one more count than bounds)", what, n, len(p.GetExplicitBounds()))
				continue
			}
			b := m.head(mt, "histogram")
			b = appendTemporality(b, d.Histogram.GetAggregationTemporality())
			b = appendKey(b, "count")
			b = strconv.AppendUint(b, p.GetCount(), 10)
			b = appendOptFloat(b, "sum", p.Sum != nil, p.GetSum())
			b = appendOptFloat(b, "min", p.Min != nil, p.GetMin())
			b = appendOptFloat(b, "max", p.Max != nil, p.GetMax())
			b = appendUints(b, "bucket_counts", p.GetBucketCounts())
			b = appendKey(b, "explicit_bounds")
			b = appendArray(b, p.GetExplicitBounds(), appendFloat)
			b = appendPointCommon(b, p.GetAttributes(), p.GetStartTimeUnixNano(), p.GetTimeUnixNano(), p.GetFlags())
			b = appendExemplars(b, p.GetExemplars())
			m.buf = b
			if err := m.finish(res, emit, story, event.KindMetric, p.GetTimeUnixNano(), what); err != nil {
				return err
			}
		}
	case *metricspb.Metric_ExponentialHistogram:
		for _, p := range d.ExponentialHistogram.GetDataPoints() {
			b := m.head(mt, "exponential_histogram")
			b = appendTemporality(b, d.ExponentialHistogram.GetAggregationTemporality())
			b = appendKey(b, "count")
			b = strconv.AppendUint(b, p.GetCount(), 10)
			b = appendOptFloat(b, "sum", p.Sum != nil, p.GetSum())
			b = appendOptFloat(b, "min", p.Min != nil, p.GetMin())
			b = appendOptFloat(b, "max", p.Max != nil, p.GetMax())
			b = appendKey(b, "scale")
			b = strconv.AppendInt(b, int64(p.GetScale()), 10)
			b = appendKey(b, "zero_count")
			b = strconv.AppendUint(b, p.GetZeroCount(), 10)
			b = appendKey(b, "zero_threshold")
			b = appendFloat(b, p.GetZeroThreshold())
			for _, side := range []struct {
				key string
				bk  *metricspb.ExponentialHistogramDataPoint_Buckets
			}{{"positive", p.GetPositive()}, {"negative", p.GetNegative()}} {
				b = appendKey(b, side.key)
				b = append(b, '{')
				b = appendKey(b, "offset")
				b = strconv.AppendInt(b, int64(side.bk.GetOffset()), 10)
				b = appendUints(b, "bucket_counts", side.bk.GetBucketCounts())
				b = append(b, '}')
			}
			b = appendPointCommon(b, p.GetAttributes(), p.GetStartTimeUnixNano(), p.GetTimeUnixNano(), p.GetFlags())
			b = appendExemplars(b, p.GetExemplars())
			m.buf = b
			if err := m.finish(res, emit, story, event.KindMetric, p.GetTimeUnixNano(), what); err != nil {
				return err
			}
		}
	case *metricspb.Metric_Summary:
		for _, p := range d.Summary.GetDataPoints() {
			b := m.head(mt, "summary")
			b = appendKey(b, "count")
			b = strconv.AppendUint(b, p.GetCount(), 10)
			b = appendKey(b, "sum")
			b = appendFloat(b, p.GetSum())
			b = appendKey(b, "quantile_values")
			b = appendArray(b, p.GetQuantileValues(), appendQuantile)
			b = appendPointCommon(b, p.GetAttributes(), p.GetStartTimeUnixNano(), p.GetTimeUnixNano(), p.GetFlags())
			m.buf = b
			if err := m.finish(res, emit, story, event.KindMetric, p.GetTimeUnixNano(), what); err != nil {
				return err
			}
		}
	default:
		// A metric without data has no points to store or reject.
	}
	return nil
}
