package otlp

import (
	"encoding/base64"
	"encoding/hex"
	"math"
	"strconv"

	"github.com/chronostream/chronostream/internal/jsonev"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
)

// Bodies are written by hand: every item of a request becomes one, so
// encoding/json's reflection and maps would dominate ingest.

// appendKey appends `,"key":` (without the comma for the first member,
// when b ends with '{').
func appendKey(b []byte, key string) []byte {
	if n := len(b); n > 0 && b[n-1] != '{' && b[n-1] != '[' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

// appendFloat writes a double; JSON has no NaN or infinities, so those are
// the strings "NaN", "+Inf" and "-Inf", as the read API shows them.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"+Inf"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Inf"`...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

func appendHex(b, id []byte) []byte {
	b = append(b, '"')
	b = hex.AppendEncode(b, id)
	return append(b, '"')
}

// appendArray writes items as one JSON array, each by elem: the one loop
// behind every list of a body (span events and links, exemplars, buckets,
// quantiles, array values).
func appendArray[T any](b []byte, items []T, elem func([]byte, T) []byte) []byte {
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = elem(b, it)
	}
	return append(b, ']')
}

// appendAny writes an AnyValue as plain JSON: strings, numbers, booleans,
// arrays and objects; bytes as base64 (as OTLP's JSON does); an empty
// value as null.
func appendAny(b []byte, v *commonpb.AnyValue, depth int) []byte {
	if depth > 64 { // the decoders bound nesting already; this bounds the stack here
		return append(b, "null"...)
	}
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return jsonev.AppendString(b, x.StringValue)
	case *commonpb.AnyValue_BoolValue:
		return strconv.AppendBool(b, x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return strconv.AppendInt(b, x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return appendFloat(b, x.DoubleValue)
	case *commonpb.AnyValue_BytesValue:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, x.BytesValue)
		return append(b, '"')
	case *commonpb.AnyValue_ArrayValue:
		return appendArray(b, x.ArrayValue.GetValues(), func(b []byte, e *commonpb.AnyValue) []byte {
			return appendAny(b, e, depth+1)
		})
	case *commonpb.AnyValue_KvlistValue:
		return appendAttrs(b, x.KvlistValue.GetValues(), depth+1)
	}
	return append(b, "null"...)
}

// appendAttrs writes key-value pairs as one JSON object.
func appendAttrs(b []byte, kvs []*commonpb.KeyValue, depth int) []byte {
	b = append(b, '{')
	for i, kv := range kvs {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonev.AppendString(b, kv.GetKey())
		b = append(b, ':')
		b = appendAny(b, kv.GetValue(), depth)
	}
	return append(b, '}')
}

// scalarText is a scalar AnyValue as a tag value.
func scalarText(v *commonpb.AnyValue) (string, bool) {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue, true
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue), true
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10), true
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64), true
	}
	return "", false
}
