package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/chronostream/chronostream/internal/store"
)

// problem is an RFC 7807 problem document. Type is always about:blank, so
// Title is the status text; Detail and Param say what was wrong.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Param names the query parameter or header at fault, when there is one.
	Param string `json:"param,omitempty"`
}

// paramError is a bad request naming the parameter at fault.
type paramError struct {
	param string
	err   error
}

func (e *paramError) Error() string { return fmt.Sprintf("parameter %q: %v", e.param, e.err) }
func (e *paramError) Unwrap() error { return e.err }

func badParam(param, format string, args ...any) error {
	return &paramError{param: param, err: fmt.Errorf(format, args...)}
}

// errBadRequest marks client errors that name no parameter (a bad body).
var errBadRequest = errors.New("bad request")

// writeError maps an error to its response; this is the one place where
// errors become statuses.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := problem{Type: "about:blank", Instance: r.URL.Path}
	var pe *paramError
	switch {
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return // the client left; nobody reads the answer
	case errors.As(err, &pe):
		p.Status, p.Param, p.Detail = http.StatusBadRequest, pe.param, err.Error()
	case errors.Is(err, errBadRequest), errors.Is(err, store.ErrInvalidName), errors.Is(err, store.ErrInvalidCursor):
		p.Status, p.Detail = http.StatusBadRequest, err.Error()
	case errors.Is(err, store.ErrNotFound):
		p.Status, p.Detail = http.StatusNotFound, err.Error()
	case errors.Is(err, store.ErrNoPlacement):
		p.Status, p.Detail = http.StatusServiceUnavailable, err.Error()
	case errors.Is(err, store.ErrClosed):
		p.Status, p.Detail = http.StatusServiceUnavailable, "the server is shutting down"
	default:
		p.Status, p.Detail = http.StatusInternalServerError, "internal error; see the server log"
		a.cfg.Logger.Error("api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	p.Title = http.StatusText(p.Status)
	writeProblem(w, p)
}

func writeProblem(w http.ResponseWriter, p problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
