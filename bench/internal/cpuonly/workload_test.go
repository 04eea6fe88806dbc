package cpuonly

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"
)

var testStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// A line is TSBS's cpu line: measurement, ten tags in TSBS's order, ten
// float fields, a nanosecond timestamp on the host's tick.
func TestLineFormat(t *testing.T) {
	w := NewWorkload(7, 14, 10*time.Second, testStart, 1)
	buf, ends := w.segment(0, 0)
	if len(ends) != ticksPerSegment*7 {
		t.Fatalf("%d lines in a segment, want %d", len(ends), ticksPerSegment*7)
	}
	lines := strings.Split(strings.TrimSuffix(string(buf), "\n"), "\n")
	wantTags := []string{"hostname", "region", "datacenter", "rack", "os", "arch", "team", "service", "service_version", "service_environment"}
	for i, line := range lines[:3*7] {
		parts := strings.Split(line, " ")
		if len(parts) != 3 {
			t.Fatalf("line %d: %d space-separated parts: %q", i, len(parts), line)
		}
		tags := strings.Split(parts[0], ",")
		if tags[0] != "cpu" || len(tags) != 11 {
			t.Fatalf("line %d: series %q", i, parts[0])
		}
		for j, kv := range tags[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k != wantTags[j] || v == "" {
				t.Fatalf("line %d: tag %d is %q, want %s=...", i, j, kv, wantTags[j])
			}
		}
		if want := "hostname=host_" + strconv.Itoa(i%7); tags[1] != want {
			t.Fatalf("line %d: %s, want %s", i, tags[1], want)
		}
		fields := strings.Split(parts[1], ",")
		if len(fields) != len(FieldNames) {
			t.Fatalf("line %d: %d fields", i, len(fields))
		}
		for j, kv := range fields {
			k, v, _ := strings.Cut(kv, "=")
			f, err := strconv.ParseFloat(v, 64)
			if k != FieldNames[j] || err != nil || f < 0 || f > 100 || strings.HasSuffix(v, "i") {
				t.Fatalf("line %d: field %q", i, kv)
			}
		}
		ts, err := strconv.ParseInt(parts[2], 10, 64)
		if want := testStart.Add(time.Duration(i/7) * 10 * time.Second).UnixNano(); err != nil || ts != want {
			t.Fatalf("line %d: timestamp %s, want %d", i, parts[2], want)
		}
	}
}

// The same seed gives the same bytes, whatever the pool's size or how it
// grew; batches hold whole lines, BatchSize of them, in stream order.
func TestPoolDeterministic(t *testing.T) {
	mk := func() *Pool { return NewPool(NewWorkload(50, 3000, 10*time.Second, testStart, 9)) }
	a, b := mk(), mk()
	a.Ensure(12)
	b.Ensure(3)
	b.Ensure(12)
	ab, bb := a.Batches(), b.Batches()
	n := min(len(ab), len(bb))
	if n < 12 {
		t.Fatalf("only %d batches", n)
	}
	var all []byte
	for i := 0; i < n; i++ {
		if !bytes.Equal(ab[i].Body, bb[i].Body) {
			t.Fatalf("batch %d differs between two pools of the same seed", i)
		}
		if got := bytes.Count(ab[i].Body, []byte("\n")); got != 3000 || ab[i].Lines != 3000 {
			t.Fatalf("batch %d: %d lines (says %d)", i, got, ab[i].Lines)
		}
		all = append(all, ab[i].Body...)
	}
	// Across batch and segment boundaries the stream goes on tick by tick.
	for i, line := range strings.Split(strings.TrimSuffix(string(all), "\n"), "\n") {
		if !strings.HasPrefix(line, "cpu,hostname=host_"+strconv.Itoa(i%50)+",") {
			t.Fatalf("line %d: %.40q", i, line)
		}
		ts := line[strings.LastIndexByte(line, ' ')+1:]
		if want := strconv.FormatInt(testStart.Add(time.Duration(i/50)*10*time.Second).UnixNano(), 10); ts != want {
			t.Fatalf("line %d: timestamp %s, want %s", i, ts, want)
		}
	}
	other := NewPool(NewWorkload(50, 3000, 10*time.Second, testStart, 10))
	other.Ensure(1)
	if bytes.Equal(other.Batches()[0].Body, ab[0].Body) {
		t.Fatal("another seed gives the same data")
	}
}
