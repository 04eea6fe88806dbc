package tsdb

import (
	"slices"
	"testing"
	"time"

	"github.com/chronostream/chronostream/event"
)

// Tag values holding the separators of a series key are distinct series,
// sorted by the escaped key as InfluxDB sorts them.
func TestSeriesKeyEscapesSeparators(t *testing.T) {
	db := NewDB("x", []time.Duration{time.Hour})
	for i, tags := range []map[string]string{
		{"a": "b,c=d"},
		{"a": "b", "c": "d"},
		{"a": "h2"},
		{"a": "h 1"},
		{"a=b": "c"},
	} {
		db.Insert("m", tags, 1, map[string]event.Value{"v": event.Float(float64(i))})
	}
	var keys []string
	for _, s := range db.Measurement("m").Series() {
		keys = append(keys, s.Key)
		if c := s.Column("v"); c == nil || c.Stored() != 1 {
			t.Errorf("series %q holds %v, want one point", s.Key, c)
		}
	}
	// influxd's order: byte order of the escaped keys ('2' < '\\').
	want := []string{`a=b,c=d`, `a=b\,c\=d`, `a=h2`, `a=h\ 1`, `a\=b=c`}
	if !slices.Equal(keys, want) {
		t.Errorf("series keys %q, want %q", keys, want)
	}
}
