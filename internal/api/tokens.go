package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/store"
)

// Tokens is what the tokens API needs of the token store (auth.Store).
type Tokens interface {
	Create(ctx context.Context, q auth.Request) (auth.Token, string, error)
	List() []auth.Token
	Revoke(ctx context.Context, nameOrID string) (auth.Token, error)
	// CreateSession and EndSession keep the web UI's sessions: the
	// cookie holds a session id, never the token.
	CreateSession(ctx context.Context, secret string, ttl time.Duration) (string, error)
	EndSession(ctx context.Context, id string) error
}

// SessionTTL is how long the web UI's session cookie lasts.
const SessionTTL = 12 * time.Hour

// maxTokenBody bounds the bodies of token and session requests.
const maxTokenBody = 16 << 10

// RegisterTokens adds /api/v1/tokens (admin: create, list, revoke) behind
// admin, and /api/v1/session, where the web UI trades a read token for a
// session cookie (POST, unguarded: it checks the token itself), reads who
// it is (GET, behind read) and logs out (DELETE). lookup resolves a
// token as the guard does.
func (a *API) RegisterTokens(mux *http.ServeMux, admin, read func(http.Handler) http.Handler,
	tokens Tokens, lookup func(secret string) *auth.Principal) {
	h := &tokensAPI{a: a, t: tokens, lookup: lookup}
	mux.Handle("GET /api/v1/tokens", admin(http.HandlerFunc(h.list)))
	mux.Handle("POST /api/v1/tokens", admin(http.HandlerFunc(h.create)))
	mux.Handle("DELETE /api/v1/tokens/{name}", admin(http.HandlerFunc(h.revoke)))
	mux.HandleFunc("POST /api/v1/session", h.login)
	mux.Handle("GET /api/v1/session", read(http.HandlerFunc(h.whoami)))
	mux.HandleFunc("DELETE /api/v1/session", h.logout)
}

type tokensAPI struct {
	a      *API
	t      Tokens
	lookup func(string) *auth.Principal
}

// fail maps the token store's errors onto the API's classes.
func (h *tokensAPI) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, auth.ErrExists):
		writeProblem(w, problem{Type: "about:blank", Title: http.StatusText(http.StatusConflict),
			Status: http.StatusConflict, Detail: err.Error(), Instance: r.URL.Path})
		return
	case errors.Is(err, auth.ErrInvalid):
		err = fmt.Errorf("%w: %w", errBadRequest, err)
	case errors.Is(err, auth.ErrNotFound):
		err = fmt.Errorf("%w: %w", store.ErrNotFound, err)
	}
	h.a.writeError(w, r, err)
}

func (h *tokensAPI) list(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"tokens": h.t.List()})
}

// created is the answer to a token's creation: the only time its secret
// is shown.
type created struct {
	Token  auth.Token `json:"token"`
	Secret string     `json:"secret"`
}

func (h *tokensAPI) create(w http.ResponseWriter, r *http.Request) {
	var q auth.Request
	if err := decodeBody(w, r, &q); err != nil {
		h.fail(w, r, err)
		return
	}
	t, secret, err := h.t.Create(r.Context(), q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.a.cfg.Logger.Info("api: token created", "name", t.Name, "id", t.ID, "scopes", t.Scopes.String(),
		"chronicles", t.Chronicles, "by", auth.FromContext(r.Context()).Name)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, created{t, secret})
}

func (h *tokensAPI) revoke(w http.ResponseWriter, r *http.Request) {
	t, err := h.t.Revoke(r.Context(), r.PathValue("name"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.a.cfg.Logger.Info("api: token revoked", "name", t.Name, "id", t.ID)
	writeJSON(w, http.StatusOK, t)
}

// login takes a read token from a JSON body {"token": "..."} (never from
// the URL), opens a session acting as it and sets the session's id as the
// cookie.
func (h *tokensAPI) login(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Token string `json:"token"`
	}
	if err := decodeBody(w, r, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	p := h.lookup(body.Token)
	if p == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="chronostream"`)
		auth.Problem(w, r)
		return
	}
	if err := p.Check(auth.ScopeRead, ""); err != nil {
		auth.ProblemForbidden(w, r, err)
		return
	}
	id, err := h.t.CreateSession(r.Context(), body.Token, SessionTTL)
	if errors.Is(err, auth.ErrTooManySessions) {
		writeProblem(w, problem{Type: "about:blank", Title: http.StatusText(http.StatusServiceUnavailable),
			Status: http.StatusServiceUnavailable, Detail: err.Error(), Instance: r.URL.Path})
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	auth.SetSession(w, id, h.a.cfg.URLPrefix, r.TLS != nil, SessionTTL)
	writeJSON(w, http.StatusOK, principalJSON(p))
}

func (h *tokensAPI) whoami(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, principalJSON(auth.FromContext(r.Context())))
}

// logout ends the session server-side (a copy of the cookie stops working
// too) and clears the cookie.
func (h *tokensAPI) logout(w http.ResponseWriter, r *http.Request) {
	if err := h.t.EndSession(r.Context(), auth.SessionCredential(r)); err != nil {
		h.fail(w, r, err)
		return
	}
	auth.ClearSession(w, h.a.cfg.URLPrefix, r.TLS != nil)
	w.WriteHeader(http.StatusNoContent)
}

type principal struct {
	Name       string     `json:"name"`
	Scopes     auth.Scope `json:"scopes"`
	Chronicles []string   `json:"chronicles,omitempty"`
}

// principalJSON describes p; nil (no tokens configured) can do anything.
func principalJSON(p *auth.Principal) principal {
	if p == nil {
		return principal{Name: "anonymous", Scopes: auth.ScopeAll}
	}
	return principal{p.Name, p.Scopes, p.Chronicles}
}

// decodeBody reads a bounded JSON body into v.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxTokenBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: the body: %w", errBadRequest, err)
	}
	return nil
}
