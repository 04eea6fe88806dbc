package jsonev

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestAppendString(t *testing.T) {
	for in, want := range map[string]string{
		"plain":          `"plain"`,
		"q\"b\\":         `"q\"b\\"`,
		"\n\r\t\x01\x00": `"\n\r\t\u0001\u0000"`,
		"a\xffb":         `"a\ufffdb"`,
		"\xe2\x82":       `"\ufffd\ufffd"`,
		"x\u2028y\u2029": `"x\u2028y\u2029"`,
		"<&>é😀":          `"<&>é😀"`,
	} {
		if got := string(AppendString(nil, in)); got != want {
			t.Errorf("AppendString(%q) = %s, want %s", in, got, want)
		}
		if got := string(AppendString(nil, []byte(in))); got != want {
			t.Errorf("AppendString([]byte %q) = %s, want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal(AppendString(nil, in), &back); err != nil {
			t.Errorf("%q: not JSON: %v", in, err)
		}
	}
	if got, want := string(AppendStringEscapeHTML(nil, "<&>é\x01\n\u2028")), `"\u003c\u0026\u003eé\u0001\n\u2028"`; got != want {
		t.Errorf("AppendStringEscapeHTML = %s, want %s", got, want)
	}
	if n := testing.AllocsPerRun(100, func() { _ = AppendString(make([]byte, 0, 64), []byte("héllo\u2028")) }); n > 1 {
		t.Errorf("%v allocations", n)
	}
}

// BenchmarkAppendString writes a log message of mostly plain ASCII with a
// few escapes and non-ASCII runes, as bodies hold them.
func BenchmarkAppendString(b *testing.B) {
	s := `GET /api/v1/orders?id=42&page=<2> served in 12 ms by "web-1"` + "\tété\n"
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		buf = AppendString(buf[:0], s)
	}
}

// FuzzAppendString: both escapers write what encoding/json writes (with and
// without its HTML escaping), but for \b and \f, which today's Go writes by
// name and the escapers as \u0008 and \u000c, as influxd's older Go did.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"b\\", "<&>", "\x00\x1f\x7f", "a\xffb\xe2\x82", "\u2028\u2029é😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsAny(s, "\b\f") {
			t.Skip()
		}
		for _, html := range []bool{false, true} {
			var want bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetEscapeHTML(html)
			if err := enc.Encode(s); err != nil {
				t.Fatal(err)
			}
			got := AppendString(nil, s)
			if html {
				got = AppendStringEscapeHTML(nil, s)
			}
			if w := strings.TrimSuffix(want.String(), "\n"); string(got) != w {
				t.Fatalf("html %v: %q written %s, encoding/json writes %s", html, s, got, w)
			}
		}
	})
}
