// Package lineproto takes InfluxDB line protocol: a pure decoder (Scanner,
// Parse, Expand) and a thin HTTP transport for InfluxDB 1.x's /write and
// /ping and InfluxDB 2.x's /api/v2/write.
//
// A line is stored verbatim as an event body (event.FormatLine) in the
// story named by its measurement. Ingest validates the whole line and
// extracts only what decides where and when it is stored (measurement and
// timestamp), without allocating; readers call Expand to derive the tags
// and typed fields from the body, as JSON bodies are expanded. The log thus
// stores every value once, and a bad line is refused when written, never
// found when read.
//
// The grammar follows InfluxDB's line protocol reference:
//
//		measurement[,tag=value...] field=value[,field=value...] [timestamp]
//
//	  - measurement: a backslash escapes a comma, a space or a backslash;
//	  - tag keys, tag values, field keys: a backslash escapes a comma, an
//	    equals sign, a space or a backslash;
//	  - any other backslash is a literal character;
//	  - string field values are double-quoted; \" and \\ are a quote and a
//	    backslash; a newline cannot occur in a line, quoted or not;
//	  - field values: float (1, 1.5, -1e3), integer (1i), unsigned (1u),
//	    string ("…", at most 64 KiB) and boolean (t, T, true, True, TRUE,
//	    f, F, false, False, FALSE); NaN and infinities are refused;
//	  - tag values cannot be empty; a tag key cannot be given twice; a
//	    field given twice keeps its last value;
//	  - the timestamp is an integer in the request's precision, within
//	    InfluxDB's range (±9223372036854775806 ns);
//	  - blank lines and lines starting with # are skipped.
package lineproto

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/chronostream/chronostream/event"
)

// Precision is the unit of a line's timestamp, in nanoseconds.
type Precision int64

// The precisions of InfluxDB's write APIs.
const (
	Nanosecond  Precision = 1
	Microsecond Precision = 1e3
	Millisecond Precision = 1e6
	Second      Precision = 1e9
	Minute      Precision = 60e9
	Hour        Precision = 3600e9
)

// ParsePrecision parses a precision parameter. InfluxDB 2.x takes ns, us,
// ms and s; 1.x (v1 true) spells them n, u, ms, s and adds m and h. Both
// spellings are taken on both APIs (clients mix them up); an empty value
// means nanoseconds.
func ParsePrecision(s string, v1 bool) (Precision, error) {
	switch s {
	case "", "ns", "n":
		return Nanosecond, nil
	case "us", "u", "µ":
		return Microsecond, nil
	case "ms":
		return Millisecond, nil
	case "s":
		return Second, nil
	}
	if v1 {
		switch s {
		case "m":
			return Minute, nil
		case "h":
			return Hour, nil
		}
		return 0, fmt.Errorf("invalid precision %q (want n, u, ms, s, m or h)", s)
	}
	return 0, fmt.Errorf("invalid precision %q (want ns, us, ms or s)", s)
}

// InfluxDB's time range: the extremes of int64 are reserved.
const (
	MinTime = math.MinInt64 + 2
	MaxTime = math.MaxInt64 - 1
)

// MaxStringField is the longest string field value, as in InfluxDB.
const MaxStringField = 64 << 10

// The reasons a line is refused, worded as InfluxDB 1.x words them. They
// are values so that refusing a line does not allocate.
var (
	errMissingMeasurement = errors.New("missing measurement")
	errMissingFields      = errors.New("missing fields")
	errMissingTagKey      = errors.New("missing tag key")
	errMissingTagValue    = errors.New("missing tag value")
	errInvalidTag         = errors.New("invalid tag format")
	errDuplicateTags      = errors.New("duplicate tags")
	errMissingFieldKey    = errors.New("missing field key")
	errMissingFieldValue  = errors.New("missing field value")
	errInvalidField       = errors.New("invalid field format")
	errUnbalancedQuotes   = errors.New("unbalanced quotes")
	errStringTooLong      = fmt.Errorf("string field value longer than %d bytes", MaxStringField)
	errInvalidNumber      = errors.New("invalid number")
	errInvalidBoolean     = errors.New("invalid boolean")
	errBadTimestamp       = errors.New("bad timestamp")
	errTimeRange          = fmt.Errorf("time outside range %d - %d", int64(MinTime), int64(MaxTime))
	errInvalidUTF8        = errors.New("invalid UTF-8")
)

