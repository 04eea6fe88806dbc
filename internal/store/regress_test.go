package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/chronostream/chronostream/event"
)

// TestTailCloseDuringDelivery closes tails while they are still catching up
// through many blocks: the consumer may deliver after it reports closed,
// which once panicked with a send on a closed channel.
func TestTailCloseDuringDelivery(t *testing.T) {
	s := openStore(t, Options{})
	for i := 0; i < 20; i++ {
		appendN(t, s, "c", "s", i*500, 500)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		tl, err := s.Tail(ctx, TailQuery{Chronicle: "c", Story: "s", After: 1})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(rand.IntN(5000)) * time.Microsecond)
			tl.Close()
			if _, err := tl.Next(ctx); err == nil {
				// Buffered items may still come; the tail must then end.
				for err == nil {
					_, err = tl.Next(ctx)
				}
			}
		}()
	}
	wg.Wait()
}

// TestManyReadsLeaveNoConsumers reads more times than a stream may have
// consumers (1000 by default): each read's consumer must be deleted.
func TestManyReadsLeaveNoConsumers(t *testing.T) {
	s := openStore(t, Options{})
	appendN(t, s, "c", "s", 0, 10)
	for i := 0; i < 1100; i++ {
		evs, _ := readAll(t, s, Query{Chronicle: "c", Story: "s"})
		if len(evs) != 10 {
			t.Fatalf("read %d: %d events", i, len(evs))
		}
	}
	str, err := s.js.Stream(context.Background(), streamName("c"))
	if err != nil {
		t.Fatal(err)
	}
	if n := str.CachedInfo().State.Consumers; n > 10 {
		t.Fatalf("%d consumers left behind by finished reads", n)
	}
}

func TestDescBeforeStoryStart(t *testing.T) { forEachBackend(t, testDescBeforeStoryStart) }

// testDescBeforeStoryStart: a newest-first page ending before a story's
// first block is empty, not an error.
func testDescBeforeStoryStart(t *testing.T, open opener) {
	s := open(t, Options{})
	a := appendN(t, s, "c", "a", 0, 3)
	appendN(t, s, "c", "s", 0, 3)
	appendN(t, s, "c", "a", 3, 3)
	got, _ := readAll(t, s, Query{Chronicle: "c", Story: "s", Desc: true, Before: a.Last})
	if len(got) != 0 {
		t.Fatalf("got %d events before the story began", len(got))
	}
	got, _ = readAll(t, s, Query{Chronicle: "c", Story: "a", Desc: true, Before: a.Last})
	if len(got) != 2 || fieldI(got[0]) != 1 {
		t.Fatalf("desc before within a block: %v", got)
	}
}

// TestCloseRacesAppend: an append racing Close either completes durably
// or fails with ErrClosed; none is left waiting forever.
func TestCloseRacesAppend(t *testing.T) {
	s := openStore(t, Options{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := s.Append("c", "s", []event.Event{{Body: []byte("x")}}).Wait(ctx)
				cancel()
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

func TestFromSeeksExactly(t *testing.T) { forEachBackend(t, testFromSeeksExactly) }

// testFromSeeksExactly: a read with From skips blocks by binary search and
// must still return exactly what filtering every event would, also when
// events arrived out of time order (backfills) and stories interleave.
func testFromSeeksExactly(t *testing.T, open opener) {
	s := open(t, Options{})
	r := rand.New(rand.NewPCG(1, 2))
	var all []event.Event
	clock := int64(1000)
	for b := 0; b < 60; b++ {
		n := 1 + r.IntN(5)
		evs := make([]event.Event, n)
		base := clock
		if r.IntN(5) == 0 {
			base = clock - int64(r.IntN(800)) // a backfill
		} else {
			clock += int64(n * 10)
		}
		for i := range evs {
			evs[i] = event.Event{Time: base + int64(i*10+r.IntN(10)) + 1, Body: []byte("x")}
		}
		story := "s"
		if r.IntN(3) == 0 {
			story = "other"
		}
		if _, err := s.Append("c", story, evs).Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if story == "s" {
			all = append(all, evs...)
		}
	}
	// The search must actually skip: late times start far into the log.
	str, err := s.js.Stream(context.Background(), streamName("c"))
	if err != nil {
		t.Fatal(err)
	}
	last := str.CachedInfo().State.LastSeq
	if seek, err := seekTime(context.Background(), str, storySubject("c", "s"), 1, last, clock-50); err != nil || seek < last/2 {
		t.Fatalf("seek to a late time started at block %d of %d (err %v)", seek, last, err)
	}
	for _, from := range []int64{1, 500, 999, 1000, 1234, 1500, 2000, 2500, 2990, clock, clock + 100} {
		var want []int64
		for _, e := range all {
			if e.Time >= from {
				want = append(want, e.Time)
			}
		}
		got, _ := readAll(t, s, Query{Chronicle: "c", Story: "s", From: from})
		if len(got) != len(want) {
			t.Fatalf("from %d: %d events, want %d", from, len(got), len(want))
		}
		for i := range got {
			if got[i].Time != want[i] {
				t.Fatalf("from %d: event %d has time %d, want %d", from, i, got[i].Time, want[i])
			}
		}
	}
}
