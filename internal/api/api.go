// Package api is chronostream's own HTTP API under /api/v1: chronicles,
// stories, reads, exports, live tails, retention and sources.
package api

import (
	"log/slog"
	"net/http"

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
}

// API serves /api/v1.
type API struct{ cfg Config }

// New returns the API.
func New(cfg Config) *API { return &API{cfg: cfg} }

// Register adds the API's routes to mux, each wrapped by protect (auth).
// TODO(helper): implement the routes.
func (a *API) Register(mux *http.ServeMux, protect func(http.Handler) http.Handler) {}