// Parse validates one line (as the Scanner yields it) and returns its
// measurement, unescaped, and its time in Unix nanoseconds: the timestamp
// in precision p, or now truncated to p when the line has none (as
// InfluxDB does). The measurement aliases line unless it holds escapes.
// A valid line without escapes costs no allocation.
func Parse(line []byte, p Precision, now int64) (measurement []byte, t int64, err error) {
	m, t, err := parse(line, p, now, nil)
	if err != nil {
		return nil, 0, err
	}
	if hasBackslash(m) {
		return unescape(nil, m, nameSpecial), t, nil
	}
	return m, t, nil
}

// Expand derives the tags and fields of a FormatLine event from its body,
// replacing e.Tags and e.Fields. The body's timestamp is not read: it is in
// the precision of the request that wrote it, and e.Time is authoritative.
// Other formats are left alone.
func Expand(e *event.Event) error {
	if e.Format != event.FormatLine {
		return nil
	}
	x := &expansion{}
	if _, _, err := parse(e.Body, Nanosecond, e.Time, x); err != nil {
		return err
	}
	e.Tags, e.Fields = x.tags, x.fields
	return nil
}

// expansion collects tags and fields when a read expands a line.
type expansion struct {
	tags   map[string]string
	fields map[string]event.Value
}

// Which escaped characters lose their backslash: in a measurement, a comma,
// a space and a backslash; in keys and tag values, an equals sign too.
const (
	nameSpecial = 1 << iota
	keySpecial
)

// parse is the one grammar that both ingest (x nil: validate only) and
// reads (x set: collect tags and fields) run, so that what ingest accepts
// a read decodes alike.
func parse(line []byte, p Precision, now int64, x *expansion) (measurement []byte, t int64, err error) {
	if !utf8.Valid(line) {
		return nil, 0, errInvalidUTF8
	}
	n := len(line)
	// Measurement: up to the first unescaped comma or space.
	i := scanName(line, 0, false)
	if i == 0 {
		return nil, 0, errMissingMeasurement
	}
	measurement = line[:i]
	if i == n {
		return nil, 0, errMissingFields
	}

	// Tags. Duplicate keys are found by comparing raw keys: escaping is
	// canonical except for needless backslashes, which are rare enough.
	var seen [32][]byte
	nseen := 0
	var seenMap map[string]struct{}
	for i < n && line[i] == ',' {
		i++
		ks := i
		i = scanName(line, i, true)
		key := line[ks:i]
		if i == n || line[i] != '=' {
			if len(key) == 0 {
				return nil, 0, errMissingTagKey
			}
			return nil, 0, errMissingTagValue
		}
		if len(key) == 0 {
			return nil, 0, errMissingTagKey
		}
		i++
		vs := i
		i = scanName(line, i, true)
		val := line[vs:i]
		if i < n && line[i] == '=' {
			return nil, 0, errInvalidTag
		}
		if len(val) == 0 {
			return nil, 0, errMissingTagValue
		}
		if nseen < len(seen) {
			for _, k := range seen[:nseen] {
				if string(k) == string(key) {
					return nil, 0, errDuplicateTags
				}
			}
			seen[nseen] = key
			nseen++
		} else {
			if seenMap == nil {
				seenMap = make(map[string]struct{}, 2*len(seen))
				for _, k := range seen {
					seenMap[string(k)] = struct{}{}
				}
			}
			if _, dup := seenMap[string(key)]; dup {
				return nil, 0, errDuplicateTags
			}
			seenMap[string(key)] = struct{}{}
		}
		if x != nil {
			if x.tags == nil {
				x.tags = make(map[string]string)
			}
			x.tags[unescapeString(key, keySpecial)] = unescapeString(val, keySpecial)
		}
	}
	if i == n {
		return nil, 0, errMissingFields
	}
	// The key ends at a space (a comma or equals sign was consumed above).
	i = skipSpaces(line, i)
	if i == n {
		return nil, 0, errMissingFields
	}

	// Fields.
	for {
		ks := i
		i = scanName(line, i, true)
		key := line[ks:i]
		if i == n || line[i] != '=' {
			if len(key) == 0 {
				return nil, 0, errMissingFieldKey
			}
			return nil, 0, errMissingFieldValue
		}
		if len(key) == 0 {
			return nil, 0, errMissingFieldKey
		}
		i++
		var v event.Value
		if i, v, err = parseValue(line, i, x != nil); err != nil {
			return nil, 0, err
		}
		if x != nil {
			if x.fields == nil {
				x.fields = make(map[string]event.Value)
			}
			// A repeated field keeps its last value, as in InfluxDB.
			x.fields[unescapeString(key, keySpecial)] = v
		}
		if i == n || line[i] == ' ' {
			break
		}
		i++ // the comma before the next field
	}

	// Timestamp.
	i = skipSpaces(line, i)
	if i == n {
		if p > 1 {
			now -= now % int64(p)
		}
		return measurement, now, nil
	}
	ts, ok := parseDecimal(line[i:])
	if !ok {
		return nil, 0, errBadTimestamp
	}
	if x != nil {
		return measurement, now, nil
	}
	if p > 1 {
		if ts > MaxTime/int64(p) || ts < MinTime/int64(p) {
			return nil, 0, errTimeRange
		}
		ts *= int64(p)
	}
	if ts < MinTime || ts > MaxTime {
		return nil, 0, errTimeRange
	}
	return measurement, ts, nil
}

