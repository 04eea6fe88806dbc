// Package ingest holds what every protocol's transport shares: the log it
// writes to, the limits it enforces, how a compatibility request names its
// target and is recorded as a source, and Pipeline, which streams a
// request's events into the log in pipelined, group-committed batches. Each
// protocol lives in a package of its own below this one (a pure decoder and
// a thin transport), and protocols never import each other.
package ingest

import (
	"context"
	"log/slog"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/obs"
	"github.com/chronostream/chronostream/internal/store"
)

// Log is what ingest needs of the store.
type Log interface {
	Append(chronicle, story string, evs []event.Event) *store.Pending
	PutSource(ctx context.Context, src store.Source) error
	ClientLog
}

// Limits bound what one producer can make the server hold.
type Limits struct {
	// MaxBodyBytes bounds a request body, counted after decompression.
	MaxBodyBytes int64
	// MaxEventBytes bounds one event (one NDJSON value, one WebSocket message).
	MaxEventBytes int64
	// BodyReadTimeout is how long an ingest request's body may stall (see
	// BodyReadTimeout); zero means DefaultBodyReadTimeout, negative none.
	BodyReadTimeout time.Duration
}

// DefaultLimits are the limits used when none are configured.
var DefaultLimits = Limits{MaxBodyBytes: 32 << 20, MaxEventBytes: 1 << 20}

// Config is what every protocol handler is configured with; a handler's own
// Config embeds it.
type Config struct {
	Log     Log
	Limits  Limits
	Metrics *obs.Metrics // nil: not counted
	Logger  *slog.Logger // nil: discarded
	// DefaultChronicle and DefaultStory are the target of compatibility
	// requests that name none (see Target).
	DefaultChronicle, DefaultStory string
	// Streams removes duplicates from client streams. Handlers that take
	// them must share one, so that a stream's requests serialize across
	// transports; nil: one of the handler's own when Log can be read.
	Streams *Streams
	// Clients records the sources of request-per-batch protocols by
	// client. Handlers share one so that a client's requests add to one
	// record whatever the protocol's handler; nil: one of the handler's own.
	Clients *Clients
}

// WithDefaults returns c with every unset field given its default, so that
// handlers built by tests and by the server behave alike.
func (c Config) WithDefaults() Config {
	if c.Limits.MaxBodyBytes <= 0 {
		c.Limits.MaxBodyBytes = DefaultLimits.MaxBodyBytes
	}
	if c.Limits.MaxEventBytes <= 0 {
		c.Limits.MaxEventBytes = DefaultLimits.MaxEventBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.DefaultChronicle == "" {
		c.DefaultChronicle = "default"
	}
	if c.DefaultStory == "" {
		c.DefaultStory = "default"
	}
	if c.Clients == nil && c.Log != nil {
		// Nobody closes this one (a handler built alone, by a test): it
		// logs nothing, which could outlive its logger.
		c.Clients = NewClients(c.Log, nil)
	}
	if sl, ok := c.Log.(StreamLog); ok && c.Streams == nil {
		c.Streams = NewStreams(sl, 0, c.Logger)
	}
	return c
}
