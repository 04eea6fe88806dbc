package trendlines

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePoint(t *testing.T) {
	tests := []struct {
		body   string
		metric string
		value  float64
		time   int64
		err    string // substring of the error; "" for success
	}{
		{body: `{"metric": "foo.bar", "value": 52.88, "time": 1700000000}`, metric: "foo.bar", value: 52.88, time: 1700000000e9},
		{body: `{"metric": "foo.bar", "value": 52}`, metric: "foo.bar", value: 52},
		{body: `{"metric": "foo.bar", "value": 52, "time": null}`, metric: "foo.bar", value: 52},
		{body: `{"metric": "foo.bar", "value": "52.5", "time": "1700000000"}`, metric: "foo.bar", value: 52.5, time: 1700000000e9},
		{body: `{"metric": "foo.bar", "value": 1, "time": 1700000000.5}`, metric: "foo.bar", value: 1, time: 1700000000500000000},
		{body: `{"metric": "foo.bar", "value": 1, "timestamp": "2023-11-14T22:13:20"}`, metric: "foo.bar", value: 1, time: 1700000000e9},
		{body: `{"metric": "foo.bar", "value": 1, "time": "2023-11-14T22:13:20.5Z"}`, metric: "foo.bar", value: 1, time: 1700000000500000000},
		{body: `{"metric": "a b/c.d ü", "value": -1e3, "units": "ignored"}`, metric: "a b/c.d ü", value: -1000},
		{body: `{"metric": "x", "value": 1, "value": 2}`, metric: "x", value: 2},
		{body: ` {"metric": "x", "value": 1} `, metric: "x", value: 1},
		{body: `{"value": 10}`, err: "Missing required key. Required keys are:"},
		{body: `{"metric": "x"}`, err: "Missing required key"},
		{body: `{"metric": "x", "value": 1`, err: "invalid JSON"},
		{body: `{"metric": "x", "value": 1}{}`, err: "invalid JSON"},
		{body: `[1]`, err: "not a JSON object"},
		{body: ``, err: "empty"},
		{body: `{"metric": 5, "value": 1}`, err: `"metric" must be a string`},
		{body: `{"metric": null, "value": 1}`, err: `"metric" must be a string`},
		{body: `{"metric": "", "value": 1}`, err: `story name is empty`},
		{body: `{"metric": "x", "value": "abc"}`, err: `"value" must be a number`},
		{body: `{"metric": "x", "value": true}`, err: `"value" must be a number`},
		{body: `{"metric": "x", "value": "NaN"}`, err: `"value" must be a number`},
		{body: `{"metric": "x", "value": 1e999}`, err: `"value" must be`},
		{body: `{"metric": "x", "value": 1, "time": "yesterday"}`, err: `"time" must be Unix seconds`},
		{body: `{"metric": "x", "value": 1, "time": 1700000000000}`, err: `out of range`},
		{body: `{"metric": "x", "value": 1, "time": 0}`, err: `epoch`},
		{body: "{\"metric\": \"\xff\", \"value\": 1}", err: `UTF-8`},
	}
	for _, tt := range tests {
		p, err := ParsePoint([]byte(tt.body))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParsePoint(%s) = %+v, %v; want an error with %q", tt.body, p, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePoint(%s): %v", tt.body, err)
			continue
		}
		if p.Metric != tt.metric || p.Value != tt.value || p.Time != tt.time {
			t.Errorf("ParsePoint(%s) = %+v, want %q %v %d", tt.body, p, tt.metric, tt.value, tt.time)
		}
	}
	if _, err := ParsePoint([]byte(`{"value":1}`)); !errors.Is(err, ErrMissingKey) {
		t.Errorf("a missing key is not ErrMissingKey: %v", err)
	}
}

func TestAppendPyFloat(t *testing.T) {
	for v, want := range map[float64]string{15: "15.0", 52.88: "52.88", -0.5: "-0.5", 1e16: "1e+16", 1.5e-5: "1.5e-05", 0: "0.0", 123456789: "123456789.0"} {
		if got := string(appendPyFloat(nil, v)); got != want {
			t.Errorf("appendPyFloat(%v) = %s, want %s", v, got, want)
		}
	}
}
