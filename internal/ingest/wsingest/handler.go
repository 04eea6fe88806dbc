// Package wsingest is the anacrolix telemetry server's WebSocket transport
// on "GET /": each text or binary message of a connection is one event, and
// after each run of consecutive messages the server replies with the count
// of events stored (durably) from the connection so far. An empty binary
// message ends the stream.
package wsingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/valyala/fastjson"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/ingest/jsonscan"
	"github.com/chronostream/chronostream/internal/jsonev"
	"github.com/chronostream/chronostream/internal/store"
)

// Protocol labels metrics and sources of this transport.
const Protocol = "websocket"

// Read-ahead: while one run of messages is being stored, the connection
// keeps reading up to this much, which becomes the next run. It bounds a
// connection's memory (beyond the one run in the log) and gives the log
// large group commits from fast producers.
const (
	maxRunBytes    = 1 << 20
	maxRunMessages = 4096
	chunkBytes     = 64 << 10
	writeTimeout   = 30 * time.Second
)

// Config configures the WebSocket ingest handler.
type Config struct {
	ingest.Config
	// Done closes when the server shuts down.
	Done <-chan struct{}
}

// Handler takes anacrolix-style WebSocket streams on GET /.
type Handler struct {
	cfg     Config
	parsers fastjson.ParserPool
	warn    *ingest.ThrottledLogger

	// A WaitGroup's Add must not race its Wait while the count is zero:
	// connections are counted under mu, and none after Wait began.
	mu      sync.Mutex
	waiting bool
	conns   sync.WaitGroup
}

// NewHandler returns a handler.
func NewHandler(cfg Config) *Handler {
	cfg.Config = cfg.Config.WithDefaults()
	return &Handler{cfg: cfg, warn: ingest.NewThrottledLogger(cfg.Logger, time.Second)}
}

