package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/store"
)

// tailStart is where a tail begins, and whether that position is a cursor
// a client can resume from.
type tailStart struct {
	q         store.TailQuery
	cursor    uint64
	hasCursor bool
}

func parseTail(r *http.Request) (tailStart, *filter, error) {
	var ts tailStart
	chronicle, story, err := names(r)
	if err != nil {
		return ts, nil, err
	}
	allowed := []string{"after", "from", "q", "kind", "tag.", "field."}
	if story == "" {
		allowed = append(allowed, "story")
	}
	p, err := newParams(r, allowed...)
	if err != nil {
		return ts, nil, err
	}
	f, err := p.filter()
	if err != nil {
		return ts, nil, err
	}
	ts.q = store.TailQuery{Chronicle: chronicle, Story: story}
	for _, st := range f.stories {
		if err := event.ValidateStory(st); err != nil {
			return ts, nil, badParam("story", "%w", err)
		}
	}
	if len(f.stories) == 1 {
		ts.q.Story, f.stories = f.stories[0], nil
	}
	after, hasAfter, err := p.seq("after")
	if err != nil {
		return ts, nil, err
	}
	// A reconnecting EventSource repeats the URL it started with; the
	// Last-Event-ID it adds is the newer position.
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return ts, nil, badParam("Last-Event-ID", "want a sequence number, got %q", v)
		}
		after, hasAfter = n, true
	}
	from, hasFrom, err := p.time("from")
	if err != nil {
		return ts, nil, err
	}
	switch {
	case hasAfter && after == 0:
		// From the oldest event kept: every block was ingested after 1970.
		ts.q.Since = time.Unix(0, 1)
		ts.hasCursor = true
	case hasAfter:
		ts.q.After = after
	case hasFrom:
		ts.q.Since = time.Unix(0, from)
	}
	return ts, f, nil
}

// Reasons a tail ends, as counted in Metrics.TailDisconnects.
const (
	endSlowConsumer = "slow_consumer"
	endShutdown     = "shutdown"
	endWriteTimeout = "write_timeout"
	endStoreError   = "store_error"
)

// tailSink is one tail transport: SSE or WebSocket.
type tailSink interface {
	event(e *event.Event) error
	gap(g store.Gap) error
	heartbeat(cursor uint64, hasCursor bool) error
	// flush ends a run of writes.
	flush() error
	// end tells the client why the server ends the tail (reason is one of
	// the end* constants) and closes the stream.
	end(reason string)
}

func (a *API) tail(w http.ResponseWriter, r *http.Request) {
	ts, f, err := parseTail(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	ts.q.MaxBuffered = a.cfg.TailMaxBuffered
	tl, err := a.cfg.Store.Tail(ctx, ts.q)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	defer tl.Close()
	if !ts.hasCursor && ts.q.Since.IsZero() {
		ts.cursor, ts.hasCursor = tl.Cursor, true
	}
	var sink tailSink
	route := "tail_sse"
	if isWebSocket(r) {
		// Same origin only (the library's check); a browser authenticates
		// by offering "bearer.TOKEN" with the chronostream subprotocol,
		// which is the one selected, so the token is never echoed.
		conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{auth.WebSocketSubprotocol},
			// The server's browser policy (httpsec) checked Origin before
			// the route, honouring --cors-origin and counting refusals.
			InsecureSkipVerify: true})
		if err != nil {
			return // Accept has answered
		}
		// A hijacked connection's request context no longer notices the
		// client leaving; reading does.
		ctx = conn.CloseRead(ctx)
		sink = &wsSink{ctx: ctx, conn: conn, timeout: a.cfg.TailWriteTimeout}
		route = "tail_ws"
	} else {
		sink = newSSESink(w, a.cfg.TailWriteTimeout)
	}
	a.cfg.Metrics.TailClients.Inc()
	defer a.cfg.Metrics.TailClients.Dec()
	reason, err := a.follow(ctx, tl, sink, f, ts, route)
	if reason != "" {
		a.cfg.Metrics.TailDisconnects.WithLabelValues(reason).Inc()
		if reason != endShutdown {
			a.cfg.Logger.Info("api: tail disconnected", "path", r.URL.Path, "remote", r.RemoteAddr, "reason", reason, "err", err)
		}
	}
	sink.end(reason)
}

