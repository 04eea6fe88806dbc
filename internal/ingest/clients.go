package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/chronostream/chronostream/internal/store"
)

// ClientLog is what Clients needs of the store.
type ClientLog interface {
	MergeSource(ctx context.Context, id string, merge func(cur store.Source, found bool) store.Source) error
}

// Clients records the sources of the request-per-batch protocols (NDJSON
// without a client stream, line protocol, OTLP, Trendlines, Vivo's HTTP
// input) by client rather than by request: the requests of one protocol to
// one target from one host with the same identifying headers share one
// record, which says when the client was first and last seen and how many
// requests and events it sent. A record per request would be a key per
// request in the sources bucket, which JetStream indexes in memory: at 100
// requests/s, 8.6 million keys a day, each kept for the bucket's 30 days.
//
// A client's record is written before the first event naming it is
// appended (Open's gate); later requests only add to counts, written
// after them at most every FlushEvery, so they wait for no write of their
// own and a busy client costs one write a second. Counts not yet written
// when the server is killed are lost (never events: those are durable
// before they are acknowledged).
type Clients struct {
	log    ClientLog
	logger *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	clients map[string]*client
	stop    chan struct{}
	done    chan struct{}
	closed  bool
}

// Client record timing: counts are written at most every FlushEvery per
// client; a client unseen for IdleAfter is forgotten (its record stays in
// the log until the bucket's TTL); a record older than Rewrite is written
// again, and waited for, before it is named again, so that it cannot
// expire under an event naming it.
const (
	FlushEvery = time.Second
	IdleAfter  = 10 * time.Minute
	Rewrite    = 24 * time.Hour
)

// client is one client's state on this node.
type client struct {
	src      store.Source // identity and the newest request's start
	written  time.Time    // when the record was last written (zero: never)
	inflight *write       // the write under way, if any
	requests uint64       // not yet written
	events   uint64       // not yet written
	seen     time.Time
}

// write is one merge of a client's record into the log.
type write struct {
	done     chan struct{}
	err      error
	requests uint64 // the counts it carries
	events   uint64
}

