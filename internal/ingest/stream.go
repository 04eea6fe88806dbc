package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/store"
)

// Client streams: a producer that resends after a failure (the Go client,
// the agent) names its stream with a stable id and numbers its events, so
// that the server can drop what it already holds and an at-least-once
// producer stores every event exactly once.
const (
	// HeaderStream names the client's stream: 1 to 128 characters out of
	// A–Z, a–z, 0–9, '-' and '_'. It becomes the Source of the stream's
	// events and the id of its source record.
	HeaderStream = "X-Chronostream-Stream"
	// HeaderIndex is the index of the request's (or connection's) first
	// event in the stream; the events that follow are numbered
	// consecutively from it.
	HeaderIndex = "X-Chronostream-Index"
)

// ErrInvalidStream is a malformed stream id or index.
var ErrInvalidStream = errors.New("invalid client stream")

// StreamOf returns the client stream a request names, if any: its id and
// the index of its first event.
func StreamOf(r *http.Request) (id string, first uint64, ok bool, err error) {
	id = r.Header.Get(HeaderStream)
	idx := r.Header.Get(HeaderIndex)
	if id == "" && idx == "" {
		return "", 0, false, nil
	}
	if !validStreamID(id) {
		return "", 0, false, fmt.Errorf("%w: %s %q must be 1 to 128 characters out of A-Z, a-z, 0-9, '-' and '_'", ErrInvalidStream, HeaderStream, id)
	}
	if idx == "" {
		return "", 0, false, fmt.Errorf("%w: %s is required with %s", ErrInvalidStream, HeaderIndex, HeaderStream)
	}
	first, err = strconv.ParseUint(idx, 10, 64)
	if err != nil {
		return "", 0, false, fmt.Errorf("%w: %s %q is not an unsigned decimal integer", ErrInvalidStream, HeaderIndex, idx)
	}
	return id, first, true, nil
}

func validStreamID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
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

// StreamLog is what duplicate removal needs of the store.
type StreamLog interface {
	Read(ctx context.Context, q store.Query, fn func(*event.Event) error, onGap func(store.Gap) error) (uint64, error)
	GetSource(ctx context.Context, id string) (store.Source, error)
}

// DefaultStreamScan bounds how many of a story's newest events are read to
// find a stream's last index after a restart (see Streams).
const DefaultStreamScan = 1 << 20

const (
	streamLookupTimeout = 30 * time.Second
	streamIdleTimeout   = 10 * time.Minute
)

// Streams knows, for each client stream writing to a story, the index one
// past its last event in the log ("next"), and serializes the
// check-and-append of each stream so that concurrent requests or
// connections of one stream cannot both store an index.
//
// Next comes from memory, updated after each durable append. On a miss
// (after a restart, after a failed append, or for a stream idle for 10
// minutes) it is learned from the log, which holds each event's stream and
// index atomically with the event: a stream without a source record never
// stored anything; otherwise the story is read backwards from its end for
// the stream's newest event, at most Scan events deep. A stream whose last
// event lies deeper than that is taken to have stored nothing, so a resend
// of it would be stored twice: that needs more than Scan events from other
// producers in the story between the stream's last durable event and its
// reconnection, while a client's unacknowledged events are the newest it
// sent.
type Streams struct {
	log    StreamLog
	scan   int
	logger *slog.Logger

	mu    sync.Mutex
	m     map[streamKey]*streamState
	swept time.Time
}

type streamKey struct{ chronicle, story, id string }

type streamState struct {
	lock  chan struct{} // a mutex whose wait can be canceled
	refs  int           // holders and waiters; guarded by Streams.mu
	used  time.Time     // guarded by Streams.mu
	known bool          // next is true; guarded by lock
	next  uint64
}

