package influxjson

import (
	"encoding/json"
	"io"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/chronostream/chronostream/internal/jsonev"
)

// The encoder writes the /query JSON by hand rather than through
// encoding/json's reflection: it is several times faster per row, streams
// a large answer in bounded pieces, and escapes strings as the Go of
// influxd 1.6 did (\u0008 and \u000c, where Go 1.22+ writes \b and \f).
// The field order and omitempty rules are those of influxd's structs:
// Response{results,error}, Result{statement_id,series,messages,partial,
// error}, Row{name,tags,columns,values,partial}.

// flushAt is the buffered size past which a streaming encoder writes out.
const flushAt = 32 << 10

type encoder struct {
	buf   []byte
	w     io.Writer // nil: buffer everything (pretty output is indented whole)
	err   error     // the first write error; later writes are skipped
	epoch string
}

func (e *encoder) maybeFlush() {
	if e.w != nil && len(e.buf) >= flushAt {
		e.flush()
	}
}

func (e *encoder) flush() {
	if e.err == nil && len(e.buf) > 0 {
		_, e.err = e.w.Write(e.buf)
	}
	e.buf = e.buf[:0]
}

// response appends one {"results":[…],"error":…} document and its newline.
func (e *encoder) response(results []Result, errText string) {
	e.buf = append(e.buf, '{')
	if len(results) > 0 {
		e.buf = append(e.buf, `"results":[`...)
		for i := range results {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.result(&results[i])
		}
		e.buf = append(e.buf, ']')
	}
	if errText != "" {
		if len(results) > 0 {
			e.buf = append(e.buf, ',')
		}
		e.buf = append(e.buf, `"error":`...)
		e.buf = appendString(e.buf, errText)
	}
	e.buf = append(e.buf, '}', '\n')
}

func (e *encoder) result(r *Result) {
	e.buf = append(e.buf, `{"statement_id":`...)
	e.buf = strconv.AppendInt(e.buf, int64(r.StatementID), 10)
	if len(r.Series) > 0 {
		e.buf = append(e.buf, `,"series":[`...)
		for i := range r.Series {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.series(&r.Series[i])
		}
		e.buf = append(e.buf, ']')
	}
	if len(r.Messages) > 0 {
		e.buf = append(e.buf, `,"messages":[`...)
		for i, m := range r.Messages {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.buf = append(e.buf, `{"level":`...)
			e.buf = appendString(e.buf, m.Level)
			e.buf = append(e.buf, `,"text":`...)
			e.buf = appendString(e.buf, m.Text)
			e.buf = append(e.buf, '}')
		}
		e.buf = append(e.buf, ']')
	}
	if r.Partial {
		e.buf = append(e.buf, `,"partial":true`...)
	}
	if r.Err != nil {
		if msg := r.Err.Error(); msg != "" {
			e.buf = append(e.buf, `,"error":`...)
			e.buf = appendString(e.buf, msg)
		}
	}
	e.buf = append(e.buf, '}')
}

func (e *encoder) series(s *Series) {
	e.buf = append(e.buf, '{')
	comma := false
	field := func(name string) {
		if comma {
			e.buf = append(e.buf, ',')
		}
		comma = true
		e.buf = append(e.buf, name...)
	}
	if s.Name != "" {
		field(`"name":`)
		e.buf = appendString(e.buf, s.Name)
	}
	if len(s.Tags) > 0 {
		field(`"tags":{`)
		keys := make([]string, 0, len(s.Tags))
		for k := range s.Tags {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.buf = appendString(e.buf, k)
			e.buf = append(e.buf, ':')
			e.buf = appendString(e.buf, s.Tags[k])
		}
		e.buf = append(e.buf, '}')
	}
	if len(s.Columns) > 0 {
		field(`"columns":[`)
		for i, c := range s.Columns {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.buf = appendString(e.buf, c)
		}
		e.buf = append(e.buf, ']')
	}
	if len(s.Values) > 0 {
		timeCol := len(s.Columns) > 0 && s.Columns[0] == "time"
		field(`"values":[`)
		for i, row := range s.Values {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.buf = append(e.buf, '[')
			for j, v := range row {
				if j > 0 {
					e.buf = append(e.buf, ',')
				}
				if ns, ok := v.(int64); ok && j == 0 && timeCol {
					e.buf = appendTime(e.buf, ns, e.epoch)
					continue
				}
				e.buf = appendValue(e.buf, v)
			}
			e.buf = append(e.buf, ']')
			e.maybeFlush()
		}
		e.buf = append(e.buf, ']')
	}
	if s.Partial {
		field(`"partial":true`)
	}
	e.buf = append(e.buf, '}')
}

func appendTime(b []byte, ns int64, epoch string) []byte {
	if epoch == "" {
		b = append(b, '"')
		b = time.Unix(0, ns).UTC().AppendFormat(b, time.RFC3339Nano)
		return append(b, '"')
	}
	return strconv.AppendInt(b, ns/epochUnit(epoch), 10)
}

// appendValue appends one field value. NaN and ±Inf, which JSON cannot
// carry (influxd answers them with a Go error string instead of JSON), are
// null.
func appendValue(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case float64:
		return appendFloat(b, x)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case uint64:
		return strconv.AppendUint(b, x, 10)
	case string:
		return appendString(b, x)
	case bool:
		return strconv.AppendBool(b, x)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case time.Time:
		b = append(b, '"')
		b = x.UTC().AppendFormat(b, time.RFC3339Nano)
		return append(b, '"')
	}
	// Anything else (a json.Number, a slice) goes through encoding/json.
	j, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, j...)
}

// appendFloat formats as encoding/json does (ES6 number formatting: plain
// between 1e-6 and 1e21, else an exponent without padding).
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 → 1e-7
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendString quotes s as influxd's encoding/json did: HTML characters
// and control characters as \u00XX (but \n \r \t), invalid UTF-8 as
// \ufffd, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte { return jsonev.AppendStringEscapeHTML(b, s) }