// NewClients returns the client records of log; Close writes what is
// pending and stops its sweeper.
func NewClients(log ClientLog, logger *slog.Logger) *Clients {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Clients{log: log, logger: logger, now: time.Now, clients: map[string]*client{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go c.sweep()
	return c
}

// ClientGate is one request's use of its client's record: a Recorder.
type ClientGate struct {
	c  *Clients
	cl *client
	w  *write // the write to wait for before appending; nil: none
}

// Open returns the gate of a request whose source is src (its ID is set to
// the client's id; Remote becomes the host and Headers the identifying
// ones). The record is written in the background if this node has not
// written it yet; Gate waits for that.
func (c *Clients) Open(src *store.Source) *ClientGate {
	clientIdentity(src)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := c.clients[src.ID]
	if cl == nil {
		cl = &client{}
		c.clients[src.ID] = cl
	}
	cl.src, cl.seen = *src, now
	g := &ClientGate{c: c, cl: cl}
	if cl.written.IsZero() || now.Sub(cl.written) > Rewrite {
		g.w = c.startLocked(cl)
	}
	return g
}

// Gate waits until the client's record is in the log and returns the
// error of writing it.
func (g *ClientGate) Gate() error {
	if g.w == nil {
		return nil
	}
	<-g.w.done
	if g.w.err != nil {
		return fmt.Errorf("recording the source: %w", g.w.err)
	}
	return nil
}

// BodyRead is part of Recorder; a client's record needs nothing of it.
func (g *ClientGate) BodyRead(int) {}

// Finish counts the request and the events it stored (written with the
// client's record within FlushEvery) and returns the error of recording
// the client, as Gate.
func (g *ClientGate) Finish(stored int, _ *ThrottledLogger) error {
	c, cl := g.c, g.cl
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.clients[cl.src.ID]; !ok {
		// Forgotten while this request ran (longer than IdleAfter).
		c.clients[cl.src.ID] = cl
	}
	cl.requests++
	cl.events += uint64(stored)
	cl.seen = now
	if cl.inflight == nil && now.Sub(cl.written) >= FlushEvery {
		c.startLocked(cl)
	}
	if g.w == nil {
		return nil
	}
	select {
	case <-g.w.done: // Gate waited for it before any append
		return g.Gate()
	default: // nothing was appended: the request's outcome is its own
		return nil
	}
}

// startLocked starts writing cl's record with its pending counts, or
// returns the write under way (which a gate can wait for as well: a
// record being written is one the log will hold or report failing).
func (c *Clients) startLocked(cl *client) *write {
	if cl.inflight != nil {
		return cl.inflight
	}
	w := &write{done: make(chan struct{}), requests: cl.requests, events: cl.events}
	cl.inflight = w
	src, now := cl.src, c.now
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		w.err = c.log.MergeSource(ctx, src.ID, func(cur store.Source, found bool) store.Source {
			next := src
			next.End = now().UTC()
			next.Requests, next.Count = w.requests, w.events
			if found {
				if cur.Start.Before(next.Start) {
					next.Start = cur.Start
				}
				next.Requests += cur.Requests
				next.Count += cur.Count
			}
			return next
		})
		c.mu.Lock()
		cl.inflight = nil
		if w.err == nil {
			cl.written = now()
			cl.requests -= w.requests
			cl.events -= w.events
		} else {
			c.logger.Warn("recording a client's source failed", "source", src.ID, "protocol", src.Protocol, "err", w.err)
		}
		c.mu.Unlock()
		close(w.done)
	}()
	return w
}

// sweep writes the counts of clients that went quiet and forgets the
// clients idle for IdleAfter.
func (c *Clients) sweep() {
	defer close(c.done)
	t := time.NewTicker(FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		now := c.now()
		c.mu.Lock()
		for id, cl := range c.clients {
			switch {
			case cl.inflight != nil:
			case cl.requests > 0 || cl.events > 0:
				c.startLocked(cl)
			case now.Sub(cl.seen) > IdleAfter:
				delete(c.clients, id)
			}
		}
		c.mu.Unlock()
	}
}

// Close stops the sweeper and writes every pending count, waiting for the
// writes until ctx ends.
func (c *Clients) Close(ctx context.Context) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	close(c.stop)
	<-c.done
	c.mu.Lock()
	var pending []*write
	for _, cl := range c.clients {
		if cl.inflight != nil || cl.requests > 0 || cl.events > 0 {
			pending = append(pending, c.startLocked(cl))
		}
	}
	c.mu.Unlock()
	for _, w := range pending {
		select {
		case <-w.done:
		case <-ctx.Done():
			return
		}
	}
}

// perRequestHeaders differ from one request of a client to the next
// (lengths, dates, trace and request ids): they are not part of its
// identity, nor kept in its record.
var perRequestHeaders = map[string]bool{
	"Content-Length": true, "Date": true, "Expect": true,
	"Content-Md5": true, "Digest": true, "Content-Digest": true, "Idempotency-Key": true,
	"Traceparent": true, "Tracestate": true, "Baggage": true,
	"X-Request-Id": true, "Request-Id": true, "X-Correlation-Id": true,
	"X-Amzn-Trace-Id": true, "X-Cloud-Trace-Context": true, "Uber-Trace-Id": true, "Sentry-Trace": true,
	"B3": true, "X-B3-Traceid": true, "X-B3-Spanid": true, "X-B3-Parentspanid": true, "X-B3-Sampled": true, "X-B3-Flags": true,
	"X-Datadog-Trace-Id": true, "X-Datadog-Parent-Id": true,
}

// clientIdentity turns a request's source into its client's: Remote loses
// the port, Headers the per-request ones, and ID becomes "c=" and a hash of
// protocol, chronicle, story, host and headers — the same on every node, so
// a cluster keeps one record per client. No client stream id can take this
// form ('=' is not allowed in them).
func clientIdentity(src *store.Source) {
	if host, _, err := net.SplitHostPort(src.Remote); err == nil {
		src.Remote = host
	}
	keys := make([]string, 0, len(src.Headers))
	for k := range src.Headers {
		if perRequestHeaders[http.CanonicalHeaderKey(k)] {
			delete(src.Headers, k)
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, s := range []string{src.Protocol, src.Chronicle, src.Story, src.Remote} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
		for _, v := range src.Headers[k] {
			h.Write([]byte(v))
			h.Write([]byte{1})
		}
		h.Write([]byte{0})
	}
	src.ID = "c=" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}