func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

type tailResult struct {
	item store.TailItem
	err  error
}

// follow relays the tail to the sink until the client leaves (reason ""),
// or the server ends the tail for the reason it returns.
func (a *API) follow(ctx context.Context, tl *store.Tail, sink tailSink, f *filter, ts tailStart, route string) (string, error) {
	// The pump holds at most one item beyond the tail's own bounded buffer,
	// and lets heartbeats and shutdown interleave with a waiting Next.
	items := make(chan tailResult)
	go func() {
		for {
			it, err := tl.Next(ctx)
			select {
			case items <- tailResult{it, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	writeFailed := func(err error) (string, error) {
		if ctx.Err() != nil {
			return "", nil
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errWriteTimeout) {
			return endWriteTimeout, err
		}
		return "", err // the client went away mid-write
	}
	cursor, hasCursor := ts.cursor, ts.hasCursor
	var x expander
	expandInMatch := f.needsExpand()
	served := a.cfg.Metrics.ReadEvents.WithLabelValues(route)
	if err := errors.Join(sink.heartbeat(cursor, hasCursor), sink.flush()); err != nil {
		return writeFailed(err)
	}
	tick := time.NewTicker(a.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-a.cfg.Done:
			return endShutdown, nil
		case <-ctx.Done():
			return "", nil
		case <-tick.C:
			if err := errors.Join(sink.heartbeat(cursor, hasCursor), sink.flush()); err != nil {
				return writeFailed(err)
			}
		case res := <-items:
			switch {
			case errors.Is(res.err, store.ErrSlowConsumer):
				return endSlowConsumer, res.err
			case res.err != nil && ctx.Err() != nil:
				return "", nil
			case res.err != nil:
				return endStoreError, res.err
			}
			if g := res.item.Gap; g != nil {
				if err := sink.gap(*g); err != nil {
					return writeFailed(err)
				}
				cursor, hasCursor = max(cursor, g.Next-1), true
			}
			n := 0
			for i := range res.item.Events {
				e := &res.item.Events[i]
				// The cursor passes filtered events too, so that a resume
				// does not scan them again.
				cursor, hasCursor = e.Seq, true
				if expandInMatch {
					x.expand(e)
				}
				if !f.match(e) {
					continue
				}
				if !expandInMatch {
					x.expand(e)
				}
				if err := sink.event(e); err != nil {
					return writeFailed(err)
				}
				n++
			}
			served.Add(float64(n))
			if err := sink.flush(); err != nil {
				return writeFailed(err)
			}
			tick.Reset(a.cfg.Heartbeat)
		}
	}
}

var errWriteTimeout = errors.New("write timeout")

// sseSink writes Server-Sent Events. Every event carries its seq as id, and
// every heartbeat the cursor, so that a reconnecting EventSource's
// Last-Event-ID resumes exactly where the client stopped.
type sseSink struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	buf     []byte
}

func newSSESink(w http.ResponseWriter, timeout time.Duration) *sseSink {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx would otherwise hold events back
	w.WriteHeader(http.StatusOK)
	return &sseSink{w: w, rc: http.NewResponseController(w), timeout: timeout}
}

func (s *sseSink) event(e *event.Event) error {
	s.buf = append(s.buf, "id: "...)
	s.buf = strconv.AppendUint(s.buf, e.Seq, 10)
	s.buf = append(s.buf, "\nevent: event\ndata: "...)
	s.buf = appendEvent(s.buf, e, "")
	s.buf = append(s.buf, "\n\n"...)
	if len(s.buf) >= flushBytes {
		return s.write()
	}
	return nil
}

func (s *sseSink) gap(g store.Gap) error {
	s.buf = append(s.buf, "event: gap\ndata: "...)
	s.buf = appendGap(s.buf, g)
	s.buf = append(s.buf, "\n\n"...)
	return nil
}

func (s *sseSink) heartbeat(cursor uint64, hasCursor bool) error {
	if hasCursor {
		s.buf = append(s.buf, "id: "...)
		s.buf = strconv.AppendUint(s.buf, cursor, 10)
		s.buf = append(s.buf, '\n')
	}
	s.buf = append(s.buf, "event: heartbeat\ndata: "...)
	s.buf = appendHeartbeat(s.buf, "", cursor, hasCursor)
	s.buf = append(s.buf, "\n\n"...)
	return nil
}

func appendHeartbeat(b []byte, prefix string, cursor uint64, hasCursor bool) []byte {
	b = append(b, '{')
	b = append(b, prefix...)
	b = append(b, `"cursor":`...)
	if hasCursor {
		b = strconv.AppendUint(b, cursor, 10)
	} else {
		b = append(b, "null"...)
	}
	return append(b, '}')
}

func (s *sseSink) write() error {
	if len(s.buf) == 0 {
		return nil
	}
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	_, err := s.w.Write(s.buf)
	s.buf = s.buf[:0]
	if err != nil {
		return timeoutAware(err)
	}
	return nil
}

func (s *sseSink) flush() error {
	if err := s.write(); err != nil {
		return err
	}
	if err := s.rc.Flush(); err != nil {
		return timeoutAware(err)
	}
	return nil
}

func timeoutAware(err error) error {
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w: %w", errWriteTimeout, err)
	}
	return err
}

func (s *sseSink) end(reason string) {
	switch reason {
	case endSlowConsumer:
		s.buf = append(s.buf, `event: error`+"\n"+`data: {"reason":"slow consumer"}`+"\n\n"...)
	case endStoreError:
		s.buf = append(s.buf, `event: error`+"\n"+`data: {"reason":"internal error"}`+"\n\n"...)
	default:
		return
	}
	_ = s.flush()
}

// wsSink writes one JSON text message per event, gap and heartbeat.
type wsSink struct {
	ctx     context.Context
	conn    *websocket.Conn
	timeout time.Duration
	buf     []byte
}

func (s *wsSink) send() error {
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	err := s.conn.Write(ctx, websocket.MessageText, s.buf)
	s.buf = s.buf[:0]
	if err != nil && ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%w: %w", errWriteTimeout, err)
	}
	return err
}

