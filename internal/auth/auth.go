// Package auth checks the tokens that protect every ingest, read and tail
// route. Until scoped tokens exist, any configured token grants access.
package auth

import (
	"crypto/subtle"
	"encoding/json"
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

// Allowed reports whether the request carries an accepted token in a
// header, in any of the ways clients send one: "Authorization: Token T"
// (InfluxDB), "Authorization: Bearer T", or basic auth with T as the
// password.
func (t *Tokens) Allowed(r *http.Request) bool {
	if !t.Enabled() {
		return true
	}
	return t.valid(Credential(r))
}

// Credential extracts the token a request presents in its Authorization
// header, or "".
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
	return ""
}

// QueryCredential extracts the token of InfluxDB 1.x's query parameters,
// or "": clients (the influx CLI, Telegraf's v1 output) send credentials
// as ?u=USER&p=PASSWORD, and only the password is the token. The query
// holding it must never be logged or recorded.
func QueryCredential(r *http.Request) string {
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

// Require wraps h so that requests without an accepted token in a header
// get 401, in plain text.
func (t *Tokens) Require(h http.Handler) http.Handler { return t.Guard(Route{})(h) }

// Route says how a route takes credentials and refuses requests without.
type Route struct {
	// Deny writes the 401 in the format of the route's clients (after
	// WWW-Authenticate is set); nil writes plain text.
	Deny func(w http.ResponseWriter, r *http.Request)
	// QueryToken also takes the token from InfluxDB 1.x's ?u=&p= (see
	// QueryCredential). Only 1.x routes take it: a token in a URL ends up
	// in proxies' logs and shell histories, and the read API's URLs are
	// shared.
	QueryToken bool
}

// Guard returns a wrapper that gives requests to a route of rt without an
// accepted token 401.
func (t *Tokens) Guard(rt Route) func(http.Handler) http.Handler {
	deny := rt.Deny
	if deny == nil {
		deny = denyText
	}
	return func(h http.Handler) http.Handler {
		if !t.Enabled() {
			return h
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !t.valid(Credential(r)) && (!rt.QueryToken || !t.valid(QueryCredential(r))) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="chronostream"`)
				deny(w, r)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

const unauthorized = "a valid token is required (Authorization: Bearer TOKEN)"

func denyText(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "unauthorized: "+unauthorized, http.StatusUnauthorized)
}

// Problem answers 401 as an RFC 7807 problem document, as chronostream's
// API (and Trendlines') answer errors.
func Problem(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusUnauthorized)
	_ = json.NewEncoder(w).Encode(struct {
		Type     string `json:"type"`
		Title    string `json:"title"`
		Status   int    `json:"status"`
		Detail   string `json:"detail"`
		Instance string `json:"instance"`
	}{"about:blank", "Unauthorized", http.StatusUnauthorized, unauthorized, r.URL.Path})
}
