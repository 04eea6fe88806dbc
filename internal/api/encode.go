package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/jsonev"
	"github.com/chronostream/chronostream/internal/store"
)

// Events are encoded by hand, not with encoding/json: exports are the hot
// path, and maps would otherwise be sorted and reflected per event. Keys of
// tags and fields are sorted so that output is deterministic.

// appendEvent appends the JSON object of e, with extra members (already
// encoded, each starting with ',') after the fixed ones. The result never
// contains a raw newline, so it can be an NDJSON line or an SSE data line.
func appendEvent(b []byte, e *event.Event, prefix string) []byte {
	b = append(b, '{')
	b = append(b, prefix...)
	b = append(b, `"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"time":"`...)
	b = e.TimeValue().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","story":`...)
	b = jsonev.AppendString(b, e.Story)
	b = append(b, `,"kind":"`...)
	b = append(b, e.Kind.String()...)
	b = append(b, `","tags":`...)
	b = appendTags(b, e.Tags)
	b = append(b, `,"fields":`...)
	b = appendFields(b, e.Fields)
	b = appendBody(b, e)
	b = append(b, `,"source":`...)
	b = jsonev.AppendString(b, e.Source)
	return append(b, '}')
}

// appendBody appends the body member: raw JSON for JSON bodies, a string for
// UTF-8 text, base64 for anything else.
func appendBody(b []byte, e *event.Event) []byte {
	if e.Format == event.FormatJSON {
		if !bytes.ContainsAny(e.Body, "\r\n") {
			b = append(b, `,"body":`...)
			return append(b, e.Body...)
		}
		// Whitespace between tokens may hold newlines, which NDJSON and SSE
		// cannot carry; compaction keeps the value and drops only those.
		var buf bytes.Buffer
		if json.Compact(&buf, e.Body) == nil {
			b = append(b, `,"body":`...)
			return append(b, buf.Bytes()...)
		}
	}
	if utf8.Valid(e.Body) {
		b = append(b, `,"body":`...)
		return jsonev.AppendString(b, string(e.Body))
	}
	b = append(b, `,"body_base64":"`...)
	b = base64.StdEncoding.AppendEncode(b, e.Body)
	return append(b, '"')
}

func appendTags(b []byte, tags map[string]string) []byte {
	b = append(b, '{')
	for i, k := range sortedKeys(tags) {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonev.AppendString(b, k)
		b = append(b, ':')
		b = jsonev.AppendString(b, tags[k])
	}
	return append(b, '}')
}

func appendFields(b []byte, fields map[string]event.Value) []byte {
	b = append(b, '{')
	for i, k := range sortedKeys(fields) {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonev.AppendString(b, k)
		b = append(b, ':')
		b = appendValue(b, fields[k])
	}
	return append(b, '}')
}

// appendValue encodes like event.Value.MarshalJSON, without allocating.
func appendValue(b []byte, v event.Value) []byte {
	switch v.Type() {
	case event.TypeFloat:
		f := v.FloatValue()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return jsonev.AppendString(b, v.Text())
		}
		return strconv.AppendFloat(b, f, 'g', -1, 64)
	case event.TypeInt:
		return strconv.AppendInt(b, v.IntValue(), 10)
	case event.TypeUint:
		return strconv.AppendUint(b, v.UintValue(), 10)
	case event.TypeBool:
		return strconv.AppendBool(b, v.BoolValue())
	case event.TypeString:
		return jsonev.AppendString(b, v.StringValue())
	}
	return append(b, "null"...)
}

func sortedKeys[V any](m map[string]V) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func appendGap(b []byte, g store.Gap) []byte {
	b = append(b, `{"after":`...)
	b = strconv.AppendUint(b, g.After, 10)
	b = append(b, `,"next":`...)
	b = strconv.AppendUint(b, g.Next, 10)
	return append(b, '}')
}

// CSV: the columns of csvHeader; tags and fields are JSON objects in their
// cells, as they are in the JSON formats. The body cell holds the body as
// text, unless it is not UTF-8, holds a carriage return (which CSV readers
// fold into newlines) or starts with the prefix itself: then it is
// "base64:" and the standard base64 of the bytes.
const (
	csvHeader     = "seq,time,story,kind,tags,fields,body\r\n"
	csvBodyBase64 = "base64:"
)

func appendCSVRow(b []byte, e *event.Event) []byte {
	var cell [64]byte
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, ',')
	b = e.TimeValue().AppendFormat(b, time.RFC3339Nano)
	b = append(b, ',')
	b = appendCSVCell(b, []byte(e.Story))
	b = append(b, ',')
	b = append(b, e.Kind.String()...)
	b = append(b, ',')
	b = appendCSVCell(b, appendTags(cell[:0], e.Tags))
	b = append(b, ',')
	b = appendCSVCell(b, appendFields(cell[:0], e.Fields))
	b = append(b, ',')
	body := e.Body
	if !utf8.Valid(body) || bytes.IndexByte(body, '\r') >= 0 || bytes.HasPrefix(body, []byte(csvBodyBase64)) {
		b = append(b, csvBodyBase64...)
		b = base64.StdEncoding.AppendEncode(b, body)
	} else {
		b = appendCSVCell(b, body)
	}
	return append(b, '\r', '\n')
}

// appendCSVCell quotes a cell when RFC 4180 readers need it to.
func appendCSVCell(b, cell []byte) []byte {
	if len(cell) == 0 || !bytes.ContainsAny(cell, "\",\r\n") && cell[0] != ' ' && cell[0] != '\t' {
		return append(b, cell...)
	}
	b = append(b, '"')
	for {
		i := bytes.IndexByte(cell, '"')
		if i < 0 {
			break
		}
		b = append(b, cell[:i+1]...)
		b = append(b, '"')
		cell = cell[i+1:]
	}
	b = append(b, cell...)
	return append(b, '"')
}
