// Package jsonscan validates JSON strictly (RFC 8259, UTF-8 included) and
// finds where a value ends in a stream, without building it. It is shared by
// the protocols that carry JSON (NDJSON, WebSocket messages, and later
// OTLP/JSON) so that every body marked as JSON in the log was judged by the
// same rules.
package jsonscan

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// MaxDepth bounds how deeply values may nest. It stays below fastjson's
// limit (300) so that every value the decoder accepts can also be parsed
// for its time and kind.
const MaxDepth = 256

// ErrMore says that the input ends inside a value and more is needed.
var ErrMore = errors.New("jsonscan: need more input")

// Error is a syntax error at a byte offset of the scanned slice.
type Error struct {
	Off int
	Msg string
}

func (e *Error) Error() string { return e.Msg }

// Scanner finds where one JSON value ends, validating it strictly (RFC 8259,
// UTF-8 included). fastjson alone is not enough here: it accepts NaN, Inf,
// invalid escapes and control characters in strings, and the log must only
// ever hold bodies marked as JSON that every reader can parse.
type Scanner struct {
	stack []byte // '{' or '[' for each open container
}

// Scanner states between tokens.
const (
	stValue      = iota // a value is expected
	stValueOrEnd        // just after '[': a value or ']'
	stKeyOrEnd          // just after '{': a key or '}'
	stKey               // after ',' in an object: a key
	stAfter             // after a value inside a container: ',' or the closer
)

