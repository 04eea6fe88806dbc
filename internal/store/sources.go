package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nuid"
)

// Source records where events came from: one ingest request or connection
// (the anacrolix server's streams table).
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

// GetSource returns one source. When other nodes write the log, it asks
// the bucket's leader: a copy a moment behind could miss a record another
// node just put, and duplicate removal would take the stream for new.
func (s *Store) GetSource(ctx context.Context, id string) (Source, error) {
	var value []byte
	if s.opts.Exclusive || !plainKey(id) {
		e, err := s.sources.Get(ctx, id)
		if isNotFound(err) {
			return Source{}, fmt.Errorf("source %q: %w", id, ErrNotFound)
		}
		if err != nil {
			return Source{}, fmt.Errorf("store: %w", err)
		}
		value = e.Value()
	} else {
		_, data, found, err := s.leaderLast(ctx, "KV_"+sourcesBucket, "$KV."+sourcesBucket+"."+id)
		if err != nil {
			return Source{}, fmt.Errorf("store: source %q: %w", id, err)
		}
		if !found {
			return Source{}, fmt.Errorf("source %q: %w", id, ErrNotFound)
		}
		value = data
	}
	var src Source
	if err := json.Unmarshal(value, &src); err != nil {
		return Source{}, fmt.Errorf("store: source %q: %w", id, err)
	}
	return src, nil
}

// Sources lists sources of a chronicle ("" for all), newest first, at most limit.
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
		if c := b.Start.Compare(a.Start); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// plainKey reports whether a source id is letters, digits, '-' and '_'
// only (client stream ids and generated ids are): as a subject token it
// can be no wildcard. Other ids go through the KV client, which checks them.
func plainKey(id string) bool {
	if id == "" {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
