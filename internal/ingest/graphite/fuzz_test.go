package graphite

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks that no line panics Parse, that every refusal carries a
// reason, and that what it accepts holds the protocol's invariants.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"foo.bar 52.88 1700000000", "foo 1", "foo 1 -1", "a;b=c;d=e 1 2.5", "a;b 1",
		"x nan", "x inf 1e9", " \t\r", "\xff 1", "a 1 1700000000.123456789123", "~a;t=~v 1",
		"a 1_0 0x1p3", "a\u00a01\u20031",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var s Sample
		err := Parse(line, &s)
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) || le.Reason == "" {
				t.Fatalf("Parse(%q): error without a reason: %v", line, err)
			}
			return
		}
		if math.IsNaN(s.Value) {
			t.Fatalf("Parse(%q) accepted NaN", line)
		}
		if len(s.Name) == 0 || !utf8.Valid(s.Name) {
			t.Fatalf("Parse(%q) accepted name %q", line, s.Name)
		}
		if bytes.ContainsAny(s.Name, " \t\n") {
			t.Fatalf("Parse(%q): name %q holds whitespace", line, s.Name)
		}
		for i, tg := range s.Tags {
			if len(tg.Key) == 0 || len(tg.Value) == 0 || tg.Value[0] == '~' || bytes.ContainsAny(tg.Key, ";!^=") || bytes.IndexByte(tg.Value, ';') >= 0 {
				t.Fatalf("Parse(%q) accepted tag %q=%q", line, tg.Key, tg.Value)
			}
			if i > 0 && bytes.Compare(s.Tags[i-1].Key, tg.Key) >= 0 {
				t.Fatalf("Parse(%q): tags not sorted and unique: %q", line, s.Tags)
			}
		}
	})
}
