package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/chronostream/chronostream/event"
)

// Overflow says what Send does when the buffer is full.
type Overflow int

const (
	// Block makes Send wait for room until its context ends.
	Block Overflow = iota
	// DropOldest discards the oldest event not yet sent to make room.
	// Events already sent are kept until acknowledged: if every buffered
	// event was sent, the new one is discarded instead (counted in
	// DroppedNewest).
	DropOldest
	// DropNewest discards the event being sent; Send returns ErrBufferFull.
	DropNewest
)

func (o Overflow) String() string {
	switch o {
	case Block:
		return "block"
	case DropOldest:
		return "drop-oldest"
	case DropNewest:
		return "drop-newest"
	}
	return fmt.Sprintf("overflow(%d)", int(o))
}

// Errors returned by the client.
var (
	// ErrClosed: Send or Flush after Close.
	ErrClosed = errors.New("chronostream client: closed")
	// ErrBufferFull: the buffer was full and the policy is DropNewest.
	ErrBufferFull = errors.New("chronostream client: buffer full, event dropped")
	// ErrInvalidJSON: a payload given to Send is not one JSON value.
	ErrInvalidJSON = errors.New("chronostream client: payload is not valid JSON")
	// ErrTooLarge: a payload given to Send is larger than MaxEventSize.
	ErrTooLarge = errors.New("chronostream client: event larger than the maximum event size")
	// ErrRejected: the server refused events for good (an event too large
	// for it, say); they were discarded. Flush and Close wrap it with the
	// count, and Stats.Rejected counts them.
	ErrRejected = errors.New("chronostream client: the server refused events; they were discarded")
)

// ServerError is a refusal of the server that resending cannot cure: the
// client is misconfigured (a bad token, a chronicle that does not exist, an
// invalid name or stream id). The client stops sending and keeps its
// events; Send, Flush and Close return the error (errors.As finds it).
type ServerError struct {
	Status int    // the HTTP status (of the request or the WebSocket handshake), or 0
	Reason string // the server's reason, e.g. "invalid_stream", "no_chronicle", when it gave one
	Detail string // what the server said
}

func (e *ServerError) Error() string {
	s := fmt.Sprintf("chronostream client: the server refused the stream (status %d", e.Status)
	if e.Reason != "" {
		s += ", " + e.Reason
	}
	s += "); sending stopped"
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Stats are the client's counters since New.
type Stats struct {
	Buffered      int    // events held: not yet acknowledged by the server
	Accepted      uint64 // events Send took into the buffer
	Acked         uint64 // events the server acknowledged (durable)
	DroppedOldest uint64 // events discarded by DropOldest
	DroppedNewest uint64 // events discarded by DropNewest (or DropOldest when all buffered events were sent)
	Rejected      uint64 // events the server refused for good (e.g. too large), discarded
	Resent        uint64 // events sent again after a failed connection or request
	Reconnects    uint64 // connections or requests that failed and were retried
	// LastError is the last failure: a connection or request that failed
	// (retried), refused events (ErrRejected) or a *ServerError (sending
	// stopped). nil when nothing failed yet.
	LastError error
}

// Option configures a Client.
type Option func(*config) error

type config struct {
	urls             []string
	chronicle, story string
	token            string
	bufferSize       int
	overflow         Overflow
	batchSize        int
	batchBytes       int
	maxEvent         int
	ackTimeout       time.Duration
	onError          func(error)
	linger           time.Duration
	header           http.Header
	logger           *slog.Logger
	stream           string
	firstIndex       uint64
	minBackoff       time.Duration
	maxBackoff       time.Duration
	httpClient       *http.Client
}

// Chronicle sets the chronicle events go to (default, or "": the server's
// default). A name the server cannot take is refused here.
func Chronicle(name string) Option {
	return func(c *config) error {
		if err := event.ValidateChronicle(name); err != nil && name != "" {
			return fmt.Errorf("chronostream client: %w", err)
		}
		c.chronicle = name
		return nil
	}
}

// Story sets the story events go to (default, or "": the server's default).
func Story(name string) Option {
	return func(c *config) error {
		if err := event.ValidateStory(name); err != nil && name != "" {
			return fmt.Errorf("chronostream client: %w", err)
		}
		c.story = name
		return nil
	}
}

// Token authenticates with "Authorization: Bearer token".
func Token(token string) Option { return func(c *config) error { c.token = token; return nil } }

// BufferSize bounds the events held: queued or sent and not yet
// acknowledged (default 10000).
func BufferSize(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("chronostream client: buffer size %d < 1", n)
		}
		c.bufferSize = n
		return nil
	}
}

