package ndjson

import (
	"log/slog"
	"net/http"

	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/obs"
)

// Config configures the NDJSON ingest handler.
type Config struct {
	Log                            ingest.Log
	Limits                         ingest.Limits
	Metrics                        *obs.Metrics
	Logger                         *slog.Logger
	DefaultChronicle, DefaultStory string
}

// Handler takes NDJSON (and JSON array) bodies over HTTP POST.
type Handler struct{ cfg Config }

// NewHandler returns a handler.
func NewHandler(cfg Config) *Handler { return &Handler{cfg: cfg} }

// ServeRoot serves the anacrolix-style "POST /". TODO(helper): implement.
func (h *Handler) ServeRoot(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "not implemented", http.StatusNotImplemented)
}

// ServeEvents serves POST /api/v1/chronicles/{chronicle}/stories/{story}/events. TODO(helper): implement.
func (h *Handler) ServeEvents(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "not implemented", http.StatusNotImplemented)
}
