// Package graphite takes Graphite's plaintext protocol over TCP and UDP
// (carbon's port 2003): "metric.path value [timestamp]" lines, including
// Graphite 1.1 tagged series ("name;tag1=v1;tag2=v2"). Parse is the pure
// decoder of one line; Server is the transport that reads lines from
// connections and datagrams and appends them to the log.
//
// Carbon (graphite-project/carbon, MetricLineReceiver and TaggedSeries) is
// the reference: lines are split on whitespace, value and timestamp are
// read as Python floats, NaN values are dropped, a timestamp of -1 means
// "now", and tags are validated and sorted as carbon does. Unlike carbon, a
// missing timestamp also means "now" (Trendlines and most senders' habit).
package graphite

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/chronostream/chronostream/event"
)

// DefaultMaxLineBytes bounds one line, as Twisted's LineOnlyReceiver
// (carbon's transport) does by default.
const DefaultMaxLineBytes = 16 << 10

// Reasons label rejected lines in metrics and logs; they are stable.
const (
	ReasonInvalidLine      = "invalid_line"      // not "path value [timestamp]"
	ReasonInvalidValue     = "invalid_value"     // the value is not a number
	ReasonNaNValue         = "nan_value"         // NaN: dropped, as carbon does
	ReasonInvalidTimestamp = "invalid_timestamp" // not a number, not finite, or out of range
	ReasonInvalidTags      = "invalid_tags"      // a tagged series carbon would refuse
	ReasonInvalidName      = "invalid_name"      // too long for a story name
	ReasonInvalidUTF8      = "invalid_utf8"      // carbon decodes lines as UTF-8
	ReasonLineTooLong      = "line_too_long"     // over the line limit (transport)
	ReasonIncompleteLine   = "incomplete_line"   // cut off by shutdown or a reset (transport)
	ReasonStalledLine      = "stalled_line"      // a line that stopped arriving: the connection is cut (transport)
	ReasonShutdownUnread   = "shutdown_unread"   // left in the socket when shutdown gave up draining (transport)
	ReasonUDPOverflow      = "udp_overflow"      // datagrams the kernel dropped, its buffer full (transport, Linux)
)

// LineError says why a line was not taken.
type LineError struct {
	Reason string // one of the Reason constants
	Msg    string
}

func (e *LineError) Error() string { return e.Msg }