// scanName returns the end of the name starting at i: the first unescaped
// comma or space, or also equals sign when isKey. A backslash always takes
// the next byte with it, so an escaped separator never ends a name.
func scanName(line []byte, i int, isKey bool) int {
	for i < len(line) {
		switch line[i] {
		case '\\':
			i++
		case ',', ' ':
			return i
		case '=':
			if isKey {
				return i
			}
		}
		i++
	}
	return len(line)
}

// skipSpaces skips the run of spaces (and tabs, as InfluxDB does) that
// separate the sections of a line.
func skipSpaces(line []byte, i int) int {
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	return i
}

// parseValue parses the field value at line[i:] and returns where it ends
// (at a comma, a space or the end of the line). The value is only built
// when want is set: validation alone must not allocate.
func parseValue(line []byte, i int, want bool) (int, event.Value, error) {
	n := len(line)
	if i == n || line[i] == ',' || line[i] == ' ' {
		return i, event.Value{}, errMissingFieldValue
	}
	if line[i] == '"' {
		j := i + 1
		for ; j < n && line[j] != '"'; j++ {
			if line[j] == '\\' {
				j++
			}
		}
		if j >= n {
			return i, event.Value{}, errUnbalancedQuotes
		}
		raw := line[i+1 : j]
		j++
		if j < n && line[j] != ',' && line[j] != ' ' {
			return i, event.Value{}, errInvalidField
		}
		if len(raw) > MaxStringField {
			return i, event.Value{}, errStringTooLong
		}
		var v event.Value
		if want {
			v = event.String(unescapeStringField(raw))
		}
		return j, v, nil
	}
	j := i
	for j < n && line[j] != ',' && line[j] != ' ' {
		j++
	}
	raw := line[i:j]
	v, err := parseScalar(raw, want)
	return j, v, err
}

