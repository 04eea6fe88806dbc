package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Scope is a set of permissions a token grants: write (ingest), read
// (query, tail, export, the UI) and admin (retention, sinks, tokens).
type Scope uint8

const (
	ScopeWrite Scope = 1 << iota
	ScopeRead
	ScopeAdmin

	// ScopeAll is what the tokens of --token (and of the config file)
	// grant, as every token did before scopes existed.
	ScopeAll = ScopeWrite | ScopeRead | ScopeAdmin
)

var scopeNames = []struct {
	s    Scope
	name string
}{{ScopeWrite, "write"}, {ScopeRead, "read"}, {ScopeAdmin, "admin"}}

// ErrForbidden is the error of a request whose token lacks the scope or
// the chronicle it needs. Transports answer it with their "forbidden"
// (HTTP 403); it wraps nothing secret.
var ErrForbidden = errors.New("forbidden")

// ParseScopes reads a comma-separated list of scope names ("write,read").
func ParseScopes(list string) (Scope, error) {
	var s Scope
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		i := slices.IndexFunc(scopeNames, func(n struct {
			s    Scope
			name string
		}) bool {
			return n.name == f
		})
		if i < 0 {
			return 0, fmt.Errorf("unknown scope %q (want write, read or admin)", f)
		}
		s |= scopeNames[i].s
	}
	if s == 0 {
		return 0, errors.New("no scope given (want write, read or admin)")
	}
	return s, nil
}

// Names returns the names of the scopes in s.
func (s Scope) Names() []string {
	out := []string{}
	for _, n := range scopeNames {
		if s&n.s != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

func (s Scope) String() string { return strings.Join(s.Names(), ",") }

// MarshalJSON writes s as a list of names.
func (s Scope) MarshalJSON() ([]byte, error) { return json.Marshal(s.Names()) }

// UnmarshalJSON reads a list of names.
func (s *Scope) UnmarshalJSON(b []byte) error {
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		return err
	}
	v, err := ParseScopes(strings.Join(names, ","))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Principal is who a request acts as: the token it presented, with that
// token's scopes and chronicles. Handlers find it in the request's context
// (FromContext) and ask it Can(scope, chronicle) where they resolve the
// chronicle a request touches.
type Principal struct {
	Name   string // the token's name ("config" for --token tokens)
	Scopes Scope
	// Chronicles limits the token to these chronicles; empty means all.
	Chronicles []string
	// limiter enforces the token's Limits (nil: none).
	limiter *Limiter
}

// Can reports whether p may act with scope on chronicle ("" for a request
// that names no chronicle: then only the scope counts). A nil Principal
// can do anything: requests carry none when no token is configured, or on
// transports authenticated otherwise (the Forward handshake's shared key;
// Graphite is loopback-only unless the operator opted in).
func (p *Principal) Can(scope Scope, chronicle string) bool {
	if p == nil {
		return true
	}
	if p.Scopes&scope != scope {
		return false
	}
	return chronicle == "" || len(p.Chronicles) == 0 || slices.Contains(p.Chronicles, chronicle)
}

// Check is Can as an error wrapping ErrForbidden that says what was
// missing, for handlers to map to their protocol's refusal.
func (p *Principal) Check(scope Scope, chronicle string) error {
	if p.Can(scope, chronicle) {
		return nil
	}
	if p.Scopes&scope != scope {
		return fmt.Errorf("%w: the token %q lacks the %s scope", ErrForbidden, p.Name, scope)
	}
	return fmt.Errorf("%w: the token %q may not %s chronicle %q", ErrForbidden, p.Name, scope, chronicle)
}

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the Principal of ctx, or nil (who can do anything;
// see Can).
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(ctxKey{}).(*Principal)
	return p
}
