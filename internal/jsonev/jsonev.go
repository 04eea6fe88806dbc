// Package jsonev maps a JSON payload to an event's time, kind, tags and
// fields. Ingest calls Meta (time and kind decide where and when the event
// is stored); readers call Expand to derive tags and fields from the body
// kept verbatim, so the log stores each value once.
//
// The mapping, for a top-level JSON object:
//   - time: the first of "time", "timestamp", "ts", "@timestamp" that parses:
//     an RFC 3339 string, or a Unix number whose magnitude tells its unit
//     (seconds, milliseconds, microseconds or nanoseconds; fractions kept);
//   - kind: "kind" (or else "type") when it names a kind; otherwise "log" if
//     the object has "msg", "message" or "level"; otherwise "event";
//   - tags: the string members of a "tags" object;
//   - fields: every other top-level member holding a number, string or
//     boolean (integers without fraction or exponent are integer fields).
//
// Any other JSON value that is a number, string or boolean becomes the field
// "value". Objects nested below the top level and arrays stay in the body.
package jsonev

import (
	"math"
	"strconv"
	"time"

	"github.com/valyala/fastjson"

	"github.com/chronostream/chronostream/event"
)

var timeKeys = []string{"time", "timestamp", "ts", "@timestamp"}

// Meta parses body, which must be one JSON value, and returns the event time
// it carries (0 if none) and its kind.
func Meta(p *fastjson.Parser, body []byte) (t int64, kind event.Kind, err error) {
	v, err := p.ParseBytes(body)
	if err != nil {
		return 0, 0, err
	}
	t, kind = meta(v)
	return t, kind, nil
}

// MetaOf returns the time and kind of an already parsed value.
func MetaOf(v *fastjson.Value) (int64, event.Kind) { return meta(v) }

func meta(v *fastjson.Value) (int64, event.Kind) {
	obj, err := v.Object()
	if err != nil {
		return 0, event.KindEvent
	}
	var t int64
	for _, k := range timeKeys {
		if tv := obj.Get(k); tv != nil {
			if ts, ok := parseTime(tv); ok {
				t = ts
				break
			}
		}
	}
	return t, kindOf(obj)
}

func kindOf(obj *fastjson.Object) event.Kind {
	for _, k := range []string{"kind", "type"} {
		if kv := obj.Get(k); kv != nil && kv.Type() == fastjson.TypeString {
			if kind, err := event.ParseKind(string(kv.GetStringBytes())); err == nil {
				return kind
			}
		}
	}
	for _, k := range []string{"msg", "message", "level"} {
		if obj.Get(k) != nil {
			return event.KindLog
		}
	}
	return event.KindEvent
}

func parseTime(v *fastjson.Value) (int64, bool) {
	switch v.Type() {
	case fastjson.TypeString:
		ts, err := time.Parse(time.RFC3339Nano, string(v.GetStringBytes()))
		if err != nil {
			return 0, false
		}
		return ts.UnixNano(), true
	case fastjson.TypeNumber:
		if i, err := strconv.ParseInt(v.String(), 10, 64); err == nil {
			return UnixInt(i)
		}
		f, err := v.Float64()
		if err != nil {
			return 0, false
		}
		return UnixNumber(f)
	}
	return 0, false
}

// Unix timestamps are told apart by magnitude: below 1e11 they are seconds
// (until year 5138), below 1e14 milliseconds, below 1e17 microseconds, else
// nanoseconds. Times that nanoseconds in an int64 cannot hold (after 2262)
// or that are not positive are not times.
const maxSeconds = math.MaxInt64 / 1_000_000_000

// UnixNumber converts a Unix timestamp of any unit to nanoseconds.
func UnixNumber(f float64) (int64, bool) {
	if !(f > 0) || math.IsInf(f, 0) {
		return 0, false
	}
	var ns float64
	switch {
	case f < 1e11:
		ns = f * 1e9
	case f < 1e14:
		ns = f * 1e6
	case f < 1e17:
		ns = f * 1e3
	default:
		ns = f
	}
	if ns >= math.MaxInt64 {
		return 0, false
	}
	return int64(ns), true
}

// UnixInt is UnixNumber for integers, exact at every magnitude.
func UnixInt(i int64) (int64, bool) {
	switch {
	case i <= 0:
		return 0, false
	case i < 1e11:
		if i > maxSeconds {
			return 0, false
		}
		return i * 1e9, true
	case i < 1e14:
		return i * 1e6, true
	case i < 1e17:
		return i * 1e3, true
	}
	return i, true
}

// Expand fills e.Tags and e.Fields from its JSON body (if its Format is JSON),
// keeping tags and fields the event already has. The reserved members
// (time, kind, tags) do not become fields.
func Expand(p *fastjson.Parser, e *event.Event) {
	if e.Format != event.FormatJSON {
		return
	}
	v, err := p.ParseBytes(e.Body)
	if err != nil {
		return
	}
	obj, err := v.Object()
	if err != nil {
		if fv, ok := scalar(v); ok {
			setField(e, "value", fv)
		}
		return
	}
	var timeKey string
	for _, k := range timeKeys {
		if tv := obj.Get(k); tv != nil {
			if _, ok := parseTime(tv); ok {
				timeKey = k
				break
			}
		}
	}
	obj.Visit(func(key []byte, mv *fastjson.Value) {
		k := string(key)
		switch {
		case k == timeKey || k == "kind":
			return
		case k == "tags":
			if to, err := mv.Object(); err == nil {
				to.Visit(func(tk []byte, tv *fastjson.Value) {
					if tv.Type() == fastjson.TypeString {
						if e.Tags == nil {
							e.Tags = make(map[string]string)
						}
						if _, ok := e.Tags[string(tk)]; !ok {
							e.Tags[string(tk)] = string(tv.GetStringBytes())
						}
					}
				})
				return
			}
		}
		if fv, ok := scalar(mv); ok {
			setField(e, k, fv)
		}
	})
}

func setField(e *event.Event, k string, v event.Value) {
	if e.Fields == nil {
		e.Fields = make(map[string]event.Value)
	}
	if _, ok := e.Fields[k]; !ok {
		e.Fields[k] = v
	}
}

func scalar(v *fastjson.Value) (event.Value, bool) {
	switch v.Type() {
	case fastjson.TypeString:
		return event.String(string(v.GetStringBytes())), true
	case fastjson.TypeTrue:
		return event.Bool(true), true
	case fastjson.TypeFalse:
		return event.Bool(false), true
	case fastjson.TypeNumber:
		raw := v.String()
		if i, err := strconv.ParseInt(raw, 10, 64); err == nil {
			return event.Int(i), true
		}
		if f, err := v.Float64(); err == nil {
			return event.Float(f), true
		}
	}
	return event.Value{}, false
}
