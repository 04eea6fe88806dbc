package jsonev

import (
	"encoding/json"
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
	if n := testing.AllocsPerRun(100, func() { _ = AppendString(make([]byte, 0, 64), []byte("héllo\u2028")) }); n > 1 {
		t.Errorf("%v allocations", n)
	}
}
