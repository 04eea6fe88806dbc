package vivo

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/chronostream/chronostream/internal/ingest/ndjson"
)

func TestTagFromPath(t *testing.T) {
	for in, want := range map[string]string{
		"":              DefaultTag,
		"/":             DefaultTag,
		"app.log":       "app.log",
		"/app.log":      "app.log",
		"a/b":           "a_b",
		"a%20b":         "a_20b",
		"kube-system_x": "kube_system_x",
		"héllo":         "h__llo",
	} {
		if got := TagFromPath(in); got != want {
			t.Errorf("TagFromPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseChronicle(t *testing.T) {
	m := map[Signal]string{}
	for _, v := range []string{"all", "traces=otel", "metrics=telegraf"} {
		if err := ParseChronicle(m, v); err != nil {
			t.Fatal(err)
		}
	}
	if m[Logs] != "all" || m[Metrics] != "telegraf" || m[Traces] != "otel" {
		t.Errorf("%v", m)
	}
	for _, bad := range []string{"spans=x", "logs=", ""} {
		if err := ParseChronicle(m, bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDecoder(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		fail string
	}{
		{`{"a":1}`, 1, ""},
		{`[{"a":1},{"b":[1,2]}]`, 2, ""},
		{"{\"a\":1}\n{\"b\":2}\r\n{\"c\":3}", 3, ""},
		{`{"a":1}{"b":2}`, 2, ""},
		{`[]`, 0, ""},
		{`[{"a":1}, [1]]`, 1, "not an array"},
		{`{"a":1} 5`, 1, "not a number"},
		{`null`, 0, "not null"},
		{`{"a":tru}`, 0, "invalid JSON"},
	}
	for _, tt := range tests {
		d := NewDecoder(strings.NewReader(tt.in), 1<<10)
		n := 0
		var err error
		for {
			if _, err = d.Next(); err != nil {
				break
			}
			n++
		}
		if n != tt.n {
			t.Errorf("%q: %d records, want %d", tt.in, n, tt.n)
		}
		if tt.fail == "" && err != io.EOF || tt.fail != "" && (err == io.EOF || !strings.Contains(err.Error(), tt.fail)) {
			t.Errorf("%q: error %v, want %q", tt.in, err, tt.fail)
		}
	}
}

// FuzzDecoder: whatever the body, the decoder ends (EOF or an error) without
// panicking, and each record it yields is one valid JSON object.
func FuzzDecoder(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[{"a":1},{"b":2}]`, "{}\n{}", `[1]`, `{"a":"\u00e9"}`, `[{"a":[{"b":{}}]}]`, `[`, `{"a":1}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewDecoder(strings.NewReader(string(in)), 256)
		for range len(in) + 2 {
			v, err := d.Next()
			if err != nil {
				var no *NotObjectError
				var se *ndjson.SyntaxError
				var tl *ndjson.TooLargeError
				if err != io.EOF && !errors.As(err, &no) && !errors.As(err, &se) && !errors.As(err, &tl) {
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				return
			}
			if len(v) == 0 || v[0] != '{' || v[len(v)-1] != '}' || !jsonValid(v) {
				t.Fatalf("record %q is not a JSON object", v)
			}
		}
		t.Fatalf("the decoder yields more records than the input has bytes")
	})
}