// OverflowPolicy sets what Send does when the buffer is full (default Block).
func OverflowPolicy(o Overflow) Option {
	return func(c *config) error {
		if o < Block || o > DropNewest {
			return fmt.Errorf("chronostream client: unknown overflow policy %d", o)
		}
		c.overflow = o
		return nil
	}
}

// Batch sets how many events at most one HTTP request carries (default
// 1000) and how long a request waits for more events before it goes with
// fewer (default 100ms; Flush and Close do not wait). Over WebSocket events
// go out as they come and the server batches.
func Batch(size int, linger time.Duration) Option {
	return func(c *config) error {
		if size < 1 || linger < 0 {
			return fmt.Errorf("chronostream client: batch of %d events, linger %v", size, linger)
		}
		c.batchSize, c.linger = size, linger
		return nil
	}
}

// BatchBytes bounds the bytes of one HTTP request's body (default 4 MiB;
// a single event larger than that goes alone). When the server still finds
// a request too large (413 for the whole body), the client halves the batch
// and tries again; an event the server refuses on its own is discarded.
func BatchBytes(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("chronostream client: batch bytes %d < 1", n)
		}
		c.batchBytes = n
		return nil
	}
}

// MaxEventSize bounds one event's payload (default 1 MiB, the server's
// default limit): Send refuses a larger one with ErrTooLarge rather than
// queuing an event the server would refuse.
func MaxEventSize(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("chronostream client: max event size %d < 1", n)
		}
		c.maxEvent = n
		return nil
	}
}

// AckTimeout sets how long a WebSocket connection may go without an
// acknowledgement while events are outstanding (default 30s). Then the
// client pings the server, and reconnects unless the pong arrives within
// the same time: a connection whose peer vanished (a dead NAT entry, a
// proxy that hangs) is not waited on forever.
func AckTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("chronostream client: ack timeout %v", d)
		}
		c.ackTimeout = d
		return nil
	}
}

// OnError sets a function called with each failure, from the client's
// sending goroutine: a failed connection or request (retried), events the
// server refused (ErrRejected, they are discarded) and a *ServerError
// (sending stopped). It runs outside the client's locks but holds up
// sending while it runs: it must not block, nor Send to the same client
// with the Block policy (that Send would wait for the goroutine running
// it). Stats.LastError holds the last failure.
func OnError(fn func(error)) Option {
	return func(c *config) error { c.onError = fn; return nil }
}

// Header adds a header to every request and connection (context for the
// whole stream; it is stored with the stream's source record).
func Header(key, value string) Option {
	return func(c *config) error { c.header.Add(key, value); return nil }
}

// Logger sets where the client logs connection failures (default: nowhere).
func Logger(l *slog.Logger) Option { return func(c *config) error { c.logger = l; return nil } }

// Failover adds servers tried in turn, after the one given to New, when a
// connection or request fails. They must share one log (a cluster) for
// duplicates to be removed across them.
func Failover(urls ...string) Option {
	return func(c *config) error { c.urls = append(c.urls, urls...); return nil }
}

// Stream sets the stream's id and the index of its first event. By default
// each Client is a new stream with a random id numbered from 0; a
// producer that keeps unacknowledged events across restarts (a spool)
// resumes its stream with the id and the index of the first event it holds.
//
// The id is 1 to 128 characters out of A-Z, a-z, 0-9, '-' and '_'. It must
// belong to one producer, and its indexes must keep increasing across that
// producer's restarts: the server drops every event of a story whose index
// is not above the stream's last one, so a second producer with the same
// id, or a restart numbering from 0 again, has its events taken for
// duplicates and silently dropped (while acknowledged).
func Stream(id string, first uint64) Option {
	return func(c *config) error {
		if !event.ValidStreamID(id) {
			return fmt.Errorf("chronostream client: stream id %q must be 1 to 128 characters out of A-Z, a-z, 0-9, '-' and '_'", id)
		}
		c.stream, c.firstIndex = id, first
		return nil
	}
}

