package ndjson

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/chronostream/chronostream/internal/ingest"
)

// lines returns NDJSON values {"i":from} … {"i":to-1}.
func lines(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "{\"i\":%d}\n", i)
	}
	return b.String()
}

func streamHeaders(id string, index int) map[string]string {
	return map[string]string{ingest.HeaderStream: id, ingest.HeaderIndex: strconv.Itoa(index)}
}

// checkExactlyOnce reads the story and wants {"i":0} … {"i":n-1}, each once
// and in order, each with its stream and index.
func checkExactlyOnce(t testing.TB, f *fixture, story, stream string, n int) {
	t.Helper()
	evs := f.read(t, "main", story)
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("{\"i\":%d}", i)
	}
	equalStrings(t, "bodies", bodies(evs), want)
	for i, e := range evs {
		if e.Source != stream || !e.Indexed || e.Index != uint64(i) {
			t.Fatalf("event %d: source %q index %d/%v", i, e.Source, e.Index, e.Indexed)
		}
	}
}

// TestStreamDropsDuplicates: a resend overlapping what is stored is
// acknowledged whole and stores only what is new, also when the server
// forgot the stream (a fresh handler on the same log, as after a restart).
func TestStreamDropsDuplicates(t *testing.T) {
	f := newFixture(t, ingest.Limits{}, true)
	code, _, body := f.post(t, "/?story=s", strings.NewReader(lines(0, 5)), streamHeaders("cli-1", 0))
	if code != 200 || body != "5\n" {
		t.Fatalf("first request: %d %q", code, body)
	}
	code, _, body = f.post(t, "/?story=s", strings.NewReader(lines(3, 8)), streamHeaders("cli-1", 3))
	if code != 200 || body != "5\n" {
		t.Fatalf("overlapping resend: %d %q, want 200 \"5\"", code, body)
	}
	if got := counter(t, f.metrics.IngestErrors.WithLabelValues(Protocol, "duplicate")); got != 2 {
		t.Errorf("duplicates counted: %v, want 2", got)
	}
	// A whole resend of what is stored stores nothing.
	code, _, body = f.post(t, "/?story=s", strings.NewReader(lines(0, 8)), streamHeaders("cli-1", 0))
	if code != 200 || body != "8\n" {
		t.Fatalf("full resend: %d %q", code, body)
	}
	checkExactlyOnce(t, f, "s", "cli-1", 8)

	// A fresh handler knows nothing of the stream: it reads the log.
	f2 := newFixtureOn(t, f.store, ingest.Limits{})
	code, _, body = f2.post(t, "/?story=s", strings.NewReader(lines(6, 10)), streamHeaders("cli-1", 6))
	if code != 200 || body != "4\n" {
		t.Fatalf("resend after a restart: %d %q", code, body)
	}
	checkExactlyOnce(t, f, "s", "cli-1", 10)

	// The stream's source record names it.
	src, err := f.store.GetSource(t.Context(), "cli-1")
	if err != nil || src.Protocol != Protocol || src.Story != "s" {
		t.Fatalf("source of the stream: %+v, %v", src, err)
	}
}

// TestStreamConcurrentRequests: requests of one stream racing each other
// store each index once.
func TestStreamConcurrentRequests(t *testing.T) {
	f := newFixture(t, ingest.Limits{}, true)
	body := lines(0, 300)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, got := f.post(t, "/?story=race", strings.NewReader(body), streamHeaders("racer", 0))
			if code != 200 || got != "300\n" {
				t.Errorf("request: %d %q", code, got)
			}
		}()
	}
	wg.Wait()
	checkExactlyOnce(t, f, "race", "racer", 300)
}

func TestStreamBadHeaders(t *testing.T) {
	f := newFixture(t, ingest.Limits{}, true)
	for _, h := range []map[string]string{
		{ingest.HeaderStream: "a b", ingest.HeaderIndex: "0"},
		{ingest.HeaderStream: "ok"},
		{ingest.HeaderStream: "ok", ingest.HeaderIndex: "-1"},
		{ingest.HeaderIndex: "3"},
		{ingest.HeaderStream: strings.Repeat("x", 129), ingest.HeaderIndex: "0"},
	} {
		code, _, body := f.post(t, "/", strings.NewReader("{}\n"), h)
		if code != http.StatusBadRequest || !strings.Contains(body, "X-Chronostream-") {
			t.Errorf("%v: %d %q, want 400 naming the header", h, code, body)
		}
	}
}
