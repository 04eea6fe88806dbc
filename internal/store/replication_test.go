package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
)

// TestReplicasOnALoneServer: three replicas on a server that is not
// clustered is refused at once as ErrNoPlacement (AwaitPlacement does not
// wait for nodes that cannot come), and nothing is created.
func TestReplicasOnALoneServer(t *testing.T) {
	s := testutil.OpenStore(t, store.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := store.AwaitPlacement(ctx, testutil.Logger(t, 0), "chronicle r3", 3, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, s.CreateChronicleReplicas(ctx, "r3", store.Retention{}, 3)
	})
	if !errors.Is(err, store.ErrNoPlacement) || ctx.Err() != nil {
		t.Fatalf("err %v (context %v), want ErrNoPlacement at once", err, ctx.Err())
	}
	if _, err := s.Chronicle(ctx, "r3"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("chronicle r3 after the refusal: %v, want not found", err)
	}
	if err := s.CreateChronicleReplicas(ctx, "r3", store.Retention{}, 0); !errors.Is(err, store.ErrInvalidReplicas) {
		t.Fatalf("0 replicas: %v, want ErrInvalidReplicas", err)
	}
}