func lineErr(reason, format string, args ...any) *LineError {
	return &LineError{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// ErrBlank is returned for a line holding only whitespace. Transports skip
// such lines silently: trailing newlines and keep-alive blank lines are
// common and lose nothing.
var ErrBlank = &LineError{Reason: "blank", Msg: "blank line"}

// Tag is one tag of a tagged series.
type Tag struct{ Key, Value []byte }

// Sample is one decoded line. Its byte slices alias the line passed to
// Parse and are valid only as long as it is.
type Sample struct {
	// Name is the metric path; for a tagged series, the name without its
	// tags (with carbon's leading '~' stripped).
	Name []byte
	// Tags of a tagged series, sorted by key, without duplicates (the last
	// one wins) and without "name" (Name holds it). Reused by each Parse.
	Tags []Tag
	// Value is the sample's value; never NaN (NaN lines are refused with
	// ReasonNaNValue), possibly ±Inf, as carbon keeps them.
	Value float64
	// Time is the sample time in Unix nanoseconds; zero means "now": no
	// timestamp, or carbon's -1.
	Time int64
}

// Parse decodes one line, without its line terminator ("\n" or "\r\n";
// surrounding whitespace is ignored anyway). On error s is unspecified.
func Parse(line []byte, s *Sample) error {
	if !utf8.Valid(line) {
		return lineErr(ReasonInvalidUTF8, "the line is not valid UTF-8")
	}
	var f [3][]byte
	n := 0
	for i := 0; ; {
		i = skipSpace(line, i)
		if i == len(line) {
			break
		}
		j := i
		for j < len(line) && (line[j] >= utf8.RuneSelf && !isSpaceAt(line, j) || line[j] < utf8.RuneSelf && !asciiSpace[line[j]]) {
			j++
		}
		if n == len(f) {
			return lineErr(ReasonInvalidLine, "want \"path value [timestamp]\", got more than 3 fields")
		}
		f[n] = line[i:j]
		n++
		i = j
	}
	switch n {
	case 0:
		return ErrBlank
	case 1:
		return lineErr(ReasonInvalidLine, "want \"path value [timestamp]\", got 1 field")
	}
	v, err := parseFloat(f[1])
	if err != nil {
		return lineErr(ReasonInvalidValue, "value %q is not a number", f[1])
	}
	if math.IsNaN(v) {
		return lineErr(ReasonNaNValue, "value is NaN (dropped, as carbon does)")
	}
	s.Value = v
	s.Time = 0
	if n == 3 {
		if s.Time, err = parseTimestamp(f[2]); err != nil {
			return err
		}
	}
	return s.parsePath(f[0])
}

// parsePath splits a tagged series into name and tags, validating them as
// carbon's TaggedSeries.parse_carbon does.
func (s *Sample) parsePath(p []byte) error {
	s.Tags = s.Tags[:0]
	semi := bytes.IndexByte(p, ';')
	if semi < 0 {
		s.Name = p
		return checkName(p)
	}
	s.Name = bytes.TrimLeft(p[:semi], "~")
	if len(s.Name) == 0 {
		return lineErr(ReasonInvalidTags, "tagged series %q has no name", p)
	}
	for rest := p[semi+1:]; ; {
		seg := rest
		next := bytes.IndexByte(rest, ';')
		if next >= 0 {
			seg = rest[:next]
		}
		k, v, ok := bytes.Cut(seg, []byte("="))
		switch {
		case !ok || len(k) == 0:
			return lineErr(ReasonInvalidTags, "tagged series %q: segment %q is not tag=value", p, seg)
		case len(v) == 0:
			return lineErr(ReasonInvalidTags, "tagged series %q: tag %q has an empty value", p, k)
		case bytes.ContainsAny(k, "!^"):
			return lineErr(ReasonInvalidTags, "tagged series %q: tag name %q holds one of ;!^=", p, k)
		case v[0] == '~':
			return lineErr(ReasonInvalidTags, "tagged series %q: the value of tag %q starts with ~", p, k)
		}
		// carbon sets "name" from the path, overriding a name tag.
		if string(k) != "name" {
			s.Tags = append(s.Tags, Tag{Key: k, Value: v})
		}
		if next < 0 {
			break
		}
		rest = rest[next+1:]
	}
	// A stable sort keeps duplicates in line order; the last one wins, as
	// it does in carbon's dict.
	slices.SortStableFunc(s.Tags, func(a, b Tag) int { return bytes.Compare(a.Key, b.Key) })
	out := s.Tags[:0]
	for i, t := range s.Tags {
		if i+1 < len(s.Tags) && bytes.Equal(s.Tags[i+1].Key, t.Key) {
			continue
		}
		out = append(out, t)
	}
	s.Tags = out
	return checkName(s.Name)
}

func checkName(name []byte) error {
	if len(name) > event.MaxStoryName {
		return lineErr(ReasonInvalidName, "metric name is %d bytes long, the limit is %d", len(name), event.MaxStoryName)
	}
	return nil
}

// parseFloat reads a number as Python's float() does: decimal or
// scientific notation, inf/infinity/nan in any case, digits separated by
// underscores; values beyond float64's range become ±Inf or 0 rather than
// errors. Hex floats, which Go accepts and Python does not, are refused.
func parseFloat(b []byte) (float64, error) {
	if bytes.ContainsAny(b, "xX") {
		return 0, strconv.ErrSyntax
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil && len(b) == 4 && (b[0] == '-' || b[0] == '+') && bytes.EqualFold(b[1:], []byte("nan")) {
		return math.NaN(), nil // Python takes a signed NaN, Go does not
	}
	if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
		err = nil
	}
	return v, err
}

// maxSeconds bounds timestamps to what int64 nanoseconds hold (year 2262).
const maxSeconds = math.MaxInt64 / 1_000_000_000 // integer division: 9223372036

// parseTimestamp reads Unix seconds, integer or fractional. Plain decimals
// are read exactly, to the nanosecond; other forms (exponents) as floats.
// As in carbon, any value whose integer part is -1 means "now" (zero).
func parseTimestamp(b []byte) (int64, error) {
	if ns, now, ok := parseDecimalSeconds(b); ok {
		if now {
			return 0, nil
		}
		if ns == 0 {
			return 0, errEpoch(b)
		}
		return ns, nil
	}
	f, err := parseFloat(b)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, lineErr(ReasonInvalidTimestamp, "timestamp %q is not a finite number of seconds", b)
	}
	if math.Trunc(f) == -1 {
		return 0, nil
	}
	if math.Abs(f) >= maxSeconds {
		return 0, errRange(b)
	}
	ns := int64(math.Round(f * 1e9))
	if ns == 0 {
		return 0, errEpoch(b)
	}
	return ns, nil
}

func errRange(b []byte) error {
	return lineErr(ReasonInvalidTimestamp, "timestamp %q is out of range: Graphite timestamps are Unix seconds (milliseconds?)", b)
}

// errEpoch refuses exactly 1970-01-01T00:00:00Z: an event time of zero
// means "now" in the log, and a zero timestamp is nearly always a
// sender's unset clock.
func errEpoch(b []byte) error {
	return lineErr(ReasonInvalidTimestamp, "timestamp %q is the Unix epoch itself, refused as an unset clock", b)
}

// parseDecimalSeconds reads [+-]digits[.digits] exactly. ok is false for
// any other syntax, which the caller then reads as a float.
func parseDecimalSeconds(b []byte) (ns int64, now, ok bool) {
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg = b[0] == '-'
		b = b[1:]
	}
	intPart, frac, _ := bytes.Cut(b, []byte("."))
	if len(intPart) == 0 && len(frac) == 0 {
		return 0, false, false
	}
	var sec int64
	for _, c := range intPart {
		if c < '0' || c > '9' {
			return 0, false, false
		}
		if sec >= maxSeconds {
			return 0, false, false // out of range: the float path says so
		}
		sec = sec*10 + int64(c-'0')
	}
	if sec >= maxSeconds {
		return 0, false, false
	}
	var sub int64
	scale := int64(1e9)
	for _, c := range frac {
		if c < '0' || c > '9' {
			return 0, false, false
		}
		if scale > 1 { // digits beyond nanoseconds are truncated
			scale /= 10
			sub += int64(c-'0') * scale
		}
	}
	if neg && sec == 1 {
		return 0, true, true
	}
	ns = sec*1e9 + sub
	if neg {
		ns = -ns
	}
	return ns, false, true
}

