package testutil

import (
	"context"
	"fmt"
	"testing"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/natsd"
	"github.com/chronostream/chronostream/internal/store"
)

// StoreOption adjusts the options OpenStore opens the log with, after its
// defaults; a bool field of store.Options cannot say "leave the default".
type StoreOption func(*store.Options)

// ManualCreate turns AutoCreate off: writes to an unknown chronicle fail,
// as with a server whose config does not create chronicles on first write.
func ManualCreate(o *store.Options) { o.AutoCreate = false }

// Shared turns Exclusive off, as for a store on a NATS deployment other
// nodes write to: appends then use JetStream's per-story concurrency check.
func Shared(o *store.Options) { o.Exclusive = false }

// OpenStore opens the log the way the server opens its embedded one: on a
// NATS server embedded in the test process with its data in t.TempDir(),
// Exclusive (this process is the only writer, so appends skip the
// per-story concurrency check), and creating chronicles on first write.
// opts supplies everything else (Retention, MaxBlockBytes, Registerer, …);
// its Conn is ignored, its AutoCreate and Exclusive are always turned on,
// and mods turn them off again. Everything is closed when the test
// ends.
func OpenStore(t testing.TB, opts store.Options, mods ...StoreOption) *store.Store {
	t.Helper()
	ns, err := natsd.Start(natsd.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("testutil.OpenStore: %v", err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := ns.Connect()
	if err != nil {
		t.Fatalf("testutil.OpenStore: %v", err)
	}
	t.Cleanup(nc.Close)
	opts.Conn = nc
	opts.AutoCreate, opts.Exclusive = true, true
	for _, m := range mods {
		m(&opts)
	}
	s, err := store.Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("testutil.OpenStore: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TimeoutLog is a log whose appends time out on its own side, as the
// store's publish timeout does: the error wraps context.DeadlineExceeded
// while the request's context is still live. Handlers must answer it as
// the log unavailable (a retryable 503), not as a client gone.
type TimeoutLog struct{ *store.Store }

// Append fails at once with the timeout.
func (TimeoutLog) Append(string, string, []event.Event) *store.Pending {
	return store.FailedPending(fmt.Errorf("store: publishing block: %w", context.DeadlineExceeded))
}