func (s *wsSink) event(e *event.Event) error {
	s.buf = appendEvent(s.buf[:0], e, `"type":"event",`)
	return s.send()
}

func (s *wsSink) gap(g store.Gap) error {
	s.buf = append(s.buf[:0], `{"type":"gap","after":`...)
	s.buf = strconv.AppendUint(s.buf, g.After, 10)
	s.buf = append(s.buf, `,"next":`...)
	s.buf = strconv.AppendUint(s.buf, g.Next, 10)
	s.buf = append(s.buf, '}')
	return s.send()
}

func (s *wsSink) heartbeat(cursor uint64, hasCursor bool) error {
	s.buf = appendHeartbeat(s.buf[:0], `"type":"heartbeat",`, cursor, hasCursor)
	return s.send()
}

func (s *wsSink) flush() error { return nil }

func (s *wsSink) end(reason string) {
	switch reason {
	case endSlowConsumer:
		_ = s.conn.Close(websocket.StatusPolicyViolation, "slow consumer")
	case endShutdown:
		_ = s.conn.Close(websocket.StatusGoingAway, "server shutting down")
	case endStoreError:
		_ = s.conn.Close(websocket.StatusInternalError, "internal error")
	case endWriteTimeout:
		_ = s.conn.CloseNow()
	default:
		_ = s.conn.Close(websocket.StatusNormalClosure, "")
	}
}
