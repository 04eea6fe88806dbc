// Package ingest holds what every protocol's transport shares: the log it
// writes to and the limits it enforces. Each protocol lives in a package of
// its own below this one: a pure decoder and a thin transport.
package ingest

import (
	"context"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/store"
)

// Log is what ingest needs of the store.
type Log interface {
	Append(chronicle, story string, evs []event.Event) *store.Pending
	PutSource(ctx context.Context, src store.Source) error
}

// Limits bound what one producer can make the server hold.
type Limits struct {
	// MaxBodyBytes bounds a request body, counted after decompression.
	MaxBodyBytes int64
	// MaxEventBytes bounds one event (one NDJSON value, one WebSocket message).
	MaxEventBytes int64
}

// DefaultLimits are the limits used when none are configured.
var DefaultLimits = Limits{MaxBodyBytes: 32 << 20, MaxEventBytes: 1 << 20}
