package ndjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/chronostream/chronostream/internal/ingest/jsonscan"
)

// chunkReader splits its input into reads of sizes taken from a schedule,
// so that fuzzing also explores where the input is split.
type chunkReader struct {
	b     []byte
	sizes []byte
	i     int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(r.sizes) > 0 {
		n = int(r.sizes[r.i%len(r.sizes)]) + 1
		r.i++
	}
	n = min(n, len(p), len(r.b))
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

func FuzzDecoder(f *testing.F) {
	for _, s := range []string{
		"{\"a\":1}\n{\"b\":2}\n", `{"a":1}{"b":2}`, "1 2 3", "\"x\"\"y\"", "[1,[2,{\"c\":null}]]\r\n",
		"{\"msg\":\"a\\nb\\u00e9 ✓\"}", "12\n01", "truefalse", "{\"a\":NaN}", "\"\xff\"", "[1,]", "-0.5e+10 1E3",
		"{\"time\":\"2024-07-03T15:16:55Z\",\"level\":\"INFO\",\"msg\":\"hi\"}\n", " [ {\"a\":1} , 2 ] ", "\"\\ud800\"",
	} {
		f.Add([]byte(s), []byte{0, 3, 7}, false)
		f.Add([]byte(s), []byte(nil), true)
	}
	f.Fuzz(func(t *testing.T, in, sizes []byte, unwrap bool) {
		opts := Options{MaxValueBytes: 4096, BufferSize: 16, UnwrapArray: unwrap}
		whole := decodeAll(bytes.NewReader(in), opts)
		split := decodeAll(&chunkReader{b: in, sizes: sizes}, opts)
		bytewise := decodeAll(iotest.OneByteReader(bytes.NewReader(in)), opts)
		if whole.describe() != split.describe() || whole.describe() != bytewise.describe() {
			t.Fatalf("result depends on how the input is read:\nwhole:\n%s\nsplit:\n%s\nbytewise:\n%s", whole.describe(), split.describe(), bytewise.describe())
		}
		for _, v := range whole.values {
			if !json.Valid([]byte(v)) || !utf8.ValidString(v) || !jsonscan.Valid([]byte(v)) {
				t.Fatalf("yielded invalid JSON %q", v)
			}
			if v != string(bytes.TrimSpace([]byte(v))) {
				t.Fatalf("yielded untrimmed value %q", v)
			}
		}
		var se *SyntaxError
		if whole.err != nil && !errors.As(whole.err, &se) && !errors.Is(whole.err, ErrTooLarge) {
			t.Fatalf("unexpected error type %T: %v", whole.err, whole.err)
		}
		if se != nil && (se.Line < 1 || se.Offset < 0 || se.Offset > int64(len(in))) {
			t.Fatalf("error position out of range: %+v (input %d bytes)", se, len(in))
		}
		// One valid value must come back whole (and rejected only for
		// nesting deeper than fastjson can parse or for being too large).
		if !unwrap && json.Valid(in) && utf8.Valid(in) {
			if whole.err == nil {
				if len(whole.values) != 1 || whole.values[0] != string(bytes.TrimSpace(in)) {
					t.Fatalf("valid input %q decoded as %q", in, whole.values)
				}
			} else if !errors.Is(whole.err, ErrTooLarge) && !bytes.Contains([]byte(whole.err.Error()), []byte("nest deeper")) {
				t.Fatalf("valid input %q rejected: %v", in, whole.err)
			}
		}
	})
}
