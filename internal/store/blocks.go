package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/chronostream/chronostream/event"
)

// Blocks returns the stream sequences of a chronicle's oldest and newest
// blocks from the stream's state, without reading a block: an index that
// follows the log evicts what lies before first (retention removed it) and
// has caught up once it applied last. Both are 0 when the chronicle is
// empty; first is then the next block's sequence.
func (s *Store) Blocks(ctx context.Context, chronicle string) (first, last uint64, err error) {
	str, err := s.js.Stream(ctx, streamName(chronicle))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, 0, fmt.Errorf("chronicle %q: %w", chronicle, ErrNotFound)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("store: %w", err)
	}
	st := str.CachedInfo().State
	return st.FirstSeq, st.LastSeq, nil
}

// ChronicleNames lists the chronicles' names, unsorted, without reading
// their state (Chronicles also counts each one's stories and events).
func (s *Store) ChronicleNames(ctx context.Context) ([]string, error) {
	var out []string
	names := s.js.StreamNames(ctx)
	for n := range names.Name() {
		if !strings.HasPrefix(n, streamPrefix) {
			continue
		}
		if name, err := event.DecodeName(strings.TrimPrefix(n, streamPrefix)); err == nil {
			out = append(out, name)
		}
	}
	if err := names.Err(); err != nil {
		return nil, fmt.Errorf("store: list chronicles: %w", err)
	}
	return out, nil
}
