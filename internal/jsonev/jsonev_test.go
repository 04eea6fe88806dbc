package jsonev

import (
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/chronostream/chronostream/event"
)

func TestMeta(t *testing.T) {
	ref := time.Date(2024, 7, 3, 5, 16, 55, 563839000, time.UTC).UnixNano()
	tests := []struct {
		body string
		time int64
		kind event.Kind
	}{
		{`{"time":"2024-07-03T15:16:55.563839+10:00","level":"INFO","msg":"hi mom"}`, ref, event.KindLog},
		{`{"ts":1720000000,"type":"metric","v":1}`, 1720000000e9, event.KindMetric},
		{`{"timestamp":1720000000123,"kind":"trace"}`, 1720000000123e6, event.KindTrace},
		{`{"time":1720000000123456,"kind":"nonsense"}`, 1720000000123456e3, event.KindEvent},
		{`{"time":1720000000123456789}`, 1720000000123456789, event.KindEvent},
		{`{"time":"yesterday","@timestamp":"2024-07-03T05:16:55.563839Z"}`, ref, event.KindEvent},
		{`[1,2]`, 0, event.KindEvent},
		{`"text"`, 0, event.KindEvent},
	}
	var p fastjson.Parser
	for _, tt := range tests {
		ts, kind, err := Meta(&p, []byte(tt.body))
		if err != nil {
			t.Fatalf("%s: %v", tt.body, err)
		}
		if ts != tt.time || kind != tt.kind {
			t.Errorf("%s: got time %d kind %v, want %d %v", tt.body, ts, kind, tt.time, tt.kind)
		}
	}
	if _, _, err := Meta(&p, []byte(`{"a":`)); err == nil {
		t.Error("truncated JSON: want an error")
	}
}

func TestExpand(t *testing.T) {
	var p fastjson.Parser
	e := event.Event{Format: event.FormatJSON, Body: []byte(
		`{"time":"2024-07-03T05:16:55Z","kind":"metric","tags":{"host":"a","n":1},"cpu":0.5,"n":-3,"big":18446744073709551615,"ok":true,"msg":"hi","nested":{"x":1},"arr":[1],"nil":null}`)}
	Expand(&p, &e)
	if len(e.Tags) != 1 || e.Tags["host"] != "a" {
		t.Errorf("tags = %v", e.Tags)
	}
	want := map[string]event.Value{
		"cpu": event.Float(0.5), "n": event.Int(-3), "big": event.Float(18446744073709551615),
		"ok": event.Bool(true), "msg": event.String("hi"),
	}
	if len(e.Fields) != len(want) {
		t.Errorf("fields = %v", e.Fields)
	}
	for k, v := range want {
		if e.Fields[k] != v {
			t.Errorf("field %s = %v, want %v", k, e.Fields[k], v)
		}
	}
	s := event.Event{Format: event.FormatJSON, Body: []byte(`42.5`)}
	Expand(&p, &s)
	if s.Fields["value"] != event.Float(42.5) {
		t.Errorf("scalar body: fields = %v", s.Fields)
	}
}

func FuzzJSON(f *testing.F) {
	for _, s := range []string{`{"time":"2024-07-03T05:16:55Z","tags":{"a":"b"},"x":1}`, `1e400`, `{"ts":-1}`, `[{"a":1}]`, `"s"`, `{"time":1e300}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p fastjson.Parser
		if _, _, err := Meta(&p, b); err != nil {
			return
		}
		e := event.Event{Format: event.FormatJSON, Body: b}
		Expand(&p, &e)
		for k, v := range e.Fields {
			if v.Type() == 0 {
				t.Fatalf("field %q has no type", k)
			}
		}
	})
}

func TestUnixRange(t *testing.T) {
	for _, tt := range []struct {
		i  int64
		ok bool
	}{{0, false}, {-1, false}, {9_223_372_036, true}, {9_223_372_037, false}, {99_999_999_999, false}, {1 << 62, true}} {
		if _, ok := UnixInt(tt.i); ok != tt.ok {
			t.Errorf("UnixInt(%d) ok=%v, want %v", tt.i, ok, tt.ok)
		}
	}
	if _, ok := UnixNumber(1e300); ok {
		t.Error("UnixNumber(1e300) accepted")
	}
	if ns, ok := UnixNumber(1.5); !ok || ns != 1_500_000_000 {
		t.Errorf("UnixNumber(1.5) = %d, %v", ns, ok)
	}
}
