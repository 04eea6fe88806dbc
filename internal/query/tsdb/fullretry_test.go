package tsdb

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
)

// A chronicle too big for the room there is is not read again at every
// rescan (its whole log each time): after a first retry, it waits.
func TestIndexFullChronicleRetriesBackOff(t *testing.T) {
	s := testutil.OpenStore(t, store.Options{})
	appendPoints(t, s, "small", 0, 5)
	appendPoints(t, s, "big", 0, 20)
	ix := newIndex(t, s, Options{MaxPoints: 15, Rescan: time.Hour}) // rescans driven by the test
	full := func() {
		t.Helper()
		if _, err := ix.Sync(context.Background(), "big"); !errors.Is(err, ErrFull) {
			t.Fatalf("big: %v, want ErrFull", err)
		}
	}
	entry := func() *entry {
		ix.mu.Lock()
		defer ix.mu.Unlock()
		return ix.entries["big"]
	}
	if n := points(t, ix, "small"); n != 5 {
		t.Fatalf("small: %d points", n)
	}
	full()
	first := entry()
	ix.rescan() // room (5 of 15 points held): big is dropped to be read again
	ix.rescan() // … and followed again
	full()
	second := entry()
	if second == first {
		t.Fatal("big was not read again once there was room")
	}
	ix.rescan()
	ix.rescan()
	full()
	if entry() != second {
		t.Error("big, still too big, was read again at the next rescans")
	}
}
