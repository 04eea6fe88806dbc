package client

import (
	"bytes"
	"context"
	"log/slog"
)

// Handler is a slog.Handler that sends each record to a Client as one JSON
// event, in slog's JSON form: "time", "level", "msg", then the attributes,
// groups as nested objects. The server reads the time and takes the event
// for a log (it has "msg" and "level"); the attributes become fields, and
// the members of a top-level "tags" group become tags.
//
// Handle queues the record with Send and so follows the client's overflow
// policy: with Block, logging waits while the buffer is full.
type Handler struct {
	inner slog.Handler
}

// NewHandler returns a handler sending to c. opts are those of
// slog.NewJSONHandler (level, source, ReplaceAttr); nil means defaults.
func NewHandler(c *Client, opts *slog.HandlerOptions) *Handler {
	return &Handler{inner: slog.NewJSONHandler(sendWriter{c}, opts)}
}

// Enabled reports whether the handler handles records at level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// Handle sends the record.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	return h.inner.Handle(ctx, r)
}

// WithAttrs returns a handler whose records carry attrs.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{inner: h.inner.WithAttrs(attrs)}
}

// WithGroup returns a handler that nests later attributes in group name.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{inner: h.inner.WithGroup(name)}
}

// sendWriter turns each Write of the JSON handler, one whole record, into
// one event. slog's JSON handler serializes its Writes.
type sendWriter struct{ c *Client }

func (w sendWriter) Write(p []byte) (int, error) {
	if err := w.c.Send(context.Background(), bytes.TrimRight(p, "\n")); err != nil {
		return 0, err
	}
	return len(p), nil
}
