// Package auth checks the tokens that protect every HTTP route: the
// full-access tokens of --token and the scoped tokens of the token store
// (write, read, admin, optionally limited to chronicles). The guard puts
// the request's Principal in its context; handlers ask it Can(scope,
// chronicle) where they resolve the chronicle a request touches.
package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Tokens is the set of accepted tokens: the configured full-access ones
// and, once UseStore is called, the scoped ones of the store. With none at
// all every request is accepted (allowed only on loopback or with an
// explicit opt-out, see server.Options).
type Tokens struct {
	static map[string]bool // SHA-256 hashes of --token tokens
	store  atomic.Pointer[Store]
	// OnReject, if set, counts each refusal by reason: "unauthorized"
	// (no accepted token) or "forbidden" (scope or chronicle). Set it
	// before serving.
	OnReject func(reason string)
}

func (t *Tokens) reject(reason string) {
	if t.OnReject != nil {
		t.OnReject(reason)
	}
}

// New returns the set of full-access tokens; empty strings are ignored.
func New(tokens []string) *Tokens {
	t := &Tokens{static: map[string]bool{}}
	for _, s := range tokens {
		if s = strings.TrimSpace(s); s != "" {
			t.static[hashOf(s)] = true
		}
	}
	return t
}

// UseStore adds the scoped tokens of s.
func (t *Tokens) UseStore(s *Store) { t.store.Store(s) }

// Enabled reports whether any token is configured or stored.
func (t *Tokens) Enabled() bool {
	if len(t.static) > 0 {
		return true
	}
	s := t.store.Load()
	return s != nil && s.Len() > 0
}

// HasStatic reports whether full-access tokens are configured.
func (t *Tokens) HasStatic() bool { return len(t.static) > 0 }

// configPrincipal is who a --token token acts as.
var configPrincipal = &Principal{Name: "config", Scopes: ScopeAll}

// Lookup returns the principal of a presented token, or nil if it is not
// accepted. Comparing hashes (in a map) rather than secrets keeps the
// comparison's time independent of how much of a guess was right.
func (t *Tokens) Lookup(secret string) *Principal {
	if secret == "" {
		return nil
	}
	// The hex key is looked up as string(key[:]), which does not allocate.
	var key [2 * sha256.Size]byte
	h := sha256.Sum256([]byte(secret))
	hex.Encode(key[:], h[:])
	return t.lookupHash(key[:])
}

// lookupHash returns the principal of a token by the hex of its hash.
func (t *Tokens) lookupHash(key []byte) *Principal {
	if t.static[string(key)] {
		return configPrincipal
	}
	if s := t.store.Load(); s != nil {
		return s.lookup(key)
	}
	return nil
}

// LookupSession returns the principal of a UI session id (the cookie's
// value), or nil if it is unknown, expired, or its token is no longer
// accepted.
func (t *Tokens) LookupSession(id string) *Principal {
	s := t.store.Load()
	if s == nil {
		return nil
	}
	h := s.sessionToken(id, time.Now())
	if h == "" {
		return nil
	}
	return t.lookupHash([]byte(h))
}

// Allowed reports whether the request carries an accepted token in a
// header, in any of the ways clients send one: "Authorization: Token T"
// (InfluxDB), "Authorization: Bearer T", or basic auth with T as the
// password.
func (t *Tokens) Allowed(r *http.Request) bool {
	return !t.Enabled() || t.Lookup(Credential(r)) != nil
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
	return WebSocketCredential(r)
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

// maxFormBytes bounds a form body the guard reads for its p (FormToken):
// the /query handler takes a query of at most 1 MiB.
const maxFormBytes = 2 << 20

// FormCredential extracts the p of a POST form body, or "": InfluxDB 1.x
// clients (influxdb-python, the Java client) POST a query with u and p in
// the form rather than the URL. The form stays parsed for the handler
// (r.PostForm); like the query string, it must never be logged.
func FormCredential(r *http.Request) string {
	if r.Method != http.MethodPost || r.Body == nil {
		return ""
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
		return ""
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return "" // refused as without a token; the handler sees no form
	}
	return r.PostForm.Get("p")
}

// Require wraps h so that requests without an accepted token in a header
// get 401, in plain text; the scope needed follows the method (ByMethod).
func (t *Tokens) Require(h http.Handler) http.Handler { return t.Guard(Route{})(h) }

// Route says what a route needs and how it takes credentials and refuses
// requests without.
type Route struct {
	// Scope says what a request to the route needs; nil is ByMethod.
	Scope func(*http.Request) Scope
	// Chronicle, if set, is the chronicle the route touches when the
	// request names none (RequestChronicle): Trendlines' metrics
	// chronicle, the chronicle of a Vivo exporter path.
	Chronicle func(*http.Request) string
	// AllChronicles marks a route whose admin requests reach beyond any
	// one chronicle (tokens, sinks): only a token for every chronicle may
	// make them — one limited to "app" must not mint a token for all.
	AllChronicles bool
	// Deny writes the 401 in the format of the route's clients (after
	// WWW-Authenticate is set); nil writes plain text. Forbid writes the
	// refusal of a known token with the status Status(err) gives: 403
	// without the scope or chronicle, 429 over a limit (after Retry-After
	// is set); nil writes plain text.
	Deny   func(w http.ResponseWriter, r *http.Request)
	Forbid func(w http.ResponseWriter, r *http.Request, err error)
	// QueryToken also takes the token from InfluxDB 1.x's ?u=&p= (see
	// QueryCredential). Only 1.x routes take it: a token in a URL ends up
	// in proxies' logs and shell histories, and the read API's URLs are
	// shared.
	QueryToken bool
	// FormToken also takes it from a POST form body's p (FormCredential):
	// /query only, whose body is a form; /write's is line protocol.
	FormToken bool
}

// Needs is the Route.Scope of a route that needs s whatever the method.
func Needs(s Scope) func(*http.Request) Scope {
	return func(*http.Request) Scope { return s }
}

// ReadOr is the Route.Scope of a route that GET and HEAD read and other
// methods change with scope s (the sinks API: reading a status is a read,
// pausing a sink is admin).
func ReadOr(s Scope) func(*http.Request) Scope {
	return func(r *http.Request) Scope {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			return ScopeRead
		}
		return s
	}
}

