package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A session is what the web UI's cookie holds instead of the token it
// logged in with: a random id whose SHA-256 is stored in the token bucket
// (key "session.HASH"; token names cannot contain a dot) with the hash of
// the token and an expiry. Logging out deletes it; revoking the token ends
// it, since a session acts only while its token is accepted. A stolen
// cookie thus stops working at logout, and never reveals the token.

const sessionPrefix = "session."

// MaxSessions bounds the sessions stored at once: logins beyond it are
// refused (ErrTooManySessions) until some expire or log out.
const MaxSessions = 10000

// MaxSessionsPerToken bounds one token's sessions: its next login ends
// its oldest, so that one token's logins cannot fill MaxSessions and lock
// everyone else out of the UI.
const MaxSessionsPerToken = 32

// ErrTooManySessions refuses a login while MaxSessions are open.
var ErrTooManySessions = errors.New("too many open sessions")

type sessionRecord struct {
	Token   string    `json:"token"` // hex SHA-256 of the token
	Expires time.Time `json:"expires"`
}

// applySession follows a session record of the bucket; s.mu is not held.
func (s *Store) applySession(e jetstream.KeyValueEntry) {
	id := strings.TrimPrefix(e.Key(), sessionPrefix)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(s.sessions, id)
		return
	}
	var rec sessionRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil || rec.Token == "" {
		s.log.Warn("auth: ignoring an unreadable session record", "err", err)
		return
	}
	s.sessions[id] = rec
}

// CreateSession stores a new session acting as the token secret for ttl
// and returns its id, the cookie's value. The caller has checked the
// token.
func (s *Store) CreateSession(ctx context.Context, secret string, ttl time.Duration) (string, error) {
	s.pruneSessions(ctx)
	s.endOldestSessions(ctx, hashOf(secret))
	s.mu.RLock()
	n := len(s.sessions)
	s.mu.RUnlock()
	if n >= MaxSessions {
		return "", fmt.Errorf("%w: %d; try again later", ErrTooManySessions, n)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	id := "css_" + base64.RawURLEncoding.EncodeToString(raw[:])
	rec := sessionRecord{Token: hashOf(secret), Expires: time.Now().Add(ttl).UTC()}
	b, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	h := hashOf(id)
	if _, err := s.kv.Create(ctx, sessionPrefix+h, b); err != nil {
		return "", fmt.Errorf("auth: storing a session: %w", err)
	}
	s.mu.Lock()
	s.sessions[h] = rec // at once: the watcher's copy may come later
	s.mu.Unlock()
	return id, nil
}

// EndSession deletes the session id (a logout); an unknown one is no
// error.
func (s *Store) EndSession(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	h := hashOf(id)
	s.mu.Lock()
	_, ok := s.sessions[h]
	delete(s.sessions, h)
	s.mu.Unlock()
	if !ok {
		return nil
	}
	if err := s.kv.Delete(ctx, sessionPrefix+h); err != nil {
		return fmt.Errorf("auth: ending a session: %w", err)
	}
	return nil
}

// sessionToken is the token hash of a live session id, or "".
func (s *Store) sessionToken(id string, now time.Time) string {
	if id == "" {
		return ""
	}
	s.mu.RLock()
	rec, ok := s.sessions[hashOf(id)]
	s.mu.RUnlock()
	if !ok || !now.Before(rec.Expires) {
		return ""
	}
	return rec.Token
}

// pruneSessions deletes expired sessions, so that the bucket does not keep
// them forever (Revoke deletes those of a revoked token).
func (s *Store) pruneSessions(ctx context.Context) {
	now := time.Now()
	s.deleteSessions(ctx, func(rec sessionRecord) bool { return !now.Before(rec.Expires) })
}

// deleteSessions deletes the sessions that match.
func (s *Store) deleteSessions(ctx context.Context, match func(sessionRecord) bool) {
	var dead []string
	s.mu.Lock()
	for h, rec := range s.sessions {
		if match(rec) {
			dead = append(dead, h)
			delete(s.sessions, h)
		}
	}
	s.mu.Unlock()
	for _, h := range dead {
		if err := s.kv.Delete(ctx, sessionPrefix+h); err != nil {
			s.log.Debug("auth: deleting an ended session", "err", err)
		}
	}
}

// endOldestSessions ends the oldest sessions of the token hash while it
// has MaxSessionsPerToken or more.
func (s *Store) endOldestSessions(ctx context.Context, token string) {
	s.mu.RLock()
	var mine []sessionRecord
	for _, rec := range s.sessions {
		if rec.Token == token {
			mine = append(mine, rec)
		}
	}
	s.mu.RUnlock()
	if len(mine) < MaxSessionsPerToken {
		return
	}
	slices.SortFunc(mine, func(a, b sessionRecord) int { return a.Expires.Compare(b.Expires) })
	cut := mine[len(mine)-MaxSessionsPerToken].Expires // sessions up to it end
	s.deleteSessions(ctx, func(rec sessionRecord) bool { return rec.Token == token && !rec.Expires.After(cut) })
}
