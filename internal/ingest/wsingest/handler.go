package wsingest

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/obs"
)

// Config configures the WebSocket ingest handler.
type Config struct {
	Log                            ingest.Log
	Limits                         ingest.Limits
	Metrics                        *obs.Metrics
	Logger                         *slog.Logger
	DefaultChronicle, DefaultStory string
	// Done closes when the server shuts down.
	Done <-chan struct{}
}

// Handler takes anacrolix-style WebSocket streams on GET /.
type Handler struct{ cfg Config }

// NewHandler returns a handler.
func NewHandler(cfg Config) *Handler { return &Handler{cfg: cfg} }

// IsUpgrade reports whether r asks for a WebSocket upgrade.
func IsUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// ServeHTTP TODO(helper): implement.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "not implemented", http.StatusNotImplemented)
}