// ByMethod is the scope a route needs when it declares none: reads for
// GET and HEAD, writes (ingest) for POST, admin for the rest (PUT, DELETE
// change retention and sinks).
func ByMethod(r *http.Request) Scope {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return ScopeRead
	case http.MethodPost:
		return ScopeWrite
	}
	return ScopeAdmin
}

// RequestChronicle is the chronicle a request names up front, if any: a
// {chronicle} path segment, the chronicle=, db= (InfluxDB 1.x) or bucket=
// (2.x) query parameter, or the X-Chronostream-Chronicle header. The guard
// refuses a token limited to other chronicles early; handlers check again
// where they resolve the chronicle (ingest.Pipeline.Story, the InfluxQL
// engine's index), which covers chronicles named in bodies too.
func RequestChronicle(r *http.Request) string {
	if c := r.PathValue("chronicle"); c != "" {
		return c
	}
	q := r.URL.Query()
	for _, k := range []string{"chronicle", "db", "bucket"} {
		if c := q.Get(k); c != "" {
			return c
		}
	}
	return r.Header.Get("X-Chronostream-Chronicle")
}

// Guard returns a wrapper that gives requests to a route of rt without an
// accepted token 401, those whose token lacks the route's scope or the
// request's chronicle 403, and those over the token's limits 429;
// accepted requests carry their Principal in their context.
func (t *Tokens) Guard(rt Route) func(http.Handler) http.Handler {
	deny := rt.Deny
	if deny == nil {
		deny = denyText
	}
	forbid := rt.Forbid
	if forbid == nil {
		forbid = forbidText
	}
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !t.Enabled() {
				h.ServeHTTP(w, r)
				return
			}
			needs := rt.Scope
			if needs == nil {
				needs = ByMethod
			}
			scope := needs(r)
			p := t.Lookup(Credential(r))
			if p == nil && rt.QueryToken {
				p = t.Lookup(QueryCredential(r))
			}
			if p == nil && rt.FormToken {
				p = t.Lookup(FormCredential(r))
			}
			if p == nil && scope == ScopeRead && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
				// The UI's session cookie: for reads only. SameSite=Strict
				// keeps other sites' pages from sending it, and no write
				// route takes it, so a cross-site form cannot write.
				p = t.LookupSession(SessionCredential(r))
			}
			if p == nil {
				t.reject("unauthorized")
				w.Header().Set("WWW-Authenticate", `Bearer realm="chronostream"`)
				deny(w, r)
				return
			}
			chronicle := RequestChronicle(r)
			if chronicle == "" && rt.Chronicle != nil {
				chronicle = rt.Chronicle(r)
			}
			err := p.Check(scope, chronicle)
			if err == nil && rt.AllChronicles && scope&ScopeAdmin != 0 && len(p.Chronicles) > 0 {
				err = fmt.Errorf("%w: the token %q is limited to chronicles; this needs an admin token for all of them", ErrForbidden, p.Name)
			}
			if err != nil {
				t.reject("forbidden")
				forbid(w, r, err)
				return
			}
			if scope&ScopeWrite != 0 {
				if wait, ok := p.limiter.Admit(time.Now()); !ok {
					t.reject("rate_limited")
					w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
					forbid(w, r, fmt.Errorf("%w: the token %q used up its ingest rate; retry after %s", ErrRateLimited, p.Name, wait))
					return
				}
			}
			// A live tail holds a connection for as long as the client
			// wants: the token's MaxTails bounds how many at once.
			// By the route's pattern, not the path: a chronicle or a
			// Trendlines metric may be named "tail".
			if strings.HasSuffix(r.Pattern, "/tail") {
				if !p.limiter.startTail() {
					t.reject("too_many_tails")
					w.Header().Set("Retry-After", "10")
					forbid(w, r, fmt.Errorf("%w: the token %q has its maximum of live tails open", ErrTooManyTails, p.Name))
					return
				}
				defer p.limiter.endTail()
			}
			h.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		})
	}
}

const unauthorized = "a valid token is required (Authorization: Bearer TOKEN)"

func denyText(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "unauthorized: "+unauthorized, http.StatusUnauthorized)
}

func forbidText(w http.ResponseWriter, r *http.Request, err error) {
	http.Error(w, err.Error(), Status(err))
}

// Problem answers 401 as an RFC 7807 problem document, as chronostream's
// API (and Trendlines') answer errors.
func Problem(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, r, http.StatusUnauthorized, unauthorized)
}

// ProblemForbidden answers a refusal (403, or 429 for a limit: Status) as
// an RFC 7807 problem document.
func ProblemForbidden(w http.ResponseWriter, r *http.Request, err error) {
	writeProblem(w, r, Status(err), err.Error())
}

func writeProblem(w http.ResponseWriter, r *http.Request, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Type     string `json:"type"`
		Title    string `json:"title"`
		Status   int    `json:"status"`
		Detail   string `json:"detail"`
		Instance string `json:"instance"`
	}{"about:blank", http.StatusText(status), status, detail, r.URL.Path})
}