// IsUpgrade reports whether r asks for a WebSocket upgrade.
func IsUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// Wait blocks until every connection has ended or ctx ends. The HTTP
// server's Shutdown does not wait for hijacked connections, so the server
// must call Wait after closing Done and before closing the log, or the
// last runs of open connections fail instead of being acknowledged.
func (h *Handler) Wait(ctx context.Context) error {
	h.mu.Lock()
	h.waiting = true
	h.mu.Unlock()
	done := make(chan struct{})
	go func() { h.conns.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ServeHTTP upgrades the request and stores its messages. The chronicle and
// story come from the query (chronicle=, story=) or the
// X-Chronostream-Chronicle and X-Chronostream-Story headers, else the
// configured defaults; kind= overrides every event's kind.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.enter() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer h.conns.Done()
	chronicle, story := ingest.Target(r, h.cfg.DefaultChronicle, h.cfg.DefaultStory)
	if err := errors.Join(event.ValidateChronicle(chronicle), event.ValidateStory(story)); err != nil {
		h.countError("invalid_name")
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var kind *event.Kind
	if k := r.URL.Query().Get("kind"); k != "" {
		kv, err := event.ParseKind(k)
		if err != nil {
			h.countError("invalid_kind")
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		kind = &kv
	}
	streamID, first, isStream, err := ingest.StreamOf(r)
	if err != nil {
		h.countError("invalid_stream")
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if isStream && h.cfg.Streams == nil {
		h.countError("no_streams")
		http.Error(w, "this server cannot remove duplicates of client streams", http.StatusNotImplemented)
		return
	}
	src := ingest.NewSource(r, Protocol, chronicle, story)
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// The server checks Origin before this handler (httpsec's
		// WebSocket guard: same host or --cors-origin), where it is
		// counted; a reverse proxy may rewrite Host, so not twice.
		InsecureSkipVerify: true,
		// A browser authenticates by offering "bearer.TOKEN" with this
		// subprotocol (auth.WebSocketCredential): select this one, so
		// the token is never echoed.
		Subprotocols: []string{auth.WebSocketSubprotocol},
	})
	if err != nil {
		h.countError("handshake")
		return // Accept has answered the client
	}
	// The limit is enforced per message below, so that what was read before
	// an oversized message can still be acknowledged.
	c.SetReadLimit(-1)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := &session{
		h: h, c: c, ctx: ctx, cancel: cancel, chronicle: chronicle, story: story, kind: kind,
		src: src, who: auth.FromContext(r.Context()),
		q: newQueue(),
	}
	if isStream {
		s.src.ID, s.stream, s.index = streamID, true, first
	}
	s.run()
}

// enter counts a connection unless the server is shutting down.
func (h *Handler) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.waiting {
		return false
	}
	select {
	case <-h.cfg.Done:
		return false
	default:
	}
	h.conns.Add(1)
	return true
}

func (h *Handler) countError(reason string) {
	if h.cfg.Metrics != nil {
		h.cfg.Metrics.IngestErrors.WithLabelValues(Protocol, reason).Inc()
	}
}

// Why reading stopped.
const (
	endNone     = iota
	endFinal    // an empty binary message: the client is done
	endTooLarge // a message over the limit
	endClosed   // the connection closed or failed
)

// queue hands runs of messages from the reading goroutine to the storing one.
type queue struct {
	mu     sync.Mutex
	msgs   [][]byte
	bytes  int
	end    int
	err    error
	notify chan struct{} // a run or an end is waiting
	space  chan struct{} // a run was taken
}

func newQueue() *queue {
	return &queue{notify: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// push adds a message, first waiting while the run is full.
func (q *queue) push(ctx context.Context, m []byte) bool {
	for {
		q.mu.Lock()
		if q.bytes < maxRunBytes && len(q.msgs) < maxRunMessages {
			q.msgs = append(q.msgs, m)
			q.bytes += len(m)
			q.mu.Unlock()
			signal(q.notify)
			return true
		}
		q.mu.Unlock()
		select {
		case <-q.space:
		case <-ctx.Done():
			return false
		}
	}
}

func (q *queue) finish(end int, err error) {
	q.mu.Lock()
	q.end, q.err = end, err
	q.mu.Unlock()
	signal(q.notify)
}

// take returns the messages read so far and whether reading ended.
func (q *queue) take() ([][]byte, int, error) {
	q.mu.Lock()
	msgs, end, err := q.msgs, q.end, q.err
	q.msgs, q.bytes = nil, 0
	q.mu.Unlock()
	signal(q.space)
	return msgs, end, err
}

// session is one connection: a stream, recorded as one source.
type session struct {
	h                *Handler
	c                *websocket.Conn
	ctx              context.Context
	cancel           context.CancelFunc
	chronicle, story string
	kind             *event.Kind
	src              store.Source
	who              *auth.Principal // the token's ingest rate, if limited
	q                *queue
	stream           bool   // a client stream: src.ID is its id
	index            uint64 // the stream index of the next message read
	stored           uint64
	// The count sent last: a count is sent only when it changed, since a
	// run may end right before the end message, whose reply would repeat it.
	sent      uint64
	sentCount bool
	recorded  time.Time // when the source was last put
}

func (s *session) run() {
	h := s.h
	if s.stream {
		// Learn where the stream stands before recording its source:
		// without a record, the log is known to hold none of it.
		g, err := h.cfg.Streams.Acquire(s.ctx, s.chronicle, s.story, s.src.ID)
		if err != nil {
			h.countError("store_unavailable")
			h.warn.Warn("websocket ingest: looking up a client stream failed", "err", err)
			s.c.Close(websocket.StatusTryAgainLater, "the log is unavailable")
			return
		}
		s.src.Stream = g.Position()
		g.Release()
	}
	s.recorded = time.Now()
	if err := h.cfg.Log.PutSource(s.ctx, s.src); err != nil {
		h.countError("store_unavailable")
		h.warn.Warn("websocket ingest: recording the source failed", "err", err)
		s.c.Close(websocket.StatusTryAgainLater, "the log is unavailable")
		return
	}
	defer s.recordEnd()
	limit := ingest.EventLimit(h.cfg.Log, h.cfg.Limits.MaxEventBytes, s.src.ID)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		s.read(limit)
	}()
	// The reader stops once the connection is closed, or ctx is canceled
	// while it waits for room: it must not outlive the handler.
	defer func() {
		s.cancel()
		s.c.CloseNow()
		<-readerDone
	}()

	// Pacing ends with the server too: a shutdown must not wait out a
	// token's debt (what waits is not acknowledged, so nothing is lost).
	paceCtx, stopPace := context.WithCancel(s.ctx)
	defer stopPace()
	go func() {
		select {
		case <-h.cfg.Done:
			stopPace()
		case <-paceCtx.Done():
		}
	}()

	shutdown := false
	for {
		select {
		case <-s.q.notify:
		case <-h.cfg.Done:
			shutdown = true
		}
		msgs, end, readErr := s.q.take()
		if len(msgs) > 0 {
			// Over the token's rate, wait (the queue fills and reading
			// stops) rather than refuse what the client sent already.
			if err := s.who.Pace(paceCtx); err != nil {
				s.c.Close(websocket.StatusGoingAway, "server shutting down")
				return
			}
			if err := s.store(msgs); err != nil {
				s.closeForStoreError(err)
				return
			}
			s.recordPosition()
			if err := s.sendCount(); err != nil {
				return // the client is gone
			}
		}
		switch {
		case shutdown:
			s.c.Close(websocket.StatusGoingAway, "server shutting down")
			return
		case end == endFinal:
			// The final count precedes the close, unless it is the one
			// the client already has.
			if s.sendCount() != nil {
				return
			}
			s.c.Close(websocket.StatusNormalClosure, "")
			return
		case end == endTooLarge:
			h.countError("event_too_large")
			s.c.Close(websocket.StatusMessageTooBig, fmt.Sprintf("a message exceeds %d bytes", limit))
			return
		case end == endClosed:
			if st := websocket.CloseStatus(readErr); st != websocket.StatusNormalClosure && st != websocket.StatusGoingAway {
				h.countError("read_error")
				h.cfg.Logger.Debug("websocket ingest: connection ended", "remote", s.src.Remote, "err", readErr)
			}
			return
		}
	}
}

// read reads messages into the queue until the stream ends.
func (s *session) read(limit int) {
	var arena []byte
	for {
		typ, r, err := s.c.Reader(s.ctx)
		if err != nil {
			s.q.finish(endClosed, err)
			return
		}
		var msg []byte
		msg, arena, err = readMessage(r, arena, limit)
		switch {
		case errors.Is(err, errTooLarge):
			s.q.finish(endTooLarge, err)
			return
		case err != nil:
			s.q.finish(endClosed, err)
			return
		case typ == websocket.MessageBinary && len(msg) == 0:
			s.q.finish(endFinal, nil)
			return
		}
		if !s.q.push(s.ctx, msg) {
			return
		}
	}
}

var errTooLarge = errors.New("message too large")

// readMessage reads one message into the free end of arena, starting a new
// chunk when it is full. Messages are never moved once complete, so a run's
// event bodies can point into chunks while the next run is read.
func readMessage(r io.Reader, arena []byte, limit int) (msg, _ []byte, _ error) {
	start := len(arena)
	for {
		if len(arena) == cap(arena) {
			partial := arena[start:]
			na := make([]byte, len(partial), max(chunkBytes, 2*len(partial)))
			copy(na, partial)
			arena, start = na, 0
		}
		n, err := r.Read(arena[len(arena):cap(arena)])
		arena = arena[:len(arena)+n]
		if len(arena)-start > limit {
			return nil, arena[:start], errTooLarge
		}
		if err == io.EOF {
			return arena[start:len(arena):len(arena)], arena, nil
		}
		if err != nil {
			return nil, arena[:start], err
		}
	}
}

// store appends one run as one batch and waits until it is durable. Of a
// client stream, it drops the messages the log holds already, and counts
// them as stored.
func (s *session) store(msgs [][]byte) error {
	h := s.h
	p := h.parsers.Get()
	defer h.parsers.Put(p)
	size := 0
	for _, m := range msgs {
		size += len(m)
	}
	first, dropped := s.index, 0
	var g *ingest.StreamGuard
	if s.stream {
		var err error
		if g, err = h.cfg.Streams.Acquire(s.ctx, s.chronicle, s.story, s.src.ID); err != nil {
			return err
		}
		defer g.Release()
		for dropped < len(msgs) && g.Stored(first+uint64(dropped)) {
			dropped++
		}
		msgs = msgs[dropped:]
	}
	evs := make([]event.Event, len(msgs))
	for i, m := range msgs {
		e := &evs[i]
		e.Source = s.src.ID
		if s.stream {
			e.Index, e.Indexed = first+uint64(dropped+i), true
		}
		if jsonscan.Valid(m) {
			// JSON is kept without the whitespace around it (slog's JSON
			// handler ends each record with a newline), as over NDJSON.
			m = jsonscan.TrimSpace(m)
			if v, err := p.ParseBytes(m); err == nil {
				e.Time, e.Kind = jsonev.MetaOf(v)
				e.Format = event.FormatJSON
			}
		}
		e.Body = m
		if s.kind != nil {
			e.Kind = *s.kind
		}
	}
	// s.ctx ends only when the handler returns, after this wait: an
	// append of a client stream is never left in flight by a release.
	a, err := h.cfg.Log.Append(s.chronicle, s.story, evs).Wait(s.ctx)
	if m := h.cfg.Metrics; m != nil {
		m.IngestBytes.WithLabelValues(Protocol).Add(float64(size))
		if err == nil {
			m.IngestEvents.WithLabelValues(Protocol).Add(float64(dropped + a.N))
		}
		if dropped > 0 {
			m.IngestErrors.WithLabelValues(Protocol, "duplicate").Add(float64(dropped))
		}
	}
	if g != nil {
		g.Appended(first+uint64(dropped+a.N), a.Last, err)
		s.src.Stream = g.Position()
	}
	if err != nil {
		return err
	}
	s.who.Spend(a.N, size)
	// Duplicates count as stored: they are in the log, and the client's
	// cumulative count is of what it sent.
	s.stored += uint64(dropped + a.N)
	s.index += uint64(dropped + a.N)
	return nil
}

// sendCount sends the count stored so far, unless it was sent already.
func (s *session) sendCount() error {
	if s.sentCount && s.sent == s.stored {
		return nil
	}
	ctx, cancel := context.WithTimeout(s.ctx, writeTimeout)
	defer cancel()
	if err := s.c.Write(ctx, websocket.MessageText, strconv.AppendUint(nil, s.stored, 10)); err != nil {
		return err
	}
	s.sent, s.sentCount = s.stored, true
	return nil
}

// closeForStoreError ends the stream when the log refuses a run. The count
// sent last still tells the client what was stored.
func (s *session) closeForStoreError(err error) {
	code, reason, msg := websocket.StatusTryAgainLater, "store_unavailable", "the log is unavailable"
	switch {
	case errors.Is(err, store.ErrNoChronicle):
		code, reason, msg = websocket.StatusPolicyViolation, "no_chronicle", "no such chronicle"
	case errors.Is(err, store.ErrInvalidName):
		code, reason, msg = websocket.StatusPolicyViolation, "invalid_name", "invalid chronicle or story name"
	case errors.Is(err, auth.ErrForbidden):
		code, reason, msg = websocket.StatusPolicyViolation, "forbidden", "the token may not write to this chronicle"
	case errors.Is(err, store.ErrTooLarge):
		code, reason, msg = websocket.StatusMessageTooBig, "event_too_large", "an event is too large for the log"
	}
	s.h.countError(reason)
	if code == websocket.StatusTryAgainLater {
		s.h.warn.Warn("websocket ingest: appending failed", "chronicle", s.chronicle, "story", s.story, "err", err)
	}
	s.c.Close(code, msg)
}

// recordPosition updates a client stream's source record with its
// position, at most once a second, so that a lookup after a restart reads
// only what the stream appended since (see ingest.Streams).
func (s *session) recordPosition() {
	if !s.stream || time.Since(s.recorded) < time.Second {
		return
	}
	s.recorded = time.Now()
	s.src.Count = s.stored
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	if err := s.h.cfg.Log.PutSource(ctx, s.src); err != nil {
		s.h.warn.Warn("websocket ingest: recording the position of a client stream failed", "err", err)
	}
}

// recordEnd updates the source with the connection's end and count.
func (s *session) recordEnd() {
	s.src.End = time.Now().UTC()
	s.src.Count = s.stored
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.h.cfg.Log.PutSource(ctx, s.src); err != nil {
		s.h.warn.Warn("websocket ingest: recording the count of a source failed", "err", err)
	}
}
