package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

// storedEvent is an event as the read API returns it.
type storedEvent struct {
	Seq    uint64            `json:"seq"`
	Time   time.Time         `json:"time"`
	Kind   string            `json:"kind"`
	Tags   map[string]string `json:"tags"`
	Fields map[string]any    `json:"fields"`
	Source string            `json:"source"`
}

// readStory returns every event of a story (none if the chronicle does not
// exist yet).
func readStory(t testing.TB, base, chronicle, story string) []storedEvent {
	t.Helper()
	u := fmt.Sprintf("%s/api/v1/chronicles/%s/stories/%s/events?format=ndjson",
		base, url.PathEscape(chronicle), url.PathEscape(story))
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	var out []storedEvent
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e storedEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: %v", sc.Bytes(), err)
		}
		out = append(out, e)
	}
	return out
}

func num(t testing.TB, e storedEvent, field string) float64 {
	t.Helper()
	v, ok := e.Fields[field].(float64)
	if !ok {
		t.Fatalf("event %d (%v): field %q is %T %v, want a number", e.Seq, e.Tags, field, e.Fields[field], e.Fields[field])
	}
	return v
}

func testOptions(t testing.TB, base string) Options {
	return Options{
		Servers:    []string{base},
		Chronicle:  "host-metrics",
		Hostname:   "test-host",
		Tags:       map[string]string{"dc": "lab"},
		Interval:   100 * time.Millisecond,
		SpoolDir:   t.TempDir(),
		MinBackoff: 20 * time.Millisecond,
		MaxBackoff: 200 * time.Millisecond,
		Logger:     testutil.Logger(t, -4),
	}
}

func TestAgentWritesPlausibleMetrics(t *testing.T) {
	srv := servertest.RunServer(t, server.Options{AutoCreate: true})
	base := "http://" + srv.Addr()
	opts := testOptions(t, base)
	opts.Duration = 650 * time.Millisecond
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := a.Stats()
	if st.Samples < 3 || st.Sent != st.Spooled || st.Backlog != 0 || st.Dropped != 0 {
		t.Fatalf("stats %+v: want ≥3 samples, everything spooled sent", st)
	}

	for _, story := range Stories {
		evs := readStory(t, base, "host-metrics", story)
		if story == StoryDisk && len(evs) == 0 {
			t.Logf("no disk_usage events: no physical file system visible here")
			continue
		}
		if len(evs) == 0 {
			t.Errorf("story %s: no events", story)
			continue
		}
		for _, e := range evs {
			if e.Kind != "metric" || e.Tags["host"] != "test-host" || e.Tags["dc"] != "lab" {
				t.Fatalf("story %s: event kind %q tags %v", story, e.Kind, e.Tags)
			}
			if d := time.Since(e.Time); d < 0 || d > time.Minute {
				t.Fatalf("story %s: event time %v", story, e.Time)
			}
		}
		t.Logf("%s: %d events, e.g. tags %v fields %v", story, len(evs), evs[0].Tags, evs[0].Fields)
	}

	cpus := map[string]int{}
	for _, e := range readStory(t, base, "host-metrics", StoryCPU) {
		cpus[e.Tags["cpu"]]++
		for _, f := range []string{"usage", "user", "system", "idle", "iowait"} {
			if v := num(t, e, f); v < 0 || v > 100 {
				t.Fatalf("cpu %s: %s = %v%%", e.Tags["cpu"], f, v)
			}
		}
	}
	if cpus["cpu-total"] == 0 || cpus["cpu0"] == 0 {
		t.Errorf("cpu_usage: events per cpu %v: want cpu-total and per-core", cpus)
	}

	for _, e := range readStory(t, base, "host-metrics", StoryMemory) {
		total, used, avail := num(t, e, "total"), num(t, e, "used"), num(t, e, "available")
		if total <= 0 || used > total || used+avail != total {
			t.Fatalf("memory: total %v used %v available %v", total, used, avail)
		}
	}

	type counters map[string]float64
	checkCounters := func(story, tag string, names, rates []string) {
		prev := map[string]counters{}
		for _, e := range readStory(t, base, "host-metrics", story) {
			item := e.Tags[tag]
			if p, ok := prev[item]; ok {
				for _, n := range names {
					if v := num(t, e, n); v < p[n] {
						t.Fatalf("%s %s: counter %s went from %v to %v", story, item, n, p[n], v)
					}
				}
			}
			c := counters{}
			for _, n := range names {
				c[n] = num(t, e, n)
			}
			prev[item] = c
			for _, r := range rates {
				if v := num(t, e, r); v < 0 {
					t.Fatalf("%s %s: rate %s = %v", story, item, r, v)
				}
			}
		}
		if len(prev) == 0 {
			t.Errorf("%s: no items", story)
		}
	}
	checkCounters(StoryNetwork, "interface", []string{"bytes_recv", "bytes_sent", "packets_recv"},
		[]string{"bytes_recv_per_sec", "bytes_sent_per_sec"})
	if len(readStory(t, base, "host-metrics", StoryDiskIO)) > 0 {
		checkCounters(StoryDiskIO, "name", []string{"read_bytes", "write_bytes", "reads", "writes"},
			[]string{"read_bytes_per_sec", "write_bytes_per_sec"})
	}
	for _, e := range readStory(t, base, "host-metrics", StoryDisk) {
		if used, total := num(t, e, "used"), num(t, e, "total"); used > total {
			t.Fatalf("disk %s: used %v > total %v", e.Tags["path"], used, total)
		}
	}
	for _, e := range readStory(t, base, "host-metrics", StoryLoad) {
		if num(t, e, "load1") < 0 || num(t, e, "n_cpus") < 1 {
			t.Fatalf("load: %v", e.Fields)
		}
	}
}

// Counters are integer fields and measures float fields in every event,
// whatever the value, so a field's type never flips between events.
func TestEventFieldTypes(t *testing.T) {
	e := newEvent(time.Unix(1, 5), map[string]string{"host": "h"}, "cpu", "cpu0")
	e.float("usage", 0)
	e.float("idle", 100)
	e.uint("bytes", 42)
	e.float("nan", nan())
	got := string(e.bytes())
	want := `{"time":1000000005,"kind":"metric","tags":{"cpu":"cpu0","host":"h"},"usage":0.0,"idle":100.0,"bytes":42}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func nan() float64 { var z float64; return z / z }

func TestFilter(t *testing.T) {
	f := Filter{Include: []string{"eth*", "en*"}, Exclude: []string{"eth9"}}
	for name, want := range map[string]bool{"eth0": true, "enp3s0": true, "eth9": false, "lo": false} {
		if f.Match(name) != want {
			t.Errorf("Match(%q) = %v", name, !want)
		}
	}
	if !(Filter{}).Match("anything") {
		t.Error("the empty filter must select everything")
	}
}