// Backoff sets the delays between reconnection attempts: exponential from
// min to max, with full jitter (default 100ms to 10s).
func Backoff(min, max time.Duration) Option {
	return func(c *config) error {
		if min <= 0 || max < min {
			return fmt.Errorf("chronostream client: backoff %v..%v", min, max)
		}
		c.minBackoff, c.maxBackoff = min, max
		return nil
	}
}

// HTTPClient sets the client used for HTTP requests and WebSocket
// handshakes (default: a client of its own).
func HTTPClient(hc *http.Client) Option {
	return func(c *config) error { c.httpClient = hc; return nil }
}

// item is one buffered event.
type item struct {
	payload []byte
	seq     uint64 // order of acceptance, for Flush
}

// Client sends events to a chronostream server. It is safe for concurrent
// use. Events are sent in the order Send accepted them.
type Client struct {
	cfg    config
	stream string
	log    *slog.Logger

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced when the buffer changes
	items    []item        // acknowledged events are removed from the front
	assigned int           // items[:assigned] have been sent: indexes ackBase...
	ackBase  uint64        // stream index of items[0]
	seq      uint64        // last seq given
	flushing int           // Flush calls waiting: do not linger
	closed   bool
	fatal    error  // a *ServerError: sending stopped
	reported uint64 // Stats.Rejected when Flush last reported rejections
	stats    Stats

	// The outcome of the first Close, for later ones: closeErr is set
	// before closeDone is closed.
	closeDone chan struct{}
	closeErr  error

	ctx    context.Context // ends when Close gives up
	cancel context.CancelFunc
	done   chan struct{} // the sender has stopped
}

