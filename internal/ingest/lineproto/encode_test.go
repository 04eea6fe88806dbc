package lineproto

// AppendLine and appendEscaped write line protocol for tests: the server
// stores the lines it receives verbatim and never encodes one.

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/chronostream/chronostream/event"
)

// AppendLine appends one line of line protocol to dst, escaping names and
// string values so that Parse and Expand give them back; tags and fields
// are written in key order. A zero-length tags map writes no tags; t is in
// nanoseconds.
func AppendLine(dst []byte, measurement string, tags map[string]string, fields map[string]event.Value, t int64) []byte {
	dst = appendEscaped(dst, measurement, false)
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		dst = append(dst, ',')
		dst = appendEscaped(dst, k, true)
		dst = append(dst, '=')
		dst = appendEscaped(dst, tags[k], true)
	}
	sep := byte(' ')
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		dst = append(dst, sep)
		sep = ','
		dst = appendEscaped(dst, k, true)
		dst = append(dst, '=')
		v := fields[k]
		switch v.Type() {
		case event.TypeFloat:
			dst = strconv.AppendFloat(dst, v.FloatValue(), 'g', -1, 64)
		case event.TypeInt:
			dst = strconv.AppendInt(dst, v.IntValue(), 10)
			dst = append(dst, 'i')
		case event.TypeUint:
			dst = strconv.AppendUint(dst, v.UintValue(), 10)
			dst = append(dst, 'u')
		case event.TypeBool:
			dst = strconv.AppendBool(dst, v.BoolValue())
		default:
			dst = append(dst, '"')
			s := v.StringValue()
			for i := 0; i < len(s); i++ {
				if s[i] == '"' || s[i] == '\\' {
					dst = append(dst, '\\')
				}
				dst = append(dst, s[i])
			}
			dst = append(dst, '"')
		}
	}
	dst = append(dst, ' ')
	return strconv.AppendInt(dst, t, 10)
}

func appendEscaped(dst []byte, s string, key bool) []byte {
	if !strings.ContainsAny(s, ", =\\") {
		return append(dst, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ',' || c == ' ' || c == '\\' || key && c == '=':
			dst = append(dst, '\\', c)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
