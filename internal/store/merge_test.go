package store

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/chronostream/chronostream/event"
)

func TestReadMerged(t *testing.T) { forEachBackend(t, testReadMerged) }

// testReadMerged: stories written in interleaved blocks come back as one
// sequence sorted by (time, seq), and paging with the returned cursor
// visits every event exactly once, in both directions.
func testReadMerged(t *testing.T, open opener) {
	s := open(t, Options{})
	r := rand.New(rand.NewPCG(3, 4))
	clocks := map[string]int64{"a": 0, "b": 5, "c": 7}
	var all []event.Event
	for b := 0; b < 40; b++ {
		story := []string{"a", "b", "c"}[r.IntN(3)]
		evs := make([]event.Event, 1+r.IntN(30))
		for i := range evs {
			clocks[story] += int64(1 + r.IntN(3)) // ties across stories happen
			evs[i] = event.Event{Time: clocks[story], Body: []byte(story)}
		}
		a, err := s.Append("m", story, evs).Wait(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for i := range evs {
			e := evs[i]
			e.Seq, e.Story = a.First+uint64(i), story
			all = append(all, e)
		}
	}
	slices.SortFunc(all, func(x, y event.Event) int {
		return cmp.Or(cmp.Compare(x.Time, y.Time), cmp.Compare(x.Seq, y.Seq))
	})
	key := func(e event.Event) string { return fmt.Sprintf("%d/%d", e.Time, e.Seq) }

	for _, desc := range []bool{false, true} {
		want := slices.Clone(all)
		if desc {
			slices.Reverse(want)
		}
		for _, limit := range []int{0, 7, 100} {
			var got []event.Event
			var cur TimeCursor
			for pages := 0; ; pages++ {
				if pages > len(all) {
					t.Fatal("paging does not end")
				}
				n := 0
				last, err := s.ReadMerged(context.Background(), MergedQuery{Chronicle: "m", After: cur, Desc: desc, Limit: limit},
					func(e *event.Event) error { got = append(got, *e); n++; return nil })
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 || limit == 0 {
					break
				}
				cur = last
			}
			if len(got) != len(want) {
				t.Fatalf("desc=%v limit=%d: %d events, want %d", desc, limit, len(got), len(want))
			}
			for i := range got {
				if key(got[i]) != key(want[i]) || got[i].Story != want[i].Story {
					t.Fatalf("desc=%v limit=%d: event %d is %s of %s, want %s of %s", desc, limit, i, key(got[i]), got[i].Story, key(want[i]), want[i].Story)
				}
			}
		}
	}
	// A time range and a story subset.
	var got []event.Event
	_, err := s.ReadMerged(context.Background(), MergedQuery{Chronicle: "m", Stories: []string{"a", "c"}, From: 100, To: 200},
		func(e *event.Event) error { got = append(got, *e); return nil })
	if err != nil {
		t.Fatal(err)
	}
	var want []event.Event
	for _, e := range all {
		if e.Story != "b" && e.Time >= 100 && e.Time <= 200 {
			want = append(want, e)
		}
	}
	if len(got) != len(want) || len(got) == 0 || key(got[0]) != key(want[0]) || key(got[len(got)-1]) != key(want[len(want)-1]) {
		t.Fatalf("range and subset: got %d events, want %d", len(got), len(want))
	}
}
