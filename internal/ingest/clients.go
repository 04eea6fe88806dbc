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
	"strings"
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
	log  ClientLog
	warn *ThrottledLogger // a failing log fails every client's writes at once
	now  func() time.Time

	mu      sync.Mutex
	clients map[string]*client
	stop    chan struct{}
	done    chan struct{}
	closed  bool
}

// Client record timing: counts are written at most every FlushEvery per
// client; a client unseen for IdleAfter and with no request appending is
// forgotten (its record stays in the log until the bucket's TTL); a record
// older than Rewrite is written again, and waited for, before it is named
// again, and written again while a request (or Graphite connection) that
// named it still appends, so that it cannot expire under an event naming it.
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
	// active counts the gates passed and not finished: requests that may
	// still append events naming the record. Such a client is not
	// forgotten, and its record is kept younger than Rewrite.
	active int
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
	c := &Clients{log: log, warn: NewThrottledLogger(logger, time.Second), now: time.Now, clients: map[string]*client{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go c.sweep()
	return c
}

// ClientGate is one request's use of its client's record: a Recorder.
// Every gate that passed must be finished.
type ClientGate struct {
	c  *Clients
	id string // the client's; its state is looked up by id, since a
	// client not yet gated may be forgotten (and made again) meanwhile
	src  store.Source
	w    *write // the write to wait for before appending; nil: none
	held bool   // counted in the client's active
}

// Open returns the gate of a request whose source is src (its ID is set to
// the client's id; Remote becomes the host, and Headers loses the
// per-request ones). The record is written in the background if this node has not
// written it yet; Gate waits for that.
func (c *Clients) Open(src *store.Source) *ClientGate {
	clientIdentity(src)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	g := &ClientGate{c: c, id: src.ID, src: *src}
	cl := g.clientLocked()
	cl.src, cl.seen = *src, now
	if stale(cl, now) {
		g.w = c.startLocked(cl)
	}
	return g
}

// clientLocked returns the gate's client, made again if it was forgotten.
func (g *ClientGate) clientLocked() *client {
	cl := g.c.clients[g.id]
	if cl == nil {
		cl = &client{src: g.src, seen: g.c.now()}
		g.c.clients[g.id] = cl
	}
	return cl
}

// stale reports whether cl's record must be written before an event names
// it: never written (or its write failed), or as old as Rewrite.
func stale(cl *client, now time.Time) bool {
	return cl.written.IsZero() || now.Sub(cl.written) > Rewrite
}

// Gate waits until the client's record is in the log and returns the
// error of writing it. Called again after an error, it writes the record
// again (a Graphite connection gates each window until one passes).
func (g *ClientGate) Gate() error {
	c := g.c
	c.mu.Lock()
	cl := g.clientLocked()
	if !g.held {
		g.held = true
		cl.active++
	}
	if g.w != nil && failed(g.w) {
		g.w = nil
	}
	if g.w == nil && stale(cl, c.now()) {
		g.w = c.startLocked(cl)
	}
	w := g.w
	c.mu.Unlock()
	if w == nil {
		return nil
	}
	<-w.done
	if w.err != nil {
		return fmt.Errorf("recording the source: %w", w.err)
	}
	return nil
}

// failed reports whether w ended in an error.
func failed(w *write) bool {
	select {
	case <-w.done:
		return w.err != nil
	default:
		return false
	}
}

// BodyRead is part of Recorder; a client's record needs nothing of it.
func (g *ClientGate) BodyRead(int) {}

// Finish counts the request and the events it stored (written with the
// client's record within FlushEvery) and returns the error of recording
// the client, as Gate.
func (g *ClientGate) Finish(stored int, _ *ThrottledLogger) error {
	c := g.c
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := g.clientLocked()
	if g.held {
		g.held = false
		cl.active--
	}
	cl.requests++
	cl.events += uint64(stored)
	cl.seen = now
	if cl.inflight == nil && now.Sub(cl.written) >= FlushEvery {
		c.startLocked(cl)
	}
	// A write still under way was not waited for, so nothing was
	// appended: the request's outcome is its own.
	if g.w != nil && failed(g.w) {
		return fmt.Errorf("recording the source: %w", g.w.err)
	}
	return nil
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
			c.warn.Warn("recording a client's source failed", "source", src.ID, "protocol", src.Protocol, "err", w.err)
		}
		c.mu.Unlock()
		close(w.done)
	}()
	return w
}

