package ingest_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
)

func readBodies(t testing.TB, s *store.Store, chronicle, story string) []string {
	t.Helper()
	var out []string
	_, err := s.Read(context.Background(), store.Query{Chronicle: chronicle, Story: story}, func(e *event.Event) error {
		out = append(out, string(e.Body))
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPipelineStories interleaves three stories, as a line-protocol body
// does, across batch and window sizes: each story gets its events in order
// and the counts add up.
func TestPipelineStories(t *testing.T) {
	s := testutil.OpenStore(t, store.Options{})
	a := ingest.NewAppender(s, ingest.BatchOptions{Events: 7, Bytes: 64, InFlight: 2})
	gated := 0
	p := a.Begin(context.Background(), func() error { gated++; return nil })
	names := []string{"cpu", "mem", "disk io"}
	const n = 100
	for i := range n {
		for j, name := range names {
			if j == 2 && i%3 != 0 {
				continue
			}
			ref, err := p.Story("c", name)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Add(ref, &event.Event{Format: event.FormatRaw}, fmt.Appendf(nil, "%s %d", name, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if gated != 1 {
		t.Errorf("gate called %d times, want once", gated)
	}
	total := 0
	for j, name := range names {
		got := readBodies(t, s, "c", name)
		ref, _ := p.Story("c", name)
		if ack := p.Acked(ref); ack.N != len(got) || ack.N == 0 {
			t.Errorf("%s: acked %+v, stored %d", name, ack, len(got))
		}
		total += len(got)
		k := 0
		for i := range n {
			if j == 2 && i%3 != 0 {
				continue
			}
			if want := fmt.Sprintf("%s %d", name, i); got[k] != want {
				t.Fatalf("%s[%d] = %q, want %q", name, k, got[k], want)
			}
			k++
		}
	}
	if p.Stored() != total {
		t.Errorf("Stored() = %d, want %d", p.Stored(), total)
	}
	if _, err := p.Story("c", ""); err == nil {
		t.Error("an invalid story name was accepted")
	}
}

// TestPipelineGateFails: a failed gate stores nothing.
func TestPipelineGateFails(t *testing.T) {
	s := testutil.OpenStore(t, store.Options{})
	p := ingest.NewAppender(s, ingest.BatchOptions{}).Begin(context.Background(), func() error { return fmt.Errorf("no source") })
	ref, _ := p.Story("c", "s")
	_ = p.Add(ref, &event.Event{}, []byte("x"))
	if err := p.Close(); err == nil || p.Stored() != 0 {
		t.Fatalf("Close = %v, stored %d", err, p.Stored())
	}
	if err := p.Add(ref, &event.Event{}, []byte("y")); err == nil {
		t.Fatal("Add after a failure succeeded")
	}
}

// TestPipelineAddAllocs: in steady state an event costs no allocation, as
// line protocol's rate needs.
func TestPipelineAddAllocs(t *testing.T) {
	s := testutil.OpenStore(t, store.Options{})
	a := ingest.NewAppender(s, ingest.BatchOptions{Events: 1 << 20, Bytes: 64 << 20})
	p := a.Begin(context.Background(), nil)
	defer p.Close()
	body := []byte(`cpu,host=a usage_user=1.5 1700000000000000000`)
	ev := event.Event{Format: event.FormatLine}
	allocs := testing.AllocsPerRun(1000, func() {
		ref, err := p.Story("c", "cpu")
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Add(ref, &ev, body); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per event, want 0", allocs)
	}
}

// TestPipelineManyStoriesMemory: a request naming a new story with each
// event (a line-protocol body of thousands of measurements, Graphite's
// names) holds about InFlight batches' worth of memory, not a full batch
// per story; and every event is still stored.
func TestPipelineManyStoriesMemory(t *testing.T) {
	s := testutil.OpenStore(t, store.Options{})
	// A full batch holds 1,024 events (120 KiB) and a 64 KiB arena.
	a := ingest.NewAppender(s, ingest.BatchOptions{Events: 1024, Bytes: 64 << 10, InFlight: 2})
	const n = 1000
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("m%d", i)
	}
	body := []byte("m value=1 1700000000000000000")
	heap := func() int64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	p := a.Begin(context.Background(), nil)
	base := heap()
	for _, name := range names {
		ref, err := p.Story("c", name)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Add(ref, &event.Event{Format: event.FormatLine}, body); err != nil {
			t.Fatal(err)
		}
	}
	held := heap() - base
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	// Unbounded, the open batches alone would hold n × 184 KiB = 180 MiB.
	if held > 16<<20 {
		t.Errorf("%d open stories hold %d MiB, want a bounded amount", n, held>>20)
	}
	if p.Stored() != n {
		t.Errorf("stored %d of %d", p.Stored(), n)
	}
	for _, name := range []string{names[0], names[n/2], names[n-1]} {
		if got := readBodies(t, s, "c", name); len(got) != 1 || got[0] != string(body) {
			t.Errorf("%s: %q", name, got)
		}
	}
}

// TestPipelineGrows: a story's batch starts small and grows, and bodies
// added before a growth are stored intact.
func TestPipelineGrows(t *testing.T) {
	s := testutil.OpenStore(t, store.Options{})
	a := ingest.NewAppender(s, ingest.BatchOptions{Events: 1000, Bytes: 1 << 20, InFlight: 2})
	p := a.Begin(context.Background(), nil)
	// A second story open makes the first start small.
	other, _ := p.Story("c", "other")
	if err := p.Add(other, &event.Event{}, []byte("o")); err != nil {
		t.Fatal(err)
	}
	ref, _ := p.Story("c", "s")
	var want []string
	for i := range 900 {
		b := fmt.Appendf(nil, "event %d %s", i, make([]byte, i%97))
		want = append(want, string(b))
		if err := p.Add(ref, &event.Event{}, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	got := readBodies(t, s, "c", "s")
	if len(got) != len(want) {
		t.Fatalf("stored %d, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d = %q, want %q", i, got[i], want[i])
		}
	}
}