// New returns a client sending to the server at url, whose scheme picks the
// transport: ws or wss for WebSocket (GET /), http or https for NDJSON
// batches (POST /). The path and query of url are kept. It starts a
// goroutine; Close stops it.
func New(rawURL string, opts ...Option) (*Client, error) {
	cfg := config{
		urls:       []string{rawURL},
		bufferSize: 10000,
		batchSize:  1000,
		batchBytes: 4 << 20,
		maxEvent:   1 << 20,
		ackTimeout: 30 * time.Second,
		linger:     100 * time.Millisecond,
		header:     http.Header{},
		minBackoff: 100 * time.Millisecond,
		maxBackoff: 10 * time.Second,
	}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	for _, u := range cfg.urls {
		pu, err := url.Parse(u)
		if err != nil {
			return nil, fmt.Errorf("chronostream client: %w", err)
		}
		switch pu.Scheme {
		case "ws", "wss", "http", "https":
		default:
			return nil, fmt.Errorf("chronostream client: URL %q: scheme must be ws, wss, http or https", u)
		}
	}
	if cfg.stream == "" {
		var b [16]byte
		_, _ = cryptoRead(b[:])
		cfg.stream = hex.EncodeToString(b[:])
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.httpClient == nil {
		cfg.httpClient = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	c := &Client{cfg: cfg, stream: cfg.stream, log: cfg.logger, changed: make(chan struct{}),
		ackBase: cfg.firstIndex, done: make(chan struct{}), closeDone: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	go c.run()
	return c, nil
}

var cryptoRead = crand.Read

// StreamID is the id of the client's stream (see the Stream option).
func (c *Client) StreamID() string { return c.stream }

// Send queues one event, a JSON value (an object, usually), without waiting
// for the network. payload is copied. When the buffer is full, the overflow
// policy applies: Block waits until there is room or ctx ends, DropOldest
// discards the oldest unsent event, DropNewest discards this one and
// returns ErrBufferFull. A payload over MaxEventSize is refused with
// ErrTooLarge; after the server refused the stream (a *ServerError), Send
// returns that error.
func (c *Client) Send(ctx context.Context, payload []byte) error {
	return c.send(ctx, payload, c.cfg.overflow)
}

func (c *Client) send(ctx context.Context, payload []byte, policy Overflow) error {
	if !json.Valid(payload) {
		return ErrInvalidJSON
	}
	// One event is one NDJSON line: a value spread over lines is compacted.
	var p []byte
	if bytes.IndexByte(payload, '\n') >= 0 {
		var b bytes.Buffer
		_ = json.Compact(&b, payload)
		p = b.Bytes()
	} else {
		p = append([]byte(nil), payload...)
	}
	if len(p) > c.cfg.maxEvent {
		return fmt.Errorf("%w: %d bytes, the maximum is %d", ErrTooLarge, len(p), c.cfg.maxEvent)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if c.closed {
			return ErrClosed
		}
		if c.fatal != nil {
			return c.fatal
		}
		if len(c.items) < c.cfg.bufferSize {
			break
		}
		switch policy {
		case DropNewest:
			c.stats.DroppedNewest++
			return ErrBufferFull
		case DropOldest:
			if c.assigned < len(c.items) {
				copy(c.items[c.assigned:], c.items[c.assigned+1:])
				c.items[len(c.items)-1] = item{}
				c.items = c.items[:len(c.items)-1]
				c.stats.DroppedOldest++
				continue
			}
			c.stats.DroppedNewest++
			return ErrBufferFull
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
			c.mu.Lock()
		case <-ctx.Done():
			c.mu.Lock()
			return ctx.Err()
		}
	}
	c.seq++
	c.items = append(c.items, item{payload: p, seq: c.seq})
	c.stats.Accepted++
	c.notifyLocked()
	return nil
}

// SendJSON sends v encoded by encoding/json.
func (c *Client) SendJSON(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("chronostream client: %w", err)
	}
	return c.Send(ctx, b)
}

// notifyLocked wakes everyone waiting for a change of the buffer.
func (c *Client) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Flush waits until every event accepted before the call is acknowledged
// by the server (durable), or ctx ends. It returns ErrClosed after Close; a
// *ServerError once the server refused the stream (the events stay
// buffered, unsent); and an error wrapping ErrRejected, with the count,
// when the server refused events for good since the previous Flush that
// said so (they were discarded, the others are durable).
func (c *Client) Flush(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	target := c.seq
	c.flushing++
	c.notifyLocked()
	defer func() {
		c.mu.Lock()
		c.flushing--
		c.mu.Unlock()
	}()
	for len(c.items) > 0 && c.items[0].seq <= target {
		if c.fatal != nil {
			err := c.fatal
			c.mu.Unlock()
			return err
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("chronostream client: flush: %w", ctx.Err())
		case <-c.done:
			c.mu.Lock()
			n := len(c.items)
			c.mu.Unlock()
			return fmt.Errorf("chronostream client: flush: %w with %d events unacknowledged", ErrClosed, n)
		}
		c.mu.Lock()
	}
	defer c.mu.Unlock()
	if n := c.stats.Rejected - c.reported; n > 0 {
		c.reported = c.stats.Rejected
		return fmt.Errorf("%w: %d events", ErrRejected, n)
	}
	return nil
}

// Close stops accepting events, waits until every buffered event is
// acknowledged or ctx ends, and ends the stream. Events still unacknowledged
// when ctx ends are lost, and the error says how many. The error also
// wraps ErrRejected, with the count, when the server refused events for
// good since New, and is the *ServerError when the server refused the
// stream (Close then returns at once). A later Close waits for the first
// one (or its own ctx) and returns the same outcome.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		select {
		case <-c.closeDone:
			return c.closeErr
		case <-ctx.Done():
			return fmt.Errorf("chronostream client: close: %w", ctx.Err())
		}
	}
	c.closed = true
	c.flushing++
	c.notifyLocked()
	c.mu.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
		c.cancel()
		<-c.done
	}
	var errs []error
	c.mu.Lock()
	switch n := len(c.items); {
	case c.fatal != nil:
		errs = append(errs, fmt.Errorf("%w (closed with %d events unsent)", c.fatal, n))
	case n > 0:
		errs = append(errs, fmt.Errorf("chronostream client: closed with %d events unacknowledged: %w", n, ctx.Err()))
	}
	if n := c.stats.Rejected; n > 0 {
		errs = append(errs, fmt.Errorf("%w: %d events", ErrRejected, n))
	}
	c.mu.Unlock()
	c.cancel()
	c.closeErr = errors.Join(errs...)
	close(c.closeDone)
	return c.closeErr
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Buffered = len(c.items)
	return s
}

// ackLocked removes the events up to stream index next (exclusive).
func (c *Client) ackLocked(next uint64) {
	if next <= c.ackBase {
		return
	}
	n := int(min(next-c.ackBase, uint64(c.assigned)))
	clear(c.items[:n])
	c.items = c.items[n:]
	c.assigned -= n
	c.ackBase += uint64(n)
	c.stats.Acked += uint64(n)
	c.notifyLocked()
}

