// Package trendlines serves the HTTP API of Trendlines
// (dougthor42/trendlines), "a simple, lightweight alternative to Graphite":
// POST /api/v1/data adds a data point, GET /api/v1/data/{metric} exports a
// metric's series, GET /api/v1/metric lists the metrics and
// GET /api/v1/metric/{metric} describes one. A metric is a story of the
// metrics chronicle, its value the field "value" — the same as Graphite's,
// so a metric sent over Graphite reads back through Trendlines' API.
//
// ParsePoint is the pure decoder of a POST body; Handler is the transport.
package trendlines

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chronostream/chronostream/event"
)

// Point is one data point as posted to /api/v1/data.
type Point struct {
	Metric string
	Value  float64
	// Time is Unix nanoseconds; zero when the request gave none (the
	// server's time is used).
	Time int64
}

// ErrMissingKey is Trendlines' complaint about a body without "metric" or
// "value"; its text starts as Trendlines' does, so clients matching on it
// keep working.
var ErrMissingKey = errors.New("Missing required key. Required keys are: 'metric', 'value'") //nolint:staticcheck // Trendlines' exact wording

// InvalidError says what is wrong with a body.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

func invalid(format string, args ...any) error {
	return &InvalidError{Msg: fmt.Sprintf(format, args...)}
}

// ParsePoint decodes a POST /api/v1/data body: a JSON object with
// "metric" (a string), "value" (a number, or a string holding one, as
// Trendlines' float column takes it) and optionally "time": Unix seconds,
// integer or fractional, as a number or a numeric string, or an RFC 3339
// time such as the "timestamp" of Trendlines' own export (which is also
// accepted under that name, so exported rows can be posted back). Null or
// missing means now. Other members are ignored, as Trendlines ignores them;
// a member given twice counts the last time, as in Python's json.
func ParsePoint(body []byte) (Point, error) {
	var p Point
	if !utf8.Valid(body) {
		return p, invalid("the body is not valid UTF-8")
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return p, invalid("the body is empty: want a JSON object such as {\"metric\": \"foo.bar\", \"value\": 52.88}")
	}
	if body[0] != '{' {
		return p, invalid("the body is not a JSON object: want {\"metric\": \"foo.bar\", \"value\": 52.88, \"time\": 1700000000}")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return p, invalid("invalid JSON: %v", err)
	}
	rawMetric, okM := m["metric"]
	rawValue, okV := m["value"]
	if !okM || !okV {
		return p, ErrMissingKey
	}
	if err := json.Unmarshal(rawMetric, &p.Metric); err != nil || isNull(rawMetric) {
		return p, invalid("\"metric\" must be a string, not %s", rawMetric)
	}
	if err := event.ValidateStory(p.Metric); err != nil {
		return p, invalid("\"metric\": %v", err)
	}
	v, err := number(rawValue)
	if err != nil {
		return p, invalid("\"value\" must be a number, not %s", rawValue)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return p, invalid("\"value\" must be finite, not %s", rawValue)
	}
	p.Value = v
	rawTime, ok := m["time"]
	if !ok {
		rawTime, ok = m["timestamp"]
	}
	if ok && !isNull(rawTime) {
		if p.Time, err = parseTime(rawTime); err != nil {
			return p, err
		}
	}
	return p, nil
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// number reads a JSON number, or a string holding a decimal number.
func number(raw json.RawMessage) (float64, error) {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		s = strings.TrimSpace(s)
		if strings.ContainsAny(s, "xXiInN_") { // hex, inf, nan, underscores: not plain numbers
			return 0, strconv.ErrSyntax
		}
		return strconv.ParseFloat(s, 64)
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, err
	}
	return n.Float64()
}

// maxSeconds keeps times within what int64 nanoseconds hold.
const maxSeconds = math.MaxInt64 / 1_000_000_000

func parseTime(raw json.RawMessage) (int64, error) {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		_ = json.Unmarshal(raw, &s)
		if t, err := parseISO(s); err == nil {
			return t, nil
		}
	}
	f, err := number(raw)
	if err != nil {
		return 0, invalid("\"time\" must be Unix seconds or an RFC 3339 time, not %s", raw)
	}
	if math.IsNaN(f) || math.Abs(f) >= maxSeconds {
		return 0, invalid("\"time\" %s is out of range: want Unix seconds (milliseconds?)", raw)
	}
	ns := int64(math.Round(f * 1e9))
	if ns == 0 {
		// Zero means "now" in the log; the epoch itself is a sender's unset clock.
		return 0, invalid("\"time\" 0 (the Unix epoch) is refused as an unset clock; omit it for now")
	}
	return ns, nil
}

// parseISO reads RFC 3339 times, and the zone-less form Trendlines'
// export writes (Python's isoformat of a UTC time), as UTC.
func parseISO(s string) (int64, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t, err = time.Parse("2006-01-02T15:04:05.999999999", s)
	}
	if err != nil {
		return 0, err
	}
	if t.Year() < 1678 || t.Year() > 2261 || t.UnixNano() == 0 {
		return 0, errors.New("out of range")
	}
	return t.UnixNano(), nil
}
