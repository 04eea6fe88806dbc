// Package auth checks the tokens that protect every ingest, read and tail
// route. Until scoped tokens exist, any configured token grants access.
package auth

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// Tokens is the set of accepted tokens; an empty set accepts every request
// (allowed only on loopback or with an explicit opt-out, see server.Options).
type Tokens struct {
	list []string
}

// New returns the set of tokens; empty strings are ignored.
func New(tokens []string) *Tokens {
	t := &Tokens{}
	for _, s := range tokens {
		if s = strings.TrimSpace(s); s != "" {
			t.list = append(t.list, s)
		}
	}
	return t
}

// Enabled reports whether any token is configured.
func (t *Tokens) Enabled() bool { return len(t.list) > 0 }

// Allowed reports whether the request carries an accepted token, in any of
// the ways clients send one: "Authorization: Token T" (InfluxDB),
// "Authorization: Bearer T", basic auth with T as the password, or
// InfluxDB 1.x's u and p query parameters with T as p.
func (t *Tokens) Allowed(r *http.Request) bool {
	if !t.Enabled() {
		return true
	}
	return t.valid(Credential(r))
}

// Credential extracts the token a request presents, or "".
func Credential(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if scheme, rest, ok := strings.Cut(h, " "); ok {
		switch strings.ToLower(scheme) {
		case "token", "bearer":
			return strings.TrimSpace(rest)
		}
	}
	if _, p, ok := r.BasicAuth(); ok {
		return p
	}
	// InfluxDB 1.x clients (the influx CLI, Telegraf's v1 output) send
	// credentials as ?u=USER&p=PASSWORD. Only the password is the token.
	// The query holding it must never be logged or recorded.
	if r.URL != nil && strings.Contains(r.URL.RawQuery, "p=") {
		return r.URL.Query().Get("p")
	}
	return ""
}

func (t *Tokens) valid(tok string) bool {
	if tok == "" {
		return false
	}
	ok := 0
	for _, s := range t.list {
		ok |= subtle.ConstantTimeCompare([]byte(s), []byte(tok))
	}
	return ok == 1
}

// Require wraps h so that requests without an accepted token get 401.
func (t *Tokens) Require(h http.Handler) http.Handler {
	if !t.Enabled() {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !t.Allowed(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="chronostream"`)
			http.Error(w, "unauthorized: a valid token is required (Authorization: Bearer TOKEN)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
