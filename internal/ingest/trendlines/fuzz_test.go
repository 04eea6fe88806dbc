package trendlines

import (
	"errors"
	"math"
	"testing"
	"unicode/utf8"
)

// FuzzParsePoint checks that no body panics ParsePoint and that what it
// accepts is storable: a valid story name, a finite value.
func FuzzParsePoint(f *testing.F) {
	for _, s := range []string{
		`{"metric": "foo.bar", "value": 52.88, "time": 1700000000}`, `{"value": 1}`, `{"metric":"x","value":"1e3","time":"2023-11-14T22:13:20"}`,
		`[]`, `{"metric":"x","value":1,"time":-1.5}`, `{"metric":"\u00e9","value":-0}`, `nul`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParsePoint(body)
		if err != nil {
			var ie *InvalidError
			if !errors.As(err, &ie) && !errors.Is(err, ErrMissingKey) {
				t.Fatalf("ParsePoint(%q): unexpected error type %T: %v", body, err, err)
			}
			return
		}
		if p.Metric == "" || !utf8.ValidString(p.Metric) || math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			t.Fatalf("ParsePoint(%q) accepted %+v", body, p)
		}
	})
}