// NewStreams returns duplicate removal reading log. scan bounds the lookup
// after a restart (0: DefaultStreamScan); logger may be nil.
func NewStreams(log StreamLog, scan int, logger *slog.Logger) *Streams {
	if scan <= 0 {
		scan = DefaultStreamScan
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Streams{log: log, scan: scan, logger: logger, m: make(map[streamKey]*streamState)}
}

// StreamGuard holds a stream's lock: between Acquire and Release, no other
// request of the stream can append to its story.
type StreamGuard struct {
	s   *Streams
	key streamKey
	st  *streamState
}

// Acquire locks stream id of a story and learns its next index. The
// caller must Release the guard.
func (s *Streams) Acquire(ctx context.Context, chronicle, story, id string) (*StreamGuard, error) {
	key := streamKey{chronicle, story, id}
	now := time.Now()
	s.mu.Lock()
	if now.Sub(s.swept) > time.Minute {
		s.swept = now
		for k, st := range s.m {
			if st.refs == 0 && now.Sub(st.used) > streamIdleTimeout {
				delete(s.m, k)
			}
		}
	}
	st := s.m[key]
	if st == nil {
		st = &streamState{lock: make(chan struct{}, 1)}
		s.m[key] = st
	}
	st.refs++
	st.used = now
	s.mu.Unlock()
	g := &StreamGuard{s: s, key: key, st: st}
	select {
	case st.lock <- struct{}{}:
	case <-ctx.Done():
		s.unref(st)
		return nil, ctx.Err()
	}
	if !st.known {
		next, err := s.learn(ctx, key)
		if err != nil {
			g.Release()
			return nil, err
		}
		st.next, st.known = next, true
	}
	return g, nil
}

func (s *Streams) unref(st *streamState) {
	s.mu.Lock()
	st.refs--
	st.used = time.Now()
	s.mu.Unlock()
}

var errScanDone = errors.New("scan done")

// learn reads a stream's next index from the log.
func (s *Streams) learn(ctx context.Context, key streamKey) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, streamLookupTimeout)
	defer cancel()
	if _, err := s.log.GetSource(ctx, key.id); errors.Is(err, store.ErrNotFound) {
		return 0, nil // never recorded, so never stored
	} else if err != nil {
		return 0, fmt.Errorf("ingest: stream %q: %w", key.id, err)
	}
	var (
		scanned int
		found   bool
		next    uint64
	)
	mine := func(e *event.Event) bool { return e.Indexed && e.Source == key.id }
	_, err := s.log.Read(ctx, store.Query{Chronicle: key.chronicle, Story: key.story, Desc: true,
		Match: func(e *event.Event) bool {
			scanned++
			return mine(e) || scanned >= s.scan
		}},
		func(e *event.Event) error {
			if mine(e) {
				found, next = true, e.Index+1
			}
			return errScanDone
		}, nil)
	switch {
	case errors.Is(err, errScanDone), err == nil, errors.Is(err, store.ErrNotFound):
	default:
		return 0, fmt.Errorf("ingest: stream %q: looking up its last index: %w", key.id, err)
	}
	if !found && scanned >= s.scan {
		s.logger.Warn("client stream not found within the newest events of its story; resent events may be stored twice",
			"stream", key.id, "chronicle", key.chronicle, "story", key.story, "scanned", scanned)
	}
	return next, nil
}

// Next is the index one past the stream's last event in the story (0 when
// it has none): events numbered below it are already stored.
func (g *StreamGuard) Next() uint64 { return g.st.next }

// Stored records that every event of the stream numbered below next is
// durable in the story.
func (g *StreamGuard) Stored(next uint64) { g.st.next = max(g.st.next, next) }

// Invalidate forgets the stream's next index after an append failed or
// ended unknown, so that the next request learns it from the log.
func (g *StreamGuard) Invalidate() { g.st.known = false }

// Release unlocks the stream. It may be called more than once.
func (g *StreamGuard) Release() {
	if g.st == nil {
		return
	}
	st := g.st
	g.st = nil
	<-st.lock
	g.s.unref(st)
}
