package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/chronostream/chronostream/event"
)

// Bucket is the JetStream KV bucket holding the scoped tokens, keyed by
// name, so that every node of a cluster shares them.
const Bucket = "CS_TOKENS"

// ErrNotFound and ErrExists are the token store's lookup errors.
var (
	ErrNotFound = errors.New("no such token")
	ErrExists   = errors.New("a token with this name exists")
	ErrInvalid  = errors.New("invalid token request")
)

// Token describes a stored token. Its secret is never stored: Hash is the
// SHA-256 of it. A token is 32 random bytes, so a fast hash is enough — a
// slow one (argon2, bcrypt) protects low-entropy passwords against
// guessing, and nobody can guess 256 random bits.
type Token struct {
	Name       string    `json:"name"`
	ID         string    `json:"id"` // the first hex digits of Hash: safe to show
	Scopes     Scope     `json:"scopes"`
	Chronicles []string  `json:"chronicles,omitempty"`
	Limits     Limits    `json:"limits,omitzero"`
	Created    time.Time `json:"created"`
	LastUsed   time.Time `json:"last_used,omitzero"`
	Hash       string    `json:"hash,omitempty"`
}

// Request is what a new token grants.
type Request struct {
	Name       string   `json:"name"`
	Scopes     Scope    `json:"scopes"`
	Chronicles []string `json:"chronicles,omitempty"`
	Limits     Limits   `json:"limits,omitzero"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// Validate checks a request's name, scopes and chronicles.
func (q Request) Validate() error {
	if !nameRE.MatchString(q.Name) {
		return fmt.Errorf("%w: name %q: want 1 to 64 letters, digits, '-' or '_'", ErrInvalid, q.Name)
	}
	if q.Scopes == 0 || q.Scopes&^ScopeAll != 0 {
		return fmt.Errorf("%w: a token needs one or more of the scopes write, read, admin", ErrInvalid)
	}
	if l := q.Limits; l.EventsPerSecond < 0 || l.BytesPerSecond < 0 || l.MaxTails < 0 {
		return fmt.Errorf("%w: limits must not be negative", ErrInvalid)
	}
	for _, c := range q.Chronicles {
		if err := event.ValidateChronicle(c); err != nil {
			return fmt.Errorf("%w: chronicle: %w", ErrInvalid, err)
		}
	}
	return nil
}

// Store keeps the scoped tokens in a KV bucket and a copy of them in
// memory, by hash, that a watcher keeps current (a token revoked on one
// node stops working on all). It is safe for concurrent use.
type Store struct {
	kv  jetstream.KeyValue
	log *slog.Logger

	mu       sync.RWMutex
	byHash   map[string]*stored
	byName   map[string]*stored
	sessions map[string]sessionRecord // by the hex SHA-256 of the session id

	watcher jetstream.KeyWatcher
	wg      sync.WaitGroup
}

type stored struct {
	Token
	touched atomic.Int64 // unix ns of the last last-used update sent
	lim     *Limiter     // nil without limits
}

// touchEvery bounds the writes that recording last use costs: one per
// token per minute at most.
const touchEvery = time.Minute

// OpenStore opens (creating if needed) the token bucket and loads it.
func OpenStore(ctx context.Context, js jetstream.JetStream, replicas int, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "chronostream scoped tokens (SHA-256 hashes, never the secrets)",
		History:     1,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("auth: token bucket: %w", err)
	}
	s := &Store{kv: kv, log: log, byHash: map[string]*stored{}, byName: map[string]*stored{}, sessions: map[string]sessionRecord{}}
	// The watcher replays the bucket, marks the end of the replay with a
	// nil entry, then follows changes (the other nodes' too).
	w, err := kv.WatchAll(context.Background())
	if err != nil {
		return nil, fmt.Errorf("auth: watch tokens: %w", err)
	}
	s.watcher = w
	for loaded := false; !loaded; {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("auth: token watcher closed while loading")
			}
			if e == nil {
				loaded = true
				break
			}
			s.apply(e)
		case <-ctx.Done():
			_ = w.Stop()
			return nil, fmt.Errorf("auth: loading tokens: %w", ctx.Err())
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for e := range w.Updates() {
			if e != nil {
				s.apply(e)
			}
		}
	}()
	return s, nil
}

// Close stops following the bucket.
func (s *Store) Close() error {
	err := s.watcher.Stop()
	s.wg.Wait()
	return err
}

func (s *Store) apply(e jetstream.KeyValueEntry) {
	if strings.HasPrefix(e.Key(), sessionPrefix) {
		s.applySession(e)
		return
	}
	if e.Operation() != jetstream.KeyValuePut {
		s.forget(e.Key())
		return
	}
	var t Token
	if err := json.Unmarshal(e.Value(), &t); err != nil || t.Hash == "" {
		s.log.Warn("auth: ignoring an unreadable token record", "name", e.Key(), "err", err)
		return
	}
	s.remember(t)
}

func (s *Store) remember(t Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &stored{Token: t}
	if old := s.byName[t.Name]; old != nil {
		delete(s.byHash, old.Hash)
		// A last-use update comes back through the watcher: keep its
		// throttle, or each one would trigger the next, and the
		// limiter's balances and tail count.
		st.touched.Store(old.touched.Load())
		st.lim = old.lim
	}
	switch {
	case t.Limits.IsZero():
		st.lim = nil
	case st.lim != nil:
		st.lim.setLimits(t.Limits)
	default:
		st.lim = newLimiter(t.Limits)
	}
	s.byName[t.Name], s.byHash[t.Hash] = st, st
}

func (s *Store) forget(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.byName[name]; old != nil {
		delete(s.byHash, old.Hash)
		delete(s.byName, name)
	}
}

// Len is the number of stored tokens.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byName)
}

// Create stores a new token and returns its secret, which exists nowhere
// else: the caller shows it once.
func (s *Store) Create(ctx context.Context, q Request) (Token, string, error) {
	if err := q.Validate(); err != nil {
		return Token{}, "", err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return Token{}, "", fmt.Errorf("auth: %w", err)
	}
	secret := "cs_" + base64.RawURLEncoding.EncodeToString(raw[:])
	h := hashOf(secret)
	chronicles := slices.Clone(q.Chronicles)
	slices.Sort(chronicles)
	t := Token{Name: q.Name, ID: h[:12], Scopes: q.Scopes, Chronicles: slices.Compact(chronicles), Limits: q.Limits,
		Created: time.Now().UTC().Truncate(time.Second), Hash: h}
	b, err := json.Marshal(t)
	if err != nil {
		return Token{}, "", fmt.Errorf("auth: %w", err)
	}
	if _, err := s.kv.Create(ctx, t.Name, b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return Token{}, "", fmt.Errorf("%w: %q", ErrExists, t.Name)
		}
		return Token{}, "", fmt.Errorf("auth: storing token %q: %w", t.Name, err)
	}
	s.remember(t) // at once: the watcher's copy may come later
	t.Hash = ""
	return t, secret, nil
}

// List returns the stored tokens by name, without their hashes.
func (s *Store) List() []Token {
	s.mu.RLock()
	out := make([]Token, 0, len(s.byName))
	for _, st := range s.byName {
		t := st.Token
		t.Hash = ""
		out = append(out, t)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Token) int { return cmpString(a.Name, b.Name) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Revoke deletes the token named, or whose ID is, nameOrID.
func (s *Store) Revoke(ctx context.Context, nameOrID string) (Token, error) {
	s.mu.RLock()
	st := s.byName[nameOrID]
	if st == nil && nameOrID != "" {
		for _, c := range s.byName {
			if c.ID == nameOrID {
				st = c
				break
			}
		}
	}
	s.mu.RUnlock()
	if st == nil {
		return Token{}, fmt.Errorf("%w: %q", ErrNotFound, nameOrID)
	}
	if err := s.kv.Delete(ctx, st.Name); err != nil {
		return Token{}, fmt.Errorf("auth: revoking %q: %w", st.Name, err)
	}
	s.forget(st.Name)
	// Its sessions would not act any more; they need not stay stored.
	s.deleteSessions(ctx, func(rec sessionRecord) bool { return rec.Token == st.Hash })
	t := st.Token
	t.Hash = ""
	return t, nil
}

// lookup returns the principal of a presented secret by the hex of its
// hash, or nil, and records its use (at most once a minute, in the
// background).
func (s *Store) lookup(hexHash []byte) *Principal {
	s.mu.RLock()
	st := s.byHash[string(hexHash)]
	s.mu.RUnlock()
	if st == nil {
		return nil
	}
	now := time.Now()
	if last := st.touched.Load(); now.UnixNano()-last > int64(touchEvery) && st.touched.CompareAndSwap(last, now.UnixNano()) {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.touch(st.Name, now)
		}()
	}
	return &Principal{Name: st.Name, Scopes: st.Scopes, Chronicles: st.Chronicles, limiter: st.lim}
}

// touch records a token's last use, unless it was revoked meanwhile.
func (s *Store) touch(name string, at time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := s.kv.Get(ctx, name)
	if err != nil {
		return
	}
	var t Token
	if json.Unmarshal(e.Value(), &t) != nil {
		return
	}
	t.LastUsed = at.UTC().Truncate(time.Second)
	b, _ := json.Marshal(t)
	// Update, not Put: a revocation in between wins.
	if _, err := s.kv.Update(ctx, name, b, e.Revision()); err != nil {
		s.log.Debug("auth: recording a token's last use", "name", name, "err", err)
	}
}

func hashOf(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}
