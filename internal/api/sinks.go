package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"

	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/sink"
	"github.com/chronostream/chronostream/internal/store"
)

// SinkControl is what the sinks API needs of the server's sinks
// (*sink.Manager).
type SinkControl interface {
	List(ctx context.Context) []sink.Status
	Status(ctx context.Context, name string) (sink.Status, error)
	Cursor(ctx context.Context, name string) (sink.Cursor, error)
	SetPaused(ctx context.Context, name string, paused bool) (sink.Cursor, error)
	SetCursor(ctx context.Context, name, position, chronicle string) (sink.Cursor, error)
}

// RegisterSinks adds /api/v1/sinks: the status of the configured sinks,
// pause and resume, and their durable cursors (also those `chronostream
// forward` keeps here under its sink's name). See docs/sinks.md.
func (a *API) RegisterSinks(mux *http.ServeMux, protect func(http.Handler) http.Handler, sinks SinkControl) {
	h := &sinksAPI{a: a, s: sinks}
	handle := func(pattern string, f http.HandlerFunc) { mux.Handle(pattern, protect(f)) }
	const n = "/api/v1/sinks/{name}"
	handle("GET /api/v1/sinks", h.list)
	handle("GET "+n, h.get)
	handle("POST "+n+"/pause", h.pause(true))
	handle("POST "+n+"/resume", h.pause(false))
	handle("GET "+n+"/cursor", h.getCursor)
	handle("PUT "+n+"/cursor", h.setCursor)
	handle("POST "+n+"/cursor", h.setCursor)
}

type sinksAPI struct {
	a *API
	s SinkControl
}

// fail maps the sink manager's errors onto the API's classes.
func (h *sinksAPI) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, sink.ErrUnknownSink):
		err = fmt.Errorf("%w: %w", store.ErrNotFound, err)
	case errors.Is(err, sink.ErrBadPosition):
		err = badParam("position", "%w", err)
	}
	h.a.writeError(w, r, err)
}

func (h *sinksAPI) list(w http.ResponseWriter, r *http.Request) {
	if _, err := newParams(r); err != nil {
		h.a.writeError(w, r, err)
		return
	}
	// A token limited to chronicles sees the sinks of those only, as
	// the other listings show it only its chronicles.
	who := auth.FromContext(r.Context())
	sinks := slices.DeleteFunc(h.s.List(r.Context()), func(st sink.Status) bool { return !who.Can(auth.ScopeRead, st.Chronicle) })
	writeJSON(w, http.StatusOK, map[string]any{"sinks": sinks})
}

// readable refuses (403) a token that may not read chronicle, the one a
// sink or cursor delivers from ("": unknown yet, only the scope counts).
func (h *sinksAPI) readable(w http.ResponseWriter, r *http.Request, chronicle string) bool {
	if err := auth.FromContext(r.Context()).Check(auth.ScopeRead, chronicle); err != nil {
		auth.ProblemForbidden(w, r, err)
		return false
	}
	return true
}

func (h *sinksAPI) get(w http.ResponseWriter, r *http.Request) {
	st, err := h.s.Status(r.Context(), r.PathValue("name"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.readable(w, r, st.Chronicle) {
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (h *sinksAPI) pause(paused bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := h.s.SetPaused(r.Context(), r.PathValue("name"), paused)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, c)
	}
}

func (h *sinksAPI) getCursor(w http.ResponseWriter, r *http.Request) {
	c, err := h.s.Cursor(r.Context(), r.PathValue("name"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.readable(w, r, c.Chronicle) {
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// maxCursorBody bounds a cursor request's body.
const maxCursorBody = 4 << 10

// setCursor moves a cursor: {"position": "beginning" | "now" | "<seq>" |
// "<RFC 3339 time>"} or {"seq": N}, with "chronicle" for a cursor that
// does not exist yet (forward's). The query parameters position and
// chronicle may be used instead of a body.
func (h *sinksAPI) setCursor(w http.ResponseWriter, r *http.Request) {
	p, err := newParams(r, "position", "chronicle")
	if err != nil {
		h.a.writeError(w, r, err)
		return
	}
	var req struct {
		Position  string  `json:"position"`
		Seq       *uint64 `json:"seq"`
		Chronicle string  `json:"chronicle"`
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCursorBody))
	if err != nil {
		h.a.writeError(w, r, fmt.Errorf("%w: body: %w", errBadRequest, err))
		return
	}
	if len(body) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			h.a.writeError(w, r, fmt.Errorf("%w: body: want {\"position\": …} or {\"seq\": N}: %w", errBadRequest, err))
			return
		}
	}
	if v, _ := p.one("position"); v != "" {
		req.Position = v
	}
	if v, _ := p.one("chronicle"); v != "" {
		req.Chronicle = v
	}
	switch {
	case req.Seq != nil && req.Position != "":
		h.a.writeError(w, r, badParam("position", "give position or seq, not both"))
		return
	case req.Seq != nil:
		req.Position = strconv.FormatUint(*req.Seq, 10)
	case req.Position == "":
		h.a.writeError(w, r, badParam("position", "required: beginning, now, a seq or an RFC 3339 time"))
		return
	}
	c, err := h.s.SetCursor(r.Context(), r.PathValue("name"), req.Position, req.Chronicle)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}
