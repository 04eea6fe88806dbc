// Package otlp takes OpenTelemetry's OTLP/HTTP: logs, metrics and traces in
// protobuf or JSON, each item stored as one JSON event. The decoder (Decode,
// Mapper) is pure; Handler is the HTTP transport on top of it. The schema
// is the official one (go.opentelemetry.io/proto/otlp), never written here.
package otlp

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/valyala/fastjson"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Encoding is how a request (and its response) is encoded.
type Encoding uint8

// The encodings of OTLP/HTTP.
const (
	Protobuf Encoding = iota // application/x-protobuf
	JSON                     // application/json, OTLP's JSON mapping
)

func (e Encoding) String() string {
	if e == JSON {
		return "json"
	}
	return "protobuf"
}

// ContentType is the media type of the encoding.
func (e Encoding) ContentType() string {
	if e == JSON {
		return "application/json"
	}
	return "application/x-protobuf"
}

// DecodeError is a request body that is not a valid OTLP message: a 400,
// never worth retrying.
type DecodeError struct{ Err error }

func (e *DecodeError) Error() string { return "invalid OTLP request: " + e.Err.Error() }
func (e *DecodeError) Unwrap() error { return e.Err }

// Decode decodes body into m (an Export*ServiceRequest).
//
// OTLP's JSON differs from protobuf's canonical JSON mapping in one way that
// matters: trace and span ids are hex, not base64. protojson knows only the
// canonical mapping, so those members are rewritten to base64 first. Unknown
// members are ignored, as the OTLP spec asks of receivers.
func Decode(enc Encoding, body []byte, m proto.Message) error {
	if enc == Protobuf {
		if err := proto.Unmarshal(body, m); err != nil {
			return &DecodeError{err}
		}
		return nil
	}
	var p fastjson.Parser
	v, err := p.ParseBytes(body)
	if err != nil {
		return &DecodeError{err}
	}
	var a fastjson.Arena
	if err := rewriteIDs(v, &a); err != nil {
		return &DecodeError{err}
	}
	canon := v.MarshalTo(nil)
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(canon, m); err != nil {
		return &DecodeError{err}
	}
	return nil
}

// idSizes are the members holding ids, in both spellings protojson takes,
// with their size in bytes. In OTLP messages these names are only ever
// ids: attributes are lists of {"key","value"} objects, so an attribute
// named traceId is a value, never a member name.
var idSizes = map[string]int{
	"traceId": 16, "trace_id": 16,
	"spanId": 8, "span_id": 8,
	"parentSpanId": 8, "parent_span_id": 8,
}

func rewriteIDs(v *fastjson.Value, a *fastjson.Arena) error {
	switch v.Type() {
	case fastjson.TypeArray:
		for _, e := range v.GetArray() {
			if err := rewriteIDs(e, a); err != nil {
				return err
			}
		}
	case fastjson.TypeObject:
		o := v.GetObject()
		var err error
		o.Visit(func(k []byte, mv *fastjson.Value) {
			if err != nil {
				return
			}
			size, isID := idSizes[string(k)]
			if !isID || mv.Type() != fastjson.TypeString {
				err = rewriteIDs(mv, a)
				return
			}
			s := mv.GetStringBytes()
			if len(s) == 0 {
				return
			}
			// Any length decodes: an id of the wrong size is the item's
			// fault, rejected by the mapper as in protobuf, not the request's.
			id := make([]byte, hex.DecodedLen(len(s)))
			if _, herr := hex.Decode(id, s); herr != nil {
				err = fmt.Errorf("%s: want %d hex digits, got %q", k, 2*size, s)
				return
			}
			o.Set(string(k), a.NewString(base64.StdEncoding.EncodeToString(id)))
		})
		return err
	}
	return nil
}
