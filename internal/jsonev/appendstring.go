package jsonev

import "unicode/utf8"

// AppendString appends s as a JSON string: the one escaper of every
// hand-written JSON encoder (the read API, OTLP's and Forward's bodies,
// Vivo's exporter). '"', '\\' and control characters are escaped (\n, \r,
// \t by name, the rest as \u00XX); invalid UTF-8 becomes U+FFFD, as with
// encoding/json; U+2028 and U+2029 are escaped so that the output is also
// safe JavaScript. Other characters, '<', '>' and '&' included, are kept.
func AppendString[S ~string | ~[]byte](b []byte, s S) []byte {
	return appendString(b, s, &plainSafe)
}

// AppendStringEscapeHTML is AppendString that also escapes '<', '>' and
// '&' (as \u003c, \u003e and \u0026), as encoding/json does by default:
// InfluxDB's /query answers are written so, and must stay byte for byte
// what influxd writes.
func AppendStringEscapeHTML[S ~string | ~[]byte](b []byte, s S) []byte {
	return appendString(b, s, &htmlSafe)
}

// plainSafe and htmlSafe hold the bytes written as they are: printable
// ASCII but '"' and '\\' (and, in htmlSafe, '<', '>' and '&'). Bytes from
// utf8.RuneSelf on start a rune, which is checked on its own.
var plainSafe, htmlSafe = safeSets()

func safeSets() (plain, html [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		plain[c] = c != '"' && c != '\\'
		html[c] = plain[c] && c != '<' && c != '>' && c != '&'
	}
	return plain, html
}

func appendString[S ~string | ~[]byte](b []byte, s S, safe *[256]bool) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if safe[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			}
			i++
			start = i
			continue
		}
		// At most UTFMax bytes: a conversion the compiler keeps on the stack.
		r, size := utf8.DecodeRuneInString(string(s[i:min(len(s), i+utf8.UTFMax)]))
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&15])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
