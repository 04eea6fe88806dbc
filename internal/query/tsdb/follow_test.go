package tsdb

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
)

func appendPoints(t *testing.T, s *store.Store, chronicle string, from, n int) {
	t.Helper()
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{Time: int64(from + i), Tags: map[string]string{"host": "a"},
			Fields: map[string]event.Value{"v": event.Int(int64(from + i))}}
	}
	if _, err := s.Append(chronicle, "m", evs).Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func points(t *testing.T, ix *Index, chronicle string) int {
	t.Helper()
	db, err := ix.Sync(context.Background(), chronicle)
	if err != nil {
		t.Fatal(err)
	}
	db.RLock()
	defer db.RUnlock()
	return int(db.Points())
}

func newIndex(t *testing.T, s *store.Store, o Options) *Index {
	o.Log = s
	o.Logger = testutil.Logger(t, 0)
	ix := New(o)
	ix.Start(context.Background())
	t.Cleanup(ix.Close)
	return ix
}

// Sync sees every append acknowledged before it, whether the index reads
// the chronicle from the start or follows it; a tail that falls behind
// (here: every block overflows its buffer) resumes from the log.
func TestIndexReadsItsWrites(t *testing.T) {
	s := testutil.OpenStore(t, store.Options{})
	appendPoints(t, s, "c", 0, 10)
	ix := newIndex(t, s, Options{TailBuffer: 1})
	if n := points(t, ix, "c"); n != 10 {
		t.Fatalf("after the initial read: %d points, want 10", n)
	}
	for i := 1; i <= 20; i++ {
		appendPoints(t, s, "c", 10*i, 10)
		if n := points(t, ix, "c"); n != 10*(i+1) {
			t.Fatalf("after append %d: %d points, want %d", i, n, 10*(i+1))
		}
	}
	p, series := ix.Stats()
	if p != 210 || series != 1 {
		t.Errorf("Stats: %d points, %d series", p, series)
	}
}

func TestIndexFullAndDeletedChronicles(t *testing.T) {
	s := testutil.OpenStore(t, store.Options{})
	appendPoints(t, s, "small", 0, 5)
	appendPoints(t, s, "big", 0, 20)
	ix := newIndex(t, s, Options{MaxPoints: 15})
	if n := points(t, ix, "small"); n != 5 {
		t.Fatalf("small: %d points", n)
	}
	_, err := ix.Sync(context.Background(), "big")
	if !errors.Is(err, ErrFull) {
		t.Fatalf("a chronicle over the bound: %v, want ErrFull", err)
	}
	if p, _ := ix.Stats(); p > 15 {
		t.Errorf("%d points held, over the bound", p)
	}
	if err := s.DeleteChronicle(context.Background(), "big"); err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Sync(context.Background(), "big"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted chronicle: %v", err)
	}
	// Strings are bounded in bytes too.
	ix2 := newIndex(t, s, Options{MaxStringBytes: 8})
	if _, err := s.Append("text", "m", []event.Event{{Time: 1, Fields: map[string]event.Value{"msg": event.String("more than eight bytes")}}}).Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := ix2.Sync(context.Background(), "text"); !errors.Is(err, ErrFull) {
		t.Errorf("strings over the bound: %v, want ErrFull", err)
	}
	// Room again: a new chronicle within the bound is indexed.
	appendPoints(t, s, "next", 0, 8)
	testutil.Eventually(t, 20*time.Second, func() bool {
		_, err := ix.Sync(context.Background(), "next")
		return err == nil
	}, "chronicle next indexed once big was deleted")
}
