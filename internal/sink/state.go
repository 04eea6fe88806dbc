package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the JetStream key-value bucket that holds every sink's durable
// state: its cursor ("cursor.<name>") and the lease of the node that runs
// it ("lease.<name>"). It is replicated like the chronicles, so a sink
// resumes on any node from the cursor the last holder committed.
const Bucket = "CS_SINKS"

// ErrConflict says a compare-and-set lost: someone else (the API, another
// node) changed the record since it was read.
var ErrConflict = errors.New("sink: the record changed meanwhile")

// ErrNoCursor says a sink has no cursor yet.
var ErrNoCursor = errors.New("sink: no cursor")

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$`)

// ValidateName checks a sink name: 1 to 64 letters, digits, '_', '-' or
// '.', so that it is a key of the state bucket and a path segment as is.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("invalid sink name %q: want 1 to 64 letters, digits, '_', '-' or '.' (not first)", name)
	}
	return nil
}

// Cursor is a sink's durable position: every event of the chronicle up to
// and including Seq has been delivered, dead-lettered or skipped by the
// selection. Paused is kept with it so that every node agrees.
type Cursor struct {
	Seq       uint64    `json:"seq"`
	Chronicle string    `json:"chronicle,omitempty"`
	Paused    bool      `json:"paused,omitempty"`
	Updated   time.Time `json:"updated"`
	// By names the writer (a runner instance, "api"): a runner that sees a
	// change by anyone else reloads.
	By string `json:"by,omitempty"`
}

// State is the sinks' bucket.
type State struct {
	kv jetstream.KeyValue
}

// OpenState creates (or opens) the bucket.
func OpenState(ctx context.Context, js jetstream.JetStream, replicas int, memory bool) (*State, error) {
	storage := jetstream.FileStorage
	if memory {
		storage = jetstream.MemoryStorage
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "chronostream sinks: cursors and leases",
		History:     1,
		Storage:     storage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("sink: state bucket: %w", err)
	}
	return &State{kv: kv}, nil
}

func cursorKey(name string) string { return "cursor." + name }
func leaseKey(name string) string  { return "lease." + name }

// Cursor returns a sink's cursor and its revision (for SetCursor's CAS).
func (s *State) Cursor(ctx context.Context, name string) (Cursor, uint64, error) {
	var c Cursor
	e, err := s.kv.Get(ctx, cursorKey(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return c, 0, ErrNoCursor
	}
	if err != nil {
		return c, 0, fmt.Errorf("sink: read cursor of %s: %w", name, err)
	}
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return c, 0, fmt.Errorf("sink: cursor of %s: %w", name, err)
	}
	return c, e.Revision(), nil
}

// SetCursor writes a cursor. rev is the revision read (0: the cursor must
// not exist yet), or -1 to write unconditionally. It returns the new
// revision, or ErrConflict.
func (s *State) SetCursor(ctx context.Context, name string, c Cursor, rev int64) (uint64, error) {
	c.Updated = time.Now().UTC()
	b, _ := json.Marshal(c)
	var (
		n   uint64
		err error
	)
	switch {
	case rev < 0:
		n, err = s.kv.Put(ctx, cursorKey(name), b)
	case rev == 0:
		n, err = s.kv.Create(ctx, cursorKey(name), b)
	default:
		n, err = s.kv.Update(ctx, cursorKey(name), b, uint64(rev))
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, ErrConflict
	}
	if err != nil {
		return 0, fmt.Errorf("sink: write cursor of %s: %w", name, err)
	}
	return n, nil
}

// DeleteCursor forgets a sink's cursor.
func (s *State) DeleteCursor(ctx context.Context, name string) error {
	if err := s.kv.Delete(ctx, cursorKey(name)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("sink: delete cursor of %s: %w", name, err)
	}
	return nil
}

// Cursors is where a runner keeps its cursor: the state bucket in the
// server (*State), or the server's API for `chronostream forward`.
type Cursors interface {
	// Cursor returns the cursor and its revision (ErrNoCursor if none).
	Cursor(ctx context.Context, name string) (Cursor, uint64, error)
	// SetCursor writes it if the revision is still rev (0: absent; -1:
	// unconditionally), returning the new revision or ErrConflict.
	SetCursor(ctx context.Context, name string, c Cursor, rev int64) (uint64, error)
	// WatchCursor reports later changes of the record until ctx ends. A
	// store that cannot watch returns a nil channel.
	WatchCursor(ctx context.Context, name string) (<-chan Cursor, error)
}

// WatchCursor implements Cursors.
func (s *State) WatchCursor(ctx context.Context, name string) (<-chan Cursor, error) {
	w, err := s.kv.Watch(ctx, cursorKey(name), jetstream.UpdatesOnly())
	if err != nil {
		return nil, fmt.Errorf("sink: watch cursor of %s: %w", name, err)
	}
	out := make(chan Cursor, 1)
	go func() {
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				var c Cursor
				if e == nil || e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &c) != nil {
					if e != nil && e.Operation() != jetstream.KeyValuePut {
						c = Cursor{By: "deleted"}
					} else {
						continue
					}
				}
				select {
				case out <- c:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