// isSpaceAt reports whether a whitespace character starts at b[i], as
// Python's str.split() sees whitespace (ASCII's, including the separators
// \x1c-\x1f, and Unicode's).
func isSpaceAt(b []byte, i int) bool {
	c := b[i]
	if c < utf8.RuneSelf {
		return asciiSpace[c]
	}
	r, _ := utf8.DecodeRune(b[i:])
	return unicode.IsSpace(r)
}

var asciiSpace = [utf8.RuneSelf]bool{' ': true, '\t': true, '\n': true, '\v': true, '\f': true, '\r': true,
	0x1c: true, 0x1d: true, 0x1e: true, 0x1f: true}

// skipSpace returns the index of the first non-space at or after i.
func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpaceAt(b, i) {
		if b[i] < utf8.RuneSelf {
			i++
		} else {
			_, n := utf8.DecodeRune(b[i:])
			i += n
		}
	}
	return i
}

// Lines calls fn with each line of a datagram or buffer: split on "\n",
// without the terminator or a "\r" before it. A last line without a
// terminator is a line too (a datagram ends where it ends).
func Lines(buf []byte, fn func(line []byte)) {
	for len(buf) > 0 {
		line := buf
		i := bytes.IndexByte(buf, '\n')
		if i >= 0 {
			line, buf = buf[:i], buf[i+1:]
		} else {
			buf = nil
		}
		fn(TrimCR(line))
	}
}

// TrimCR drops the "\r" of a CRLF line ending.
func TrimCR(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		return line[:n-1]
	}
	return line
}
