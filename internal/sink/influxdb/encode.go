package influxdb

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/chronostream/chronostream/event"
)

// The Transform from an event to a point:
//   - measurement: the story;
//   - tags: "chronicle" and "story" (they win over event tags of those
//     names), then the event's tags; tags with an empty key or value are
//     left out (line protocol has no empty tag values);
//   - fields: the event's typed fields: float, integer (i), unsigned (u on
//     InfluxDB 2.x; i on 1.x, which has no unsigned type, or a refusal above
//     the int64 range), string, boolean;
//   - an event without fields gets the string field "message" holding its
//     body (UTF-8), or "body_base64" (any other bytes); an event with no
//     body either gets the integer field count=1i. Never a made-up 0.0;
//   - timestamp: the event time in nanoseconds.
const (
	TagChronicle = "chronicle"
	TagStory     = "story"
)

// errUnrepresentable marks an event line protocol cannot carry.
var errUnrepresentable = errors.New("not representable in line protocol")

// encoder appends points.
type encoder struct {
	v1     bool   // InfluxDB 1.x: no unsigned fields
	seqTag string // tag numbering events that share a series and a timestamp
}

// series appends the measurement and tag set (the series key) of e.
func (x *encoder) series(dst []byte, chronicle string, e *event.Event) ([]byte, error) {
	if e.Story == "" {
		return dst, fmt.Errorf("%w: empty story (measurement)", errUnrepresentable)
	}
	if err := checkName("story", e.Story); err != nil {
		return dst, err
	}
	if e.Story[0] == '#' {
		// InfluxDB takes such a line for a comment: it answers 204 and
		// stores nothing, and no escape of the # exists.
		return dst, fmt.Errorf("%w: story %q starts with #, which makes the line a comment", errUnrepresentable, e.Story)
	}
	dst = appendEscaped(dst, e.Story, measurementEscapes)
	keys := make([]string, 0, len(e.Tags)+2)
	for k, v := range e.Tags {
		if k == "" || v == "" || k == TagChronicle || k == TagStory || k == x.seqTag {
			continue
		}
		keys = append(keys, k)
	}
	keys = append(keys, TagChronicle, TagStory)
	slices.Sort(keys) // InfluxDB's canonical order; also makes the key comparable
	for _, k := range keys {
		v := e.Tags[k]
		switch k {
		case TagChronicle:
			v = chronicle
		case TagStory:
			v = e.Story
		}
		if err := checkName("tag", k); err != nil {
			return dst, err
		}
		if err := checkName("tag value", v); err != nil {
			return dst, err
		}
		dst = append(dst, ',')
		dst = appendEscaped(dst, k, keyEscapes)
		dst = append(dst, '=')
		dst = appendEscaped(dst, v, keyEscapes)
	}
	return dst, nil
}

// point appends the rest of the line after the series key: the sequence
// tag when rank > 0, the fields and the timestamp.
func (x *encoder) point(dst []byte, e *event.Event, rank int) ([]byte, error) {
	if rank > 0 {
		dst = append(dst, ',')
		dst = appendEscaped(dst, x.seqTag, keyEscapes)
		dst = append(dst, '=')
		dst = strconv.AppendInt(dst, int64(rank), 10)
	}
	dst = append(dst, ' ')
	var err error
	switch {
	case len(e.Fields) > 0:
		keys := make([]string, 0, len(e.Fields))
		for k := range e.Fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if k == "" {
				return dst, fmt.Errorf("%w: empty field key", errUnrepresentable)
			}
			if err := checkName("field", k); err != nil {
				return dst, err
			}
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendEscaped(dst, k, keyEscapes)
			dst = append(dst, '=')
			if dst, err = x.value(dst, k, e.Fields[k]); err != nil {
				return dst, err
			}
		}
	case len(e.Body) > 0 && utf8.Valid(e.Body):
		dst = append(dst, "message="...)
		dst = appendString(dst, string(e.Body))
	case len(e.Body) > 0:
		dst = append(dst, "body_base64="...)
		dst = appendString(dst, base64.StdEncoding.EncodeToString(e.Body))
	default:
		dst = append(dst, "count=1i"...)
	}
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, e.Time, 10)
	return append(dst, '\n'), nil
}

func (x *encoder) value(dst []byte, key string, v event.Value) ([]byte, error) {
	switch v.Type() {
	case event.TypeFloat:
		f := v.FloatValue()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return dst, fmt.Errorf("%w: field %q is %v (InfluxDB has no NaN or infinity)", errUnrepresentable, key, f)
		}
		start := len(dst)
		dst = strconv.AppendFloat(dst, f, 'g', -1, 64)
		if !bytes.ContainsAny(dst[start:], ".e") {
			dst = append(dst, ".0"...) // "2" is a float too, but say it plainly
		}
		return dst, nil
	case event.TypeInt:
		return append(strconv.AppendInt(dst, v.IntValue(), 10), 'i'), nil
	case event.TypeUint:
		u := v.UintValue()
		if !x.v1 {
			return append(strconv.AppendUint(dst, u, 10), 'u'), nil
		}
		if u > math.MaxInt64 {
			return dst, fmt.Errorf("%w: field %q = %d exceeds InfluxDB 1.x's integer range", errUnrepresentable, key, u)
		}
		return append(strconv.AppendUint(dst, u, 10), 'i'), nil
	case event.TypeString:
		if !utf8.ValidString(v.StringValue()) {
			return dst, fmt.Errorf("%w: field %q is not UTF-8", errUnrepresentable, key)
		}
		return appendString(dst, v.StringValue()), nil
	case event.TypeBool:
		return strconv.AppendBool(dst, v.BoolValue()), nil
	}
	return dst, fmt.Errorf("%w: field %q has no value", errUnrepresentable, key)
}

// Escapes per the line protocol reference: measurements escape commas and
// spaces; tag keys, tag values and field keys also equals signs; string
// field values escape double quotes and backslashes.
const (
	measurementEscapes = ", "
	keyEscapes         = ",= "
)

func appendEscaped(dst []byte, s, special string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strings.IndexByte(special, c) >= 0 {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}

// checkName refuses what no escaping can carry: line breaks end a line,
// a backslash could escape the separator after it, and line protocol is
// UTF-8.
func checkName(what, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s %q is not UTF-8", errUnrepresentable, what, s)
	}
	if strings.ContainsAny(s, "\n\r\t") {
		return fmt.Errorf("%w: %s %q contains a line break or a tab", errUnrepresentable, what, s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && (i == len(s)-1 || strings.IndexByte(keyEscapes, s[i+1]) >= 0 || s[i+1] == '\\') {
			return fmt.Errorf("%w: %s %q has a backslash before a separator or at its end", errUnrepresentable, what, s)
		}
	}
	return nil
}
