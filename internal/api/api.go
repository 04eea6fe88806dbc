// Package api is chronostream's own HTTP API under /api/v1: chronicles,
// stories, reads, exports, live tails, retention and sources. docs/api.md
// is its user-facing contract.
package api

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/chronostream/chronostream/internal/natsd"
	"github.com/chronostream/chronostream/internal/obs"
	"github.com/chronostream/chronostream/internal/store"
)

// Config configures the API.
type Config struct {
	Store   *store.Store
	Metrics *obs.Metrics
	Logger  *slog.Logger
	// Done closes when the server shuts down; live tails end then.
	Done <-chan struct{}

	// Node names this node in GET /api/v1/cluster; Meta reports the
	// embedded JetStream cluster's members (ok false when not clustered
	// or the log is an external NATS deployment). Both may be nil.
	Node func() string
	Meta func() (natsd.Meta, bool)

	// Heartbeat is how long a tail stays silent before the server sends a
	// heartbeat carrying the cursor. Default 15s.
	Heartbeat time.Duration
	// TailMaxBuffered bounds the bytes a tail may hold for a client that does
	// not keep up; beyond it the client is disconnected. Default: the store's.
	TailMaxBuffered int64
	// TailWriteTimeout bounds one write to a tail client; a client that
	// accepts nothing for this long is disconnected. Default 30s.
	TailWriteTimeout time.Duration

	// Index, when set, is the query index charts on the time axis read
	// from instead of the log (see series.go).
	Index SeriesIndex

	// URLPrefix is the server's URL prefix ("" or e.g. "/chronostream"):
	// the session cookie is sent only under it, not to other sites
	// behind the same host.
	URLPrefix string
}

// API serves /api/v1.
type API struct{ cfg Config }

// New returns the API.
func New(cfg Config) *API {
	if cfg.Metrics == nil {
		cfg.Metrics = obs.New()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.TailWriteTimeout <= 0 {
		cfg.TailWriteTimeout = 30 * time.Second
	}
	return &API{cfg: cfg}
}

// Register adds the API's routes to mux, each wrapped by protect (auth).
// Chronicle and story names are single path segments: clients percent-encode
// them, '/' included; ServeMux matches on the escaped path and PathValue
// decodes them.
func (a *API) Register(mux *http.ServeMux, protect func(http.Handler) http.Handler) {
	handle := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, protect(h)) }
	const c = "/api/v1/chronicles/{chronicle}"
	handle("GET /api/v1/chronicles", a.listChronicles)
	handle("GET "+c, a.getChronicle)
	handle("PUT "+c, a.putChronicle)
	handle("DELETE "+c, a.deleteChronicle)
	handle("GET "+c+"/stories", a.listStories)
	handle("GET "+c+"/events", a.readEvents)
	handle("GET "+c+"/stories/{story}/events", a.readEvents)
	handle("GET "+c+"/tail", a.tail)
	handle("GET "+c+"/stories/{story}/tail", a.tail)
	handle("GET "+c+"/traces/{traceId}", a.getTrace)
	handle("GET /api/v1/cluster", a.getCluster)
	handle("GET /api/v1/sources", a.listSources)
	handle("GET /api/v1/sources/{id}", a.getSource)
	a.registerViews(handle)
}