// parseScalar parses an unquoted field value: a number or a boolean.
// The value is only built when want is set.
func parseScalar(raw []byte, want bool) (event.Value, error) {
	switch raw[0] {
	case 't', 'T', 'f', 'F':
		switch string(raw) {
		case "t", "T", "true", "True", "TRUE":
			return event.Bool(true), nil
		case "f", "F", "false", "False", "FALSE":
			return event.Bool(false), nil
		}
		return event.Value{}, errInvalidBoolean
	}
	last := raw[len(raw)-1]
	switch last {
	case 'i':
		num := raw[:len(raw)-1]
		if !isInteger(num, true) {
			return event.Value{}, errInvalidNumber
		}
		v, err := strconv.ParseInt(unsafeString(num), 10, 64)
		if err != nil {
			return event.Value{}, fmt.Errorf("unable to parse integer %s: value out of range", raw)
		}
		return event.Int(v), nil
	case 'u':
		num := raw[:len(raw)-1]
		if !isInteger(num, false) {
			return event.Value{}, errInvalidNumber
		}
		v, err := strconv.ParseUint(unsafeString(num), 10, 64)
		if err != nil {
			return event.Value{}, fmt.Errorf("unable to parse unsigned %s: value out of range", raw)
		}
		return event.Uint(v), nil
	}
	// strconv also takes "inf", "nan", hex floats and underscores: the
	// line protocol's own grammar is checked first, so that none of those
	// (and no non-finite value) is ever accepted.
	ok, finite := isFloat(raw)
	if !ok {
		return event.Value{}, errInvalidNumber
	}
	if finite && !want {
		return event.Value{}, nil
	}
	f, err := strconv.ParseFloat(unsafeString(raw), 64)
	if err != nil || math.IsInf(f, 0) {
		return event.Value{}, fmt.Errorf("unable to parse float %s: value out of range", raw)
	}
	return event.Float(f), nil
}

// unsafeString views b as a string for a parse that does not keep it: the
// parse functions take strings, and a copy per value would be the only
// allocation of the ingest path. strconv's error values keep their input,
// but every error here is discarded.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// isInteger reports whether b is [-]digits (the sign only when signed).
func isInteger(b []byte, signed bool) bool {
	if signed && len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isFloat reports whether b is [-]digits[.digits][(e|E)[+|-]digits] with at
// least one digit before the exponent, and whether its magnitude is surely
// between 1e-300 and 1e300 (or zero), so that it needs no conversion to be
// known finite: ingest only validates, and strconv is its costliest step.
func isFloat(b []byte) (ok, finite bool) {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits, intDigits := 0, 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		if intDigits > 0 || b[i] != '0' {
			intDigits++
		}
		i++
		digits++
	}
	if i < len(b) && b[i] == '.' {
		i++
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return false, false
	}
	exp := 0
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		neg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			neg = b[i] == '-'
			i++
		}
		expDigits := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if exp < 1000 {
				exp = exp*10 + int(b[i]-'0')
			}
			i++
			expDigits++
		}
		if expDigits == 0 {
			return false, false
		}
		if neg {
			exp = -exp
		}
	}
	return i == len(b), intDigits+exp <= 300 && exp >= -300
}

// parseDecimal parses [-]digits as an int64.
func parseDecimal(b []byte) (int64, bool) {
	if !isInteger(b, true) {
		return 0, false
	}
	v, err := strconv.ParseInt(unsafeString(b), 10, 64)
	return v, err == nil
}

func hasBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

// unescape appends the unescaped name to dst: a backslash before a special
// character (see nameSpecial) or a backslash is dropped; any other backslash
// is kept.
func unescape(dst, b []byte, special int) []byte {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\\' && i+1 < len(b) {
			switch b[i+1] {
			case ',', ' ', '\\':
				i++
				c = b[i]
			case '=':
				if special == keySpecial {
					i++
					c = b[i]
				}
			}
		}
		dst = append(dst, c)
	}
	return dst
}

func unescapeString(b []byte, special int) string {
	if !hasBackslash(b) {
		return string(b)
	}
	return string(unescape(make([]byte, 0, len(b)), b, special))
}

// unescapeStringField unescapes a quoted string field's content: \" and \\
// lose their backslash; any other backslash is kept.
func unescapeStringField(b []byte) string {
	if !hasBackslash(b) {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\\' && i+1 < len(b) && (b[i+1] == '"' || b[i+1] == '\\') {
			i++
			c = b[i]
		}
		out = append(out, c)
	}
	return string(out)
}
