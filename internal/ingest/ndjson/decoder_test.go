package ndjson

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// decoded is what decoding an input yields: its values with their lines,
// then how it ended.
type decoded struct {
	values []string
	lines  []int
	err    error
}

func decodeAll(r io.Reader, opts Options) decoded {
	var out decoded
	d := NewDecoder(r, opts)
	for {
		v, err := d.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			out.err = err
			return out
		}
		out.values = append(out.values, string(v))
		out.lines = append(out.lines, d.Line())
	}
}

// describe renders a decoding the way the tables and golden files spell it.
func (d decoded) describe() string {
	var b strings.Builder
	for i, v := range d.values {
		fmt.Fprintf(&b, "%d: %s\n", d.lines[i], v)
	}
	if d.err != nil {
		fmt.Fprintf(&b, "error: %v\n", d.err)
	}
	return b.String()
}

func TestDecoder(t *testing.T) {
	big := `{"s":"` + strings.Repeat("x", 200<<10) + `"}`
	tests := []struct {
		name, in string
		opts     Options
		want     string
	}{
		{"empty", "", Options{}, ""},
		{"blank lines", "\n\n  \n", Options{}, ""},
		{"ndjson", "{\"a\":1}\n{\"b\":2}\n", Options{}, "1: {\"a\":1}\n2: {\"b\":2}\n"},
		{"no separator", `{"a":1}{"b":2}`, Options{}, "1: {\"a\":1}\n1: {\"b\":2}\n"},
		{"blank lines between", "{}\n\n\n[]\n", Options{}, "1: {}\n4: []\n"},
		{"crlf", "{\"a\":1}\r\n{\"b\":2}\r\n", Options{}, "1: {\"a\":1}\n2: {\"b\":2}\n"},
		{"no trailing newline", "{\"a\":1}\n{\"b\":2}", Options{}, "1: {\"a\":1}\n2: {\"b\":2}\n"},
		{"value across lines", "{\"a\":\n  1,\n \"b\": [1,\n2]}\n{\"c\":3}", Options{}, "1: {\"a\":\n  1,\n \"b\": [1,\n2]}\n5: {\"c\":3}\n"},
		{"scalars", "1 2.5e3\n-0 \"s\" true false null", Options{}, "1: 1\n1: 2.5e3\n2: -0\n2: \"s\"\n2: true\n2: false\n2: null\n"},
		{"scalar then object", `1{"a":1}"x"[2]`, Options{}, "1: 1\n1: {\"a\":1}\n1: \"x\"\n1: [2]\n"},
		{"utf8", `{"msg":"héllo wörld ✓ 🎉"}`, Options{}, "1: {\"msg\":\"héllo wörld ✓ 🎉\"}\n"},
		{"escaped newline", `{"msg":"a\nb\u00e9\"\\"}` + "\n2", Options{}, "1: {\"msg\":\"a\\nb\\u00e9\\\"\\\\\"}\n2: 2\n"},
		{"nested", `{"a":{"b":{"c":[1,{"d":null}]}}}`, Options{}, "1: {\"a\":{\"b\":{\"c\":[1,{\"d\":null}]}}}\n"},
		{"whitespace inside", " { \"a\" : [ 1 , 2 ] } ", Options{}, "1: { \"a\" : [ 1 , 2 ] }\n"},

		{"bad value on line 3", "{}\n{}\n{\"a\":}\n{}\n", Options{}, "1: {}\n2: {}\nerror: line 3: invalid JSON: invalid character '}' looking for the beginning of a value\n"},
		{"error line inside value", "{\"a\":1,\n\"b\":x}", Options{}, "error: line 2: invalid JSON: invalid character 'x' looking for the beginning of a value\n"},
		{"raw newline in string", "{\"a\":\"x\ny\"}", Options{}, "error: line 1: invalid JSON: invalid control character '\\n' in string (newlines in strings must be escaped)\n"},
		{"truncated", `{"a":1`, Options{}, "error: line 1: invalid JSON: unexpected end of input\n"},
		{"truncated string", `{"a":"x`, Options{}, "error: line 1: invalid JSON: unexpected end of input: unterminated string\n"},
		{"numbers run together", "12\n01", Options{}, "1: 12\nerror: line 2: invalid JSON: invalid character '1' after a top-level value\n"},
		{"literal run on", "truex", Options{}, "error: line 1: invalid JSON: invalid character 'x' after a top-level value\n"},
		{"NaN", `{"a":NaN}`, Options{}, "error: line 1: invalid JSON: invalid character 'N' looking for the beginning of a value\n"},
		{"bad escape", `"\x"`, Options{}, "error: line 1: invalid JSON: invalid escape 'x' in string\n"},
		{"bad utf8", "\"\xff\"", Options{}, "error: line 1: invalid JSON: invalid UTF-8 in string\n"},
		{"trailing comma", `[1,]`, Options{}, "error: line 1: invalid JSON: invalid character ']' looking for the beginning of a value\n"},
		{"single quotes", `{'a':1}`, Options{}, "error: line 1: invalid JSON: invalid character '\\'' looking for an object key\n"},
		{"too deep", strings.Repeat("[", MaxDepth+1), Options{}, fmt.Sprintf("error: line 1: invalid JSON: values nest deeper than %d levels\n", MaxDepth)},

		{"huge value", big + "\n{}", Options{MaxValueBytes: 1 << 20, BufferSize: 512}, "1: " + big + "\n2: {}\n"},
		{"value over limit", "{}\n\n" + big, Options{MaxValueBytes: 100 << 10, BufferSize: 512}, "1: {}\nerror: line 3: a value exceeds the limit of 102400 bytes\n"},
		{"complete value over limit", "{}\n" + `"` + strings.Repeat("y", 50) + `"`, Options{MaxValueBytes: 20}, "1: {}\nerror: line 2: a value exceeds the limit of 20 bytes\n"},

		{"array unwrapped", " [ {\"a\":1},\n2 , \"x\",[3]]\n", Options{UnwrapArray: true}, "1: {\"a\":1}\n2: 2\n2: \"x\"\n2: [3]\n"},
		{"empty array", "[]", Options{UnwrapArray: true}, ""},
		{"array not unwrapped", "[1,2]\n[3]", Options{}, "1: [1,2]\n2: [3]\n"},
		{"object with unwrap", "{\"a\":1}\n{\"b\":2}", Options{UnwrapArray: true}, "1: {\"a\":1}\n2: {\"b\":2}\n"},
		{"array unclosed", "[1,2", Options{UnwrapArray: true}, "1: 1\n1: 2\nerror: line 1: invalid JSON: unexpected end of input: the array is not closed\n"},
		{"array trailing data", "[1]\n{}", Options{UnwrapArray: true}, "1: 1\nerror: line 2: invalid JSON: invalid character '{' after the top-level array\n"},
		{"array bad separator", "[1 2]", Options{UnwrapArray: true}, "1: 1\nerror: line 1: invalid JSON: invalid character '2' after an array element\n"},
		{"array trailing comma", "[1,]", Options{UnwrapArray: true}, "1: 1\nerror: line 1: invalid JSON: invalid character ']' looking for the beginning of a value\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The result must not depend on how the input is split into reads.
			for _, r := range []struct {
				name string
				r    io.Reader
			}{
				{"whole", strings.NewReader(tt.in)},
				{"bytewise", iotest.OneByteReader(strings.NewReader(tt.in))},
				{"halves", iotest.HalfReader(strings.NewReader(tt.in))},
			} {
				got := decodeAll(r.r, tt.opts).describe()
				if len(got) > 1000 || len(tt.want) > 1000 {
					if got != tt.want {
						t.Errorf("%s: long output differs (%d vs %d bytes)", r.name, len(got), len(tt.want))
					}
					continue
				}
				if got != tt.want {
					t.Errorf("%s:\ngot:\n%s\nwant:\n%s", r.name, got, tt.want)
				}
			}
		})
	}
}

func TestDecoderReadError(t *testing.T) {
	boom := errors.New("boom")
	got := decodeAll(io.MultiReader(strings.NewReader("{}\n{\"a\":"), iotest.ErrReader(boom)), Options{})
	if len(got.values) != 1 || !errors.Is(got.err, boom) {
		t.Fatalf("got %+v, want one value then an error wrapping boom", got)
	}
}

func TestValues(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
		stopAt        int // break after this many values (0: never)
	}{
		{in: "1 {\"a\":2}\n\"x\"", want: `1|{"a":2}|"x"`},
		{in: "1 2 {", want: "1|2", err: "line 1: invalid JSON: unexpected end of input"},
		{in: "1 2 {", want: "1", stopAt: 1},
		{in: "", want: ""},
	} {
		var got []string
		var err error
		for v := range Values(NewDecoder(strings.NewReader(tc.in), Options{}).Next, &err) {
			got = append(got, string(v))
			if len(got) == tc.stopAt {
				break
			}
		}
		if strings.Join(got, "|") != tc.want || fmt.Sprint(err) != cmp.Or(tc.err, "<nil>") {
			t.Errorf("%q: values %q, err %v; want %q, %q", tc.in, got, err, tc.want, tc.err)
		}
	}
}