// rejectLocked discards the first buffered event, which was sent and
// which the server refused for good; its index stays unused.
func (c *Client) rejectLocked() {
	if c.assigned == 0 {
		return
	}
	c.items[0] = item{}
	c.items = c.items[1:]
	c.assigned--
	c.ackBase++
	c.stats.Rejected++
	c.stats.LastError = fmt.Errorf("%w: %d events", ErrRejected, c.stats.Rejected)
	c.notifyLocked()
}

// failed records a failure and tells OnError. It must be called without
// the lock.
func (c *Client) failed(err error) {
	c.mu.Lock()
	c.stats.LastError = err
	var se *ServerError
	if errors.As(err, &se) && c.fatal == nil {
		c.fatal = se
		c.notifyLocked()
	}
	c.mu.Unlock()
	if c.cfg.onError != nil {
		c.cfg.onError(err)
	}
}

// logCtx marks the client's own log records: a Handler of this client
// drops them rather than wait for room in the buffer that only the
// logging goroutine (the sender) can make.
var logCtx = context.WithValue(context.Background(), internalLog{}, true)

type internalLog struct{}

func isInternalLog(ctx context.Context) bool {
	v, _ := ctx.Value(internalLog{}).(bool)
	return v
}

// finishedLocked reports whether the sender may stop: closed and nothing
// held, or the server refused the stream.
func (c *Client) finishedLocked() bool { return c.closed && len(c.items) == 0 || c.fatal != nil }

// run is the sender: it connects, sends, and reconnects with backoff.
func (c *Client) run() {
	defer close(c.done)
	attempt, u := 0, 0
	for {
		c.mu.Lock()
		fin := c.finishedLocked()
		c.mu.Unlock()
		if fin || c.ctx.Err() != nil {
			return
		}
		target := c.cfg.urls[u%len(c.cfg.urls)]
		var progressed bool
		var err error
		if isWS(target) {
			progressed, err = c.runWS(target)
		} else {
			progressed, err = c.runHTTP(target)
		}
		if err == nil {
			return // finished
		}
		if c.ctx.Err() != nil {
			return
		}
		var se *ServerError
		if errors.As(err, &se) {
			c.failed(err)
			c.log.ErrorContext(logCtx, "chronostream client: the server refused the stream; sending stopped", "url", target, "err", err)
			return
		}
		c.mu.Lock()
		c.stats.Reconnects++
		c.mu.Unlock()
		c.failed(err)
		if progressed {
			attempt = 0
		}
		u++ // fail over to the next server
		d := backoff(c.cfg.minBackoff, c.cfg.maxBackoff, attempt)
		attempt++
		c.log.WarnContext(logCtx, "chronostream client: sending failed, retrying", "url", target, "err", err, "retry_in", d)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			return
		}
	}
}

// backoff is a delay with full jitter in [0, min·2^attempt], at most max,
// and at least min/2 so that a dead server is not hammered.
func backoff(lo, hi time.Duration, attempt int) time.Duration {
	d := hi
	if attempt < 63 && lo <= hi>>attempt {
		d = lo << attempt
	}
	return lo/2 + rand.N(d-lo/2+1)
}

func isWS(u string) bool {
	pu, _ := url.Parse(u)
	return pu.Scheme == "ws" || pu.Scheme == "wss"
}

// targetURL returns the URL with chronicle and story in its query.
func (c *Client) targetURL(raw string) string {
	pu, _ := url.Parse(raw)
	q := pu.Query()
	if c.cfg.chronicle != "" {
		q.Set("chronicle", c.cfg.chronicle)
	}
	if c.cfg.story != "" {
		q.Set("story", c.cfg.story)
	}
	pu.RawQuery = q.Encode()
	if pu.Path == "" {
		pu.Path = "/"
	}
	return pu.String()
}

// headers returns the headers of a request or connection whose first event
// has stream index first.
func (c *Client) headers(first uint64) http.Header {
	h := c.cfg.header.Clone()
	if c.cfg.token != "" {
		h.Set("Authorization", "Bearer "+c.cfg.token)
	}
	h.Set("X-Chronostream-Stream", c.stream)
	h.Set("X-Chronostream-Index", fmt.Sprint(first))
	return h
}
