package graphite

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// describe renders the outcome of Parse for golden files.
func describe(line []byte) string {
	var s Sample
	err := Parse(line, &s)
	if err != nil {
		var le *LineError
		if !errors.As(err, &le) {
			return "UNEXPECTED ERROR TYPE: " + err.Error()
		}
		return "error " + le.Reason + ": " + le.Msg
	}
	out := struct {
		Name  string            `json:"name"`
		Tags  map[string]string `json:"tags,omitempty"`
		Value string            `json:"value"`
		Time  int64             `json:"time_ns"`
	}{Name: string(s.Name), Value: strconv.FormatFloat(s.Value, 'g', -1, 64), Time: s.Time}
	if len(s.Tags) > 0 {
		out.Tags = map[string]string{}
		for _, t := range s.Tags {
			out.Tags[string(t.Key)] = string(t.Value)
		}
	}
	b, _ := json.Marshal(out)
	return "ok " + string(b)
}

func TestGolden(t *testing.T) {
	in := filepath.Join("testdata", "lines.txt")
	golden := filepath.Join("testdata", "lines.golden")
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		text := sc.Text()
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		line, err := strconv.Unquote(text)
		if err != nil {
			t.Fatalf("%s: %q is not a Go-quoted string: %v", in, text, err)
		}
		got.WriteString(text + "\n\t=> " + describe([]byte(line)) + "\n")
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got.String() != string(want) {
		gl, wl := strings.Split(got.String(), "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("%s differs at line %d:\n got: %s\nwant: %s\n(run go test -update after checking the change)", golden, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%s differs in length (%d vs %d lines)", golden, len(gl), len(wl))
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		line   string
		name   string
		tags   string // k=v;k=v
		value  float64
		time   int64
		reason string // expected error reason, "" for success
	}{
		{line: "a.b 1.5 1700000000", name: "a.b", value: 1.5, time: 1700000000e9},
		{line: "a.b 1.5 1700000000.25", name: "a.b", value: 1.5, time: 1700000000250000000},
		{line: "a.b 1.5 1700000000.000000001", name: "a.b", value: 1.5, time: 1700000000000000001},
		{line: "a.b 2", name: "a.b", value: 2, time: 0},
		{line: "a.b 2 -1", name: "a.b", value: 2, time: 0},
		{line: "a.b 2 -1.5", name: "a.b", value: 2, time: 0},
		{line: "a.b 2 -0.5", name: "a.b", value: 2, time: -5e8},
		{line: "a.b 2 1.7e9", name: "a.b", value: 2, time: 1.7e18},
		{line: "a.b 2 1700000000000", reason: ReasonInvalidTimestamp},
		{line: "a.b 2 0", reason: ReasonInvalidTimestamp},
		{line: "a.b inf", name: "a.b", value: math.Inf(1)},
		{line: "a.b -INF", name: "a.b", value: math.Inf(-1)},
		{line: "a.b nan", reason: ReasonNaNValue},
		{line: "a.b 1e999", name: "a.b", value: math.Inf(1)},
		{line: "a.b 0x1p3", reason: ReasonInvalidValue},
		{line: "a.b", reason: ReasonInvalidLine},
		{line: "a.b 1 2 3", reason: ReasonInvalidLine},
		{line: "  ", reason: "blank"},
		{line: "\xff 1", reason: ReasonInvalidUTF8},
		{line: "x;b=2;a=1 3", name: "x", tags: "a=1;b=2", value: 3},
		{line: "x;a=1;a=2 3", name: "x", tags: "a=2", value: 3},
		{line: "x;name=y;a=1 3", name: "x", tags: "a=1", value: 3},
		{line: "~x;a=1 3", name: "x", tags: "a=1", value: 3},
		{line: "~x 3", name: "~x", value: 3}, // untagged paths are kept verbatim
		{line: "x;a 3", reason: ReasonInvalidTags},
		{line: "x;a=~b 3", reason: ReasonInvalidTags},
		{line: "x;a!=b 3", reason: ReasonInvalidTags},
		{line: strings.Repeat("n", 1025) + " 1", reason: ReasonInvalidName},
		{line: strings.Repeat("n", 1024) + " 1", name: strings.Repeat("n", 1024), value: 1},
	}
	var s Sample
	for _, tt := range tests {
		err := Parse([]byte(tt.line), &s)
		if tt.reason != "" {
			var le *LineError
			if !errors.As(err, &le) || le.Reason != tt.reason {
				t.Errorf("Parse(%q) = %v, want reason %s", tt.line, err, tt.reason)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.line, err)
			continue
		}
		var tags []string
		for _, tg := range s.Tags {
			tags = append(tags, string(tg.Key)+"="+string(tg.Value))
		}
		if string(s.Name) != tt.name || strings.Join(tags, ";") != tt.tags || s.Value != tt.value || s.Time != tt.time {
			t.Errorf("Parse(%q) = name %q tags %q value %v time %d; want %q %q %v %d",
				tt.line, s.Name, strings.Join(tags, ";"), s.Value, s.Time, tt.name, tt.tags, tt.value, tt.time)
		}
	}
}

func TestLines(t *testing.T) {
	var got []string
	Lines([]byte("a 1\r\nb 2\n\nc 3"), func(l []byte) { got = append(got, string(l)) })
	if want := []string{"a 1", "b 2", "", "c 3"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Lines = %q, want %q", got, want)
	}
	got = nil
	Lines([]byte("a 1\n"), func(l []byte) { got = append(got, string(l)) })
	if len(got) != 1 || !bytes.Equal([]byte(got[0]), []byte("a 1")) {
		t.Errorf("a trailing newline made %q", got)
	}
}
