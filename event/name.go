package event

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Name limits. Chronicle names become JetStream stream names (at most 255
// bytes once escaped, three bytes per escaped byte), story names subject tokens.
const (
	MaxChronicleName = 80
	MaxStoryName     = 1024
)

// ValidateChronicle reports whether name can name a chronicle: non-empty
// UTF-8 of at most MaxChronicleName bytes. Any character is allowed.
func ValidateChronicle(name string) error { return validateName("chronicle", name, MaxChronicleName) }

// ValidateStory reports whether name can name a story: non-empty UTF-8 of at
// most MaxStoryName bytes. Any character is allowed.
func ValidateStory(name string) error { return validateName("story", name, MaxStoryName) }

func validateName(what, name string, max int) error {
	switch {
	case name == "":
		return fmt.Errorf("%s name is empty", what)
	case len(name) > max:
		return fmt.Errorf("%s name is %d bytes long, the limit is %d", what, len(name), max)
	case !utf8.ValidString(name):
		return fmt.Errorf("%s name is not valid UTF-8", what)
	}
	return nil
}

// ValidStreamID reports whether id can name a client stream (the
// X-Chronostream-Stream header of a producer that numbers its events): 1 to
// 128 characters out of A-Z, a-z, 0-9, '-' and '_'. The server refuses
// other ids, so the Go client checks them before it sends any.
func ValidStreamID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// EncodeName escapes an arbitrary name into the characters that NATS subject
// tokens and JetStream stream names accept: ASCII letters, digits and '-' are
// kept, every other byte becomes '_' and two upper-case hex digits. The
// encoding is reversible and keeps distinct names distinct.
func EncodeName(name string) string {
	const hex = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(name); i++ {
		if plain(name[i]) {
			n++
		} else {
			n += 3
		}
	}
	if n == len(name) {
		return name
	}
	out := make([]byte, 0, n)
	for i := 0; i < len(name); i++ {
		c := name[i]
		if plain(c) {
			out = append(out, c)
		} else {
			out = append(out, '_', hex[c>>4], hex[c&15])
		}
	}
	return string(out)
}

// DecodeName reverses EncodeName.
func DecodeName(enc string) (string, error) {
	out := make([]byte, 0, len(enc))
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		switch {
		case plain(c):
			out = append(out, c)
		case c == '_' && i+2 < len(enc):
			hi, ok1 := unhex(enc[i+1])
			lo, ok2 := unhex(enc[i+2])
			if !ok1 || !ok2 {
				return "", errBadEncoding
			}
			out = append(out, hi<<4|lo)
			i += 2
		default:
			return "", errBadEncoding
		}
	}
	return string(out), nil
}

var errBadEncoding = errors.New("event: malformed encoded name")

func plain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