// sweep writes the counts of clients that went quiet, writes again the
// records of clients still appending before they are Rewrite old, and
// forgets the clients idle for IdleAfter.
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
		c.sweepOnce()
	}
}

// sweepOnce is one pass of the sweeper.
func (c *Clients) sweepOnce() {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, cl := range c.clients {
		switch {
		case cl.inflight != nil:
		case cl.requests > 0 || cl.events > 0 || cl.active > 0 && stale(cl, now):
			c.startLocked(cl)
		case cl.active == 0 && now.Sub(cl.seen) > IdleAfter:
			delete(c.clients, id)
		}
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
// (lengths, dates, trace and request ids): noise in its record, which
// keeps its newest request's other headers.
var perRequestHeaders = map[string]bool{
	"Content-Length": true, "Date": true, "Expect": true,
	"Content-Md5": true, "Digest": true, "Content-Digest": true, "Idempotency-Key": true,
	"Traceparent": true, "Tracestate": true, "Baggage": true,
	"X-Request-Id": true, "Request-Id": true, "X-Correlation-Id": true,
	"X-Amzn-Trace-Id": true, "X-Cloud-Trace-Context": true, "Uber-Trace-Id": true, "Sentry-Trace": true,
	"B3": true, "X-B3-Traceid": true, "X-B3-Spanid": true, "X-B3-Parentspanid": true, "X-B3-Sampled": true, "X-B3-Flags": true,
	"X-Datadog-Trace-Id": true, "X-Datadog-Parent-Id": true,
}

// identityHeaders tell the clients of one host apart: the client's
// software and version (User-Agent: Telegraf/1.30, OTel-OTLP-Exporter-Go,
// Fluent-Bit, curl/8.5) and, behind a proxy, whom the proxy forwards for.
// So do the X-Chronostream-* headers (X-Chronostream-Agent, or
// X-Chronostream-Client set by an operator to name a client). Any other
// header is no part of a client's identity: a header this server does not
// know may change with each request (a proxy's request id such as
// Cloudflare's Cf-Ray, Heroku's X-Request-Start, anything a client makes
// up), and would make a record per request again, each kept in the
// server's memory for 30 days.
var identityHeaders = map[string]bool{"User-Agent": true, "X-Forwarded-For": true, "X-Real-Ip": true}

// identifying reports whether the (canonical) header k is part of a
// client's identity.
func identifying(k string) bool {
	return identityHeaders[k] || strings.HasPrefix(k, "X-Chronostream-")
}

// clientIdentity turns a request's source into its client's: Remote loses
// the port, Headers the per-request ones, and ID becomes "c=" and a hash of
// protocol, chronicle, story, host and identifying headers — the same on
// every node, so a cluster keeps one record per client. No client stream
// id can take this form ('=' is not allowed in them).
func clientIdentity(src *store.Source) {
	src.Remote = hostOnly(src.Remote)
	keys := make([]string, 0, len(src.Headers))
	for k := range src.Headers {
		ck := http.CanonicalHeaderKey(k)
		if perRequestHeaders[ck] {
			delete(src.Headers, k)
		} else if identifying(ck) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int {
		return strings.Compare(http.CanonicalHeaderKey(a), http.CanonicalHeaderKey(b))
	})
	h := sha256.New()
	for _, s := range []string{src.Protocol, src.Chronicle, src.Story, src.Remote} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	for _, k := range keys {
		h.Write([]byte(http.CanonicalHeaderKey(k)))
		h.Write([]byte{0})
		for _, v := range src.Headers[k] {
			h.Write([]byte(identityValue(k, v)))
			h.Write([]byte{1})
		}
		h.Write([]byte{0})
	}
	src.ID = "c=" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

// identityValue is the part of a header's value that identifies a client:
// the forwarded addresses without their ports (some proxies, such as
// Azure's Application Gateway, add the client's port, which changes with
// each connection).
func identityValue(k, v string) string {
	switch http.CanonicalHeaderKey(k) {
	case "X-Forwarded-For", "X-Real-Ip":
		hops := strings.Split(v, ",")
		for i, hop := range hops {
			hops[i] = hostOnly(strings.TrimSpace(hop))
		}
		return strings.Join(hops, ",")
	}
	return v
}

// hostOnly is addr without its port, if it has one.
func hostOnly(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
