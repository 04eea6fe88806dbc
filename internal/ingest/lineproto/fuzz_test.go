package lineproto

import (
	"bytes"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/chronostream/chronostream/event"
)

// FuzzParse checks that no input panics the scanner, Parse or Expand; that
// whatever Parse accepts Expand decodes (ingest must never store a line a
// read cannot decode); and that re-encoding an accepted line gives the same
// measurement, tags and fields back.
func FuzzParse(f *testing.F) {
	if in, err := os.ReadFile(filepath.Join("testdata", "edge.lp")); err == nil {
		for _, l := range bytes.Split(in, []byte("\n")) {
			f.Add(l, uint8(0))
		}
	}
	f.Add([]byte(tsbsLine(1, 1)), uint8(2))
	f.Add([]byte("a,b=c d=1 1\nx y=\"z\""), uint8(5))
	precs := []Precision{Nanosecond, Microsecond, Millisecond, Second, Minute, Hour}
	f.Fuzz(func(t *testing.T, body []byte, pi uint8) {
		if len(body) > 10240 {
			return // limits are tested apart
		}
		prec := precs[int(pi)%len(precs)]
		sc := NewScanner(bytes.NewReader(body), 512)
		for {
			line, _, err := sc.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				continue // a line over the limit
			}
			m, ts, err := Parse(line, prec, 1e18)
			if err != nil {
				continue
			}
			if len(m) == 0 || ts < MinTime || ts > MaxTime {
				t.Fatalf("Parse(%q) accepted measurement %q, time %d", line, m, ts)
			}
			e := event.Event{Format: event.FormatLine, Body: line, Time: ts}
			if err := Expand(&e); err != nil {
				t.Fatalf("Parse accepted %q but Expand failed: %v", line, err)
			}
			if len(e.Fields) == 0 {
				t.Fatalf("%q expanded to no fields", line)
			}
			for k, v := range e.Fields {
				if f, ok := v.Number(); ok && v.Type() == event.TypeFloat && (math.IsNaN(f) || math.IsInf(f, 0)) {
					t.Fatalf("%q: field %q is %v", line, k, f)
				}
			}
			// Round trip: re-encode, parse and expand again.
			again := AppendLine(nil, string(m), e.Tags, e.Fields, ts)
			m2, ts2, err := Parse(again, Nanosecond, 0)
			if err != nil {
				t.Fatalf("%q re-encoded as %q fails: %v", line, again, err)
			}
			e2 := event.Event{Format: event.FormatLine, Body: again}
			if err := Expand(&e2); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m, m2) || ts != ts2 || !maps.Equal(e.Tags, e2.Tags) || !maps.Equal(e.Fields, e2.Fields) {
				t.Fatalf("round trip of %q via %q: %q %d %v %v != %q %d %v %v", line, again, m, ts, e.Tags, e.Fields, m2, ts2, e2.Tags, e2.Fields)
			}
		}
	})
}
