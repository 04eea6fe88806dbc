package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultLeaseTTL is how long a lease lasts without renewal: the time a
// sink stays stopped after its node dies, before another node takes over.
const DefaultLeaseTTL = 15 * time.Second

type leaseRecord struct {
	Node    string    `json:"node"`
	Expires time.Time `json:"expires"`
}

// Lease makes one node of a cluster run a sink: the node that holds the
// lease key (compare-and-set on its revision) until it expires. Clocks of
// the nodes must agree to well within the TTL.
type Lease struct {
	state *State
	name  string
	node  string
	ttl   time.Duration
	log   *slog.Logger

	rev uint64 // of the record this node wrote, while it holds it
}

// NewLease returns the lease of sink name for node.
func (s *State) NewLease(name, node string, ttl time.Duration, log *slog.Logger) *Lease {
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	return &Lease{state: s, name: name, node: node, ttl: ttl, log: log}
}

// acquire takes or renews the lease; it reports whether this node holds it.
func (l *Lease) acquire(ctx context.Context) (bool, error) {
	kv, key := l.state.kv, leaseKey(l.name)
	rec, _ := json.Marshal(leaseRecord{Node: l.node, Expires: time.Now().Add(l.ttl).UTC()})
	if l.rev != 0 { // renewal: only if nobody took it meanwhile
		rev, err := kv.Update(ctx, key, rec, l.rev)
		if err == nil {
			l.rev = rev
			return true, nil
		}
		l.rev = 0
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			return false, nil
		}
		return false, fmt.Errorf("sink %s: renew lease: %w", l.name, err)
	}
	e, err := kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		rev, err := kv.Create(ctx, key, rec)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("sink %s: take lease: %w", l.name, err)
		}
		l.rev = rev
		return true, nil
	case err != nil:
		return false, fmt.Errorf("sink %s: read lease: %w", l.name, err)
	}
	var cur leaseRecord
	if json.Unmarshal(e.Value(), &cur) == nil && cur.Node != l.node && time.Now().Before(cur.Expires) {
		return false, nil // held by a live node
	}
	rev, err := kv.Update(ctx, key, rec, e.Revision())
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sink %s: take lease: %w", l.name, err)
	}
	l.rev = rev
	return true, nil
}

// release gives the lease up so another node need not wait for it to expire.
func (l *Lease) release() {
	if l.rev == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = l.state.kv.Delete(ctx, leaseKey(l.name), jetstream.LastRevision(l.rev))
	l.rev = 0
}

// Holder returns the node that holds the lease ("" if none or expired).
func (s *State) Holder(ctx context.Context, name string) (string, error) {
	e, err := s.kv.Get(ctx, leaseKey(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("sink %s: read lease: %w", name, err)
	}
	var rec leaseRecord
	if json.Unmarshal(e.Value(), &rec) != nil || time.Now().After(rec.Expires) {
		return "", nil
	}
	return rec.Node, nil
}

// Run calls fn whenever this node holds the lease, with a context that is
// cancelled as soon as the lease may be lost (a renewal failed); it waits
// for fn to return before trying to take the lease again. It returns when
// ctx is done, releasing the lease.
func (l *Lease) Run(ctx context.Context, fn func(ctx context.Context)) {
	defer l.release()
	every := l.ttl / 3
	for ctx.Err() == nil {
		held, err := l.acquire(ctx)
		if err != nil && ctx.Err() == nil {
			l.log.Warn("sink: lease", "sink", l.name, "err", err)
		}
		if !held {
			sleepCtx(ctx, every)
			continue
		}
		l.log.Info("sink: lease taken; delivering", "sink", l.name, "node", l.node)
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			fn(runCtx)
		}()
		t := time.NewTicker(every)
	renew:
		for {
			select {
			case <-done:
				break renew
			case <-ctx.Done():
				break renew
			case <-t.C:
				if ok, err := l.acquire(ctx); !ok {
					if ctx.Err() == nil {
						l.log.Warn("sink: lease lost; stopping delivery", "sink", l.name, "node", l.node, "err", err)
					}
					break renew
				}
			}
		}
		t.Stop()
		cancel()
		<-done
	}
}

// sleepCtx waits d or until ctx is done; it reports whether ctx is alive.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
