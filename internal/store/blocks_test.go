package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
)

func TestBlocksAndChronicleNames(t *testing.T) {
	s := testutil.OpenStore(t, store.Options{})
	ctx := context.Background()
	if _, _, err := s.Blocks(ctx, "none"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Blocks of a missing chronicle: %v", err)
	}
	for i := range 3 {
		if _, err := s.Append("c.1", "s", []event.Event{{Time: int64(i + 1), Body: []byte("x")}}).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	first, last, err := s.Blocks(ctx, "c.1")
	if err != nil || first != 1 || last != 3 {
		t.Fatalf("Blocks = %d, %d, %v; want 1, 3", first, last, err)
	}
	if err := s.SetRetention(ctx, "c.1", store.Retention{MaxEvents: 1}); err != nil {
		t.Fatal(err)
	}
	if first, last, _ = s.Blocks(ctx, "c.1"); first != 3 || last != 3 {
		t.Errorf("after retention kept one event: Blocks = %d, %d; want 3, 3", first, last)
	}
	if err := s.CreateChronicle(ctx, "empty", store.Retention{}); err != nil {
		t.Fatal(err)
	}
	names, err := s.ChronicleNames(ctx)
	slices.Sort(names)
	if err != nil || !slices.Equal(names, []string{"c.1", "empty"}) {
		t.Errorf("ChronicleNames = %v, %v", names, err)
	}
}
