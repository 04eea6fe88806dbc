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
	if !event.ValidStreamID(id) {
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

// NewSource returns the source record of a request (or connection) of
// protocol writing to chronicle/story, with a fresh id; a client stream
// replaces the id with its own.
func NewSource(r *http.Request, protocol, chronicle, story string) store.Source {
	return store.Source{
		ID:        store.NewSourceID(),
		Protocol:  protocol,
		Remote:    r.RemoteAddr,
		Headers:   SourceHeaders(r.Header),
		Chronicle: chronicle,
		Story:     story,
		Start:     time.Now().UTC(),
	}
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
// Next comes from memory, updated after each durable append. Memory is
// only trusted alone: when other nodes write the same log (a cluster, or
// --nats), a client may have moved its stream to another node and back, so
// each Acquire first checks the story's newest block in the log, and
// learns the position again when a block was appended after the one with
// the stream's newest event (see SharedLog). On a miss
// (after a restart, after a failed append, or for a stream idle for 10
// minutes) it is learned from the log, which holds each event's stream and
// index atomically with the event: a stream without a source record never
// stored anything; a record carries the stream's position in its story as
// of when it was put (see store.StreamPosition, which the transports keep
// up to date) and the story is read backwards from its end down to that
// position only, for a newer event of the stream. Without a position (a
// record of an older server, or of another story) the story is read
// backwards for the stream's newest event, at most Scan events deep; a
// stream whose last event lies deeper than that is taken to have stored
// nothing, so a resend of it would be stored twice.
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
	known bool          // next and seq are true; guarded by lock
	next  uint64
	seq   uint64 // the seq of the stream's newest event in the story (0: unknown or none)
}

// SharedLog is a StreamLog that says whether other writers may append to
// it. A log that is not a SharedLog is taken as this process's alone.
type SharedLog interface {
	StreamLog
	// Exclusive reports whether this process is the log's only writer.
	Exclusive() bool
	// StoryHead is the stream sequence of the story's newest block (0:
	// none), as the log's leader knows it.
	StoryHead(ctx context.Context, chronicle, story string) (uint64, error)
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
	if st.known && !s.current(ctx, key, st) {
		st.known = false
	}
	if !st.known {
		pos, err := s.learn(ctx, key)
		if err != nil {
			g.Release()
			return nil, err
		}
		st.next, st.seq, st.known = pos.Next, pos.Seq, true
	}
	return g, nil
}

func (s *Streams) unref(st *streamState) {
	s.mu.Lock()
	st.refs--
	st.used = time.Now()
	s.mu.Unlock()
}

// current reports whether what st remembers still holds: always alone;
// with other writers, when the story's newest block is still the one that
// holds the stream's newest event (nobody appended since, so the stream
// cannot have moved on elsewhere). A failed check says no: the position is
// then learned from the log, which reports the error if it persists.
func (s *Streams) current(ctx context.Context, key streamKey, st *streamState) bool {
	shared, ok := s.log.(SharedLog)
	if !ok || shared.Exclusive() {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, streamLookupTimeout)
	defer cancel()
	last, err := shared.StoryHead(ctx, key.chronicle, key.story)
	block, _ := event.SplitSeq(st.seq)
	return err == nil && last == block
}

var errScanDone = errors.New("scan done")

// learn reads a stream's position from the log.
func (s *Streams) learn(ctx context.Context, key streamKey) (store.StreamPosition, error) {
	ctx, cancel := context.WithTimeout(ctx, streamLookupTimeout)
	defer cancel()
	src, err := s.log.GetSource(ctx, key.id)
	if errors.Is(err, store.ErrNotFound) {
		return store.StreamPosition{}, nil // never recorded, so never stored
	} else if err != nil {
		return store.StreamPosition{}, fmt.Errorf("ingest: stream %q: %w", key.id, err)
	}
	// The recorded position holds unless the stream appended after it:
	// only the events after its seq are read. A record of another story
	// (or none) says nothing of this one: read back up to the bound.
	var from store.StreamPosition
	bounded := true
	if src.Stream != nil && src.Chronicle == key.chronicle && src.Story == key.story {
		from, bounded = *src.Stream, false
	}
	// With other writers, the read may be served by a copy a moment
	// behind the chronicle's leader: it must reach the leader's newest
	// block, or it could miss the stream's newest events (read again).
	var head uint64
	if shared, ok := s.log.(SharedLog); ok && !shared.Exclusive() {
		if head, err = shared.StoryHead(ctx, key.chronicle, key.story); err != nil {
			return store.StreamPosition{}, fmt.Errorf("ingest: stream %q: %w", key.id, err)
		}
	}
	for attempt := 1; ; attempt++ {
		pos, newest, err := s.scanBack(ctx, key, from, bounded)
		if err != nil {
			return store.StreamPosition{}, err
		}
		if newest >= head || attempt == staleReadAttempts {
			return pos, nil
		}
		t := time.NewTimer(time.Duration(attempt) * 10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return store.StreamPosition{}, fmt.Errorf("ingest: stream %q: %w", key.id, ctx.Err())
		case <-t.C:
		}
	}
}

// staleReadAttempts bounds the reads of a story served by a copy behind
// its leader (each waits a little longer for the copy to catch up).
const staleReadAttempts = 20

// scanBack reads the story backwards from its end down to from.Seq for the
// stream's newest event. It returns the stream's position and the newest
// block the read saw (at least from.Seq's).
func (s *Streams) scanBack(ctx context.Context, key streamKey, from store.StreamPosition, bounded bool) (store.StreamPosition, uint64, error) {
	pos := from
	newest, _ := event.SplitSeq(from.Seq)
	var (
		scanned int
		found   bool
	)
	mine := func(e *event.Event) bool { return e.Indexed && e.Source == key.id }
	_, err := s.log.Read(ctx, store.Query{Chronicle: key.chronicle, Story: key.story, Desc: true, After: from.Seq,
		Match: func(e *event.Event) bool {
			scanned++
			if block, _ := event.SplitSeq(e.Seq); block > newest {
				newest = block
			}
			return mine(e) || bounded && scanned >= s.scan
		}},
		func(e *event.Event) error {
			if mine(e) && e.Index+1 > pos.Next {
				found, pos = true, store.StreamPosition{Next: e.Index + 1, Seq: e.Seq}
			} else if mine(e) {
				found, pos.Seq = true, max(pos.Seq, e.Seq)
			}
			return errScanDone
		}, nil)
	switch {
	case errors.Is(err, errScanDone), err == nil, errors.Is(err, store.ErrNotFound):
	default:
		return store.StreamPosition{}, 0, fmt.Errorf("ingest: stream %q: looking up its last index: %w", key.id, err)
	}
	if !found && bounded && scanned >= s.scan {
		s.logger.Warn("client stream not found within the newest events of its story; resent events may be stored twice",
			"stream", key.id, "chronicle", key.chronicle, "story", key.story, "scanned", scanned)
	}
	return pos, newest, nil
}

// Next is the index one past the stream's last event in the story (0 when
// it has none): events numbered below it are already stored.
func (g *StreamGuard) Next() uint64 { return g.st.next }

// Stored reports whether the event numbered index is in the log already
// (a resend): the transport drops it and counts it as stored.
func (g *StreamGuard) Stored(index uint64) bool { return index < g.st.next }

// Position is where the stream stands, for its source record: a record put
// with it lets the next lookup after a restart read only what follows.
func (g *StreamGuard) Position() *store.StreamPosition {
	return &store.StreamPosition{Next: g.st.next, Seq: g.st.seq}
}

// Appended records the outcome of an append of the stream's events: on
// success every event numbered below next is durable, the newest appended
// at seq lastSeq (0 when the append held none); on failure, or an outcome
// unknown, the stream's position is forgotten, so that the next request
// learns it from the log.
func (g *StreamGuard) Appended(next, lastSeq uint64, err error) {
	if err != nil {
		g.st.known = false
		return
	}
	if next > g.st.next {
		g.st.next = next
		if lastSeq != 0 {
			g.st.seq = lastSeq
		}
	}
}

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
