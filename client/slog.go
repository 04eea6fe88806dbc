package client

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
)

// Handler is a slog.Handler that sends each record to a Client as one JSON
// event, in slog's JSON form: "time", "level", "msg", then the attributes,
// groups as nested objects. The server reads the time and takes the event
// for a log (it has "msg" and "level"); the attributes become fields, and
// the members of a top-level "tags" group become tags.
//
// Handle queues the record with Send, passing the context of the log call,
// and so follows the client's overflow policy: with Block, logging waits
// while the buffer is full, until the log call's context ends.
//
// Pitfall: the client's own logger (the Logger option) must not be a
// logger whose handler sends to the same client with Block: its records of
// connection failures are written by the goroutine that empties the
// buffer, so waiting for room there would wait forever. The client marks
// those records, and this Handler drops them (counted in DroppedNewest)
// instead of waiting when the buffer is full; a handler of your own in
// between must pass the context on for that to work.
type Handler struct {
	c     *Client
	inner slog.Handler
	out   *recordBuf // shared by the handlers derived with WithAttrs and WithGroup
}

// recordBuf receives the JSON handler's one Write of a record.
type recordBuf struct {
	mu  sync.Mutex
	buf []byte
}

func (b *recordBuf) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// NewHandler returns a handler sending to c. opts are those of
// slog.NewJSONHandler (level, source, ReplaceAttr); nil means defaults.
func NewHandler(c *Client, opts *slog.HandlerOptions) *Handler {
	out := &recordBuf{}
	return &Handler{c: c, inner: slog.NewJSONHandler(out, opts), out: out}
}

// Enabled reports whether the handler handles records at level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// Handle sends the record, waiting as Send does (with ctx) when the buffer
// is full and the policy is Block.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if ctx == nil {
		ctx = context.Background()
	}
	h.out.mu.Lock()
	h.out.buf = h.out.buf[:0]
	err := h.inner.Handle(ctx, r)
	p := bytes.Clone(bytes.TrimRight(h.out.buf, "\n"))
	h.out.mu.Unlock()
	if err != nil {
		return err
	}
	if isInternalLog(ctx) {
		// The client's own record, maybe from its sender: never wait.
		return h.c.send(ctx, p, DropNewest)
	}
	return h.c.Send(ctx, p)
}

// WithAttrs returns a handler whose records carry attrs.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{c: h.c, inner: h.inner.WithAttrs(attrs), out: h.out}
}

// WithGroup returns a handler that nests later attributes in group name.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{c: h.c, inner: h.inner.WithGroup(name), out: h.out}
}
