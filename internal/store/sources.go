package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Source records where events came from (the anacrolix server's streams
// table): a connection, a client stream, or a client of a
// request-per-batch protocol (all its requests with one identity; see
// ingest.Clients).
type Source struct {
	ID        string              `json:"id"`
	Protocol  string              `json:"protocol"`
	Remote    string              `json:"remote"`
	Headers   map[string][]string `json:"headers,omitempty"`
	Chronicle string              `json:"chronicle"`
	Story     string              `json:"story"`
	Start     time.Time           `json:"start"`
	End       time.Time           `json:"end,omitzero"`
	Count     uint64              `json:"count"`
	// Requests is the count of requests a client's record covers.
	Requests uint64 `json:"requests,omitempty"`
	// Stream is set on a client stream's record (whose ID is the stream's
	// id): where the stream stood in Chronicle/Story when it was put.
	Stream *StreamPosition `json:"stream,omitempty"`
}

// StreamPosition is a client stream's position in a story: every event of
// the stream numbered below Next is stored, the newest of them at Seq (0:
// none). Events the stream appended later have larger seqs, so a reader
// learning the stream's position after a restart only reads the story after
// Seq.
type StreamPosition struct {
	Next uint64 `json:"next"`
	Seq  uint64 `json:"seq"`
}

// NewSourceID returns a fresh, unique source id.
func NewSourceID() string { return nuid.Next() }

// PutSource records or updates a source. A source must be put before events
// naming it are acknowledged, so that every stored event's source is known.
func (s *Store) PutSource(ctx context.Context, src Source) error {
	b, err := json.Marshal(src)
	if err != nil {
		return err
	}
	if _, err := s.sources.Put(ctx, src.ID, b); err != nil {
		return fmt.Errorf("store: put source: %w", err)
	}
	return nil
}

// GetSource returns one source.
func (s *Store) GetSource(ctx context.Context, id string) (Source, error) {
	src, _, found, err := s.getSource(ctx, id)
	if err == nil && !found {
		err = fmt.Errorf("source %q: %w", id, ErrNotFound)
	}
	return src, err
}

// getSource returns a source and its revision. When other nodes write the
// log, it asks the bucket's leader: a copy a moment behind could miss a
// record another node just put, and duplicate removal would take the stream
// for new.
func (s *Store) getSource(ctx context.Context, id string) (src Source, rev uint64, found bool, err error) {
	var value []byte
	if s.opts.Exclusive || !plainKey(id) {
		e, err := s.sources.Get(ctx, id)
		if isNotFound(err) {
			return Source{}, 0, false, nil
		}
		if err != nil {
			return Source{}, 0, false, fmt.Errorf("store: %w", err)
		}
		value, rev = e.Value(), e.Revision()
	} else {
		rev, value, found, err = s.leaderLast(ctx, "KV_"+sourcesBucket, "$KV."+sourcesBucket+"."+id)
		if err != nil {
			return Source{}, 0, false, fmt.Errorf("store: source %q: %w", id, err)
		}
		if !found || len(value) == 0 { // a deleted key's marker has no value
			return Source{}, 0, false, nil
		}
	}
	if err := json.Unmarshal(value, &src); err != nil {
		return Source{}, 0, false, fmt.Errorf("store: source %q: %w", id, err)
	}
	return src, rev, true, nil
}

// MergeSource writes the record id as merge makes it from the current one
// (found false: there is none), atomically against other writers — other
// nodes recording the same client: a write that raced one is merged again.
func (s *Store) MergeSource(ctx context.Context, id string, merge func(cur Source, found bool) Source) error {
	for attempt := 1; ; attempt++ {
		cur, rev, found, err := s.getSource(ctx, id)
		if err != nil {
			return err
		}
		b, err := json.Marshal(merge(cur, found))
		if err != nil {
			return err
		}
		if found {
			_, err = s.sources.Update(ctx, id, b, rev)
		} else {
			_, err = s.sources.Create(ctx, id, b)
		}
		if err == nil {
			return nil
		}
		raced := errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
		if !raced || attempt == 64 {
			return fmt.Errorf("store: merge source %q: %w", id, err)
		}
		// Spread the racing writers out before reading again.
		select {
		case <-time.After(time.Duration(rand.Int64N(int64(attempt) * int64(time.Millisecond)))):
		case <-ctx.Done():
			return fmt.Errorf("store: merge source %q: %w", id, ctx.Err())
		}
	}
}

// LastSeen is when the source last sent: its end, or its start while it
// has none.
func (s Source) LastSeen() time.Time {
	if s.End.After(s.Start) {
		return s.End
	}
	return s.Start
}

// Sources lists sources of a chronicle ("" for all), the last seen first
// (a client seen for weeks is as recent as its last request), at most limit.
func (s *Store) Sources(ctx context.Context, chronicle string, limit int) ([]Source, error) {
	lister, err := s.sources.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var out []Source
	for id := range lister.Keys() {
		src, err := s.GetSource(ctx, id)
		if err != nil {
			continue // expired meanwhile
		}
		if chronicle == "" || src.Chronicle == chronicle {
			out = append(out, src)
		}
	}
	slices.SortFunc(out, func(a, b Source) int {
		if c := b.LastSeen().Compare(a.LastSeen()); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// plainKey reports whether a source id is letters, digits, '-', '_' and
// '=' only (client stream ids, generated ids and client ids are): as a subject token it
// can be no wildcard. Other ids go through the KV client, which checks them.
func plainKey(id string) bool {
	if id == "" {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '=') {
			return false
		}
	}
	return true
}