// Value returns the length of the JSON value at the start of b, which must
// not start with whitespace. Unless atEOF, a value that reaches the end of b
// is incomplete (ErrMore): a number or literal could go on, or be followed
// by a byte that makes it invalid, so the answer must not depend on where
// the input happened to be split.
func (s *Scanner) Value(b []byte, atEOF bool) (int, error) {
	s.stack = s.stack[:0]
	more := func(i int) error {
		if atEOF {
			return &Error{Off: i, Msg: "unexpected end of input"}
		}
		return ErrMore
	}
	i, state := 0, stValue
	for {
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, more(i)
		}
		c := b[i]
		switch state {
		case stKeyOrEnd, stKey:
			if c == '}' && state == stKeyOrEnd {
				s.stack = s.stack[:len(s.stack)-1]
				i++
				state = stAfter
				break
			}
			if c != '"' {
				return 0, &Error{Off: i, Msg: fmt.Sprintf("invalid character %s looking for an object key", QuoteChar(c))}
			}
			j, err := scanString(b, i, atEOF)
			if err != nil {
				return 0, err
			}
			i = skipWS(b, j)
			if i >= len(b) {
				return 0, more(i)
			}
			if b[i] != ':' {
				return 0, &Error{Off: i, Msg: fmt.Sprintf("invalid character %s after an object key", QuoteChar(b[i]))}
			}
			i++
			state = stValue
		case stAfter:
			top := s.stack[len(s.stack)-1]
			switch {
			case c == ',':
				i++
				if top == '{' {
					state = stKey
				} else {
					state = stValue
				}
			case c == '}' && top == '{', c == ']' && top == '[':
				s.stack = s.stack[:len(s.stack)-1]
				i++
			default:
				what := "array element"
				if top == '{' {
					what = "object member"
				}
				return 0, &Error{Off: i, Msg: fmt.Sprintf("invalid character %s after an %s", QuoteChar(c), what)}
			}
		case stValue, stValueOrEnd:
			if c == ']' && state == stValueOrEnd {
				s.stack = s.stack[:len(s.stack)-1]
				i++
				state = stAfter
				break
			}
			var j int
			var err error
			scalar := false
			switch {
			case c == '{' || c == '[':
				if len(s.stack) >= MaxDepth {
					return 0, &Error{Off: i, Msg: fmt.Sprintf("values nest deeper than %d levels", MaxDepth)}
				}
				s.stack = append(s.stack, c)
				if c == '{' {
					state = stKeyOrEnd
				} else {
					state = stValueOrEnd
				}
				i++
				continue
			case c == '"':
				j, err = scanString(b, i, atEOF)
			case c == '-' || c >= '0' && c <= '9':
				j, err = scanNumber(b, i, atEOF)
				scalar = true
			case c == 't':
				j, err = scanLiteral(b, i, "true", atEOF)
				scalar = true
			case c == 'f':
				j, err = scanLiteral(b, i, "false", atEOF)
				scalar = true
			case c == 'n':
				j, err = scanLiteral(b, i, "null", atEOF)
				scalar = true
			default:
				return 0, &Error{Off: i, Msg: fmt.Sprintf("invalid character %s looking for the beginning of a value", QuoteChar(c))}
			}
			if err != nil {
				return 0, err
			}
			i = j
			if len(s.stack) == 0 && scalar && i == len(b) && !atEOF {
				return 0, ErrMore
			}
			state = stAfter
		}
		if state == stAfter && len(s.stack) == 0 {
			return i, nil
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && IsSpace(b[i]) {
		i++
	}
	return i
}

func IsSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

// strPlain marks the bytes a string may hold without a closer look.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString returns the offset just past the string starting at b[i] ('"').
func scanString(b []byte, i int, atEOF bool) (int, error) {
	j := i + 1
	for {
		for j < len(b) && strPlain[b[j]] {
			j++
		}
		if j >= len(b) {
			break
		}
		switch c := b[j]; {
		case c == '"':
			return j + 1, nil
		case c == '\\':
			if j+1 >= len(b) {
				return 0, moreAt(j+1, atEOF, "unterminated string")
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				for k := 2; k < 6; k++ {
					if j+k >= len(b) {
						return 0, moreAt(j+k, atEOF, "unterminated string")
					}
					if !isHex(b[j+k]) {
						return 0, &Error{Off: j + k, Msg: fmt.Sprintf("invalid character %s in \\u escape", QuoteChar(b[j+k]))}
					}
				}
				j += 6
			default:
				return 0, &Error{Off: j + 1, Msg: fmt.Sprintf("invalid escape %s in string", QuoteChar(b[j+1]))}
			}
		case c < 0x20:
			return 0, &Error{Off: j, Msg: fmt.Sprintf("invalid control character %s in string (newlines in strings must be escaped)", QuoteChar(c))}
		default: // c >= 0x80
			r, size := utf8.DecodeRune(b[j:])
			if r == utf8.RuneError && size <= 1 {
				if !atEOF && !utf8.FullRune(b[j:]) {
					return 0, ErrMore
				}
				return 0, &Error{Off: j, Msg: "invalid UTF-8 in string"}
			}
			j += size
		}
	}
	return 0, moreAt(j, atEOF, "unterminated string")
}

func moreAt(off int, atEOF bool, msg string) error {
	if atEOF {
		return &Error{Off: off, Msg: "unexpected end of input: " + msg}
	}
	return ErrMore
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// scanNumber returns the offset just past the number starting at b[i].
func scanNumber(b []byte, i int, atEOF bool) (int, error) {
	j := i
	if b[j] == '-' {
		j++
	}
	digits := func(what string) error {
		if j >= len(b) {
			return moreAt(j, atEOF, "number ends before its "+what)
		}
		if !isDigit(b[j]) {
			return &Error{Off: j, Msg: fmt.Sprintf("invalid character %s in number: a digit must start its %s", QuoteChar(b[j]), what)}
		}
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		return nil
	}
	if j < len(b) && b[j] == '0' {
		j++
	} else if err := digits("integer part"); err != nil {
		return 0, err
	}
	if j < len(b) && b[j] == '.' {
		j++
		if err := digits("fraction"); err != nil {
			return 0, err
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if err := digits("exponent"); err != nil {
			return 0, err
		}
	}
	return j, nil
}

func scanLiteral(b []byte, i int, lit string, atEOF bool) (int, error) {
	for k := 0; k < len(lit); k++ {
		if i+k >= len(b) {
			return 0, moreAt(i+k, atEOF, "incomplete "+lit)
		}
		if b[i+k] != lit[k] {
			return 0, &Error{Off: i + k, Msg: fmt.Sprintf("invalid character %s in literal %s", QuoteChar(b[i+k]), lit)}
		}
	}
	return i + len(lit), nil
}

// QuoteChar shows a byte in an error message: quoted if ASCII, else in hex.
func QuoteChar(c byte) string {
	if c < utf8.RuneSelf {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// Valid reports whether b is exactly one JSON value, optionally surrounded
// by whitespace, by the same strict rules as Scanner.
func Valid(b []byte) bool {
	start := skipWS(b, 0)
	end := len(b)
	for end > start && IsSpace(b[end-1]) {
		end--
	}
	if start == end {
		return false
	}
	var s Scanner
	n, err := s.Value(b[start:end], true)
	return err == nil && n == end-start
}

// TrimSpace returns b without the JSON whitespace around it, capped so that
// appending to the result cannot overwrite what followed it.
func TrimSpace(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && IsSpace(b[i]) {
		i++
	}
	for j > i && IsSpace(b[j-1]) {
		j--
	}
	return b[i:j:j]
}
