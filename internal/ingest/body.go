package ingest

import (
	"compress/flate"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/store"
)

// Errors of a request body, classified by ClassifyBodyError.
var (
	// ErrBodyTooLarge: the body, after decompression, exceeds the limit.
	ErrBodyTooLarge = errors.New("request body too large")
	// ErrBadGzip: a gzip-encoded body does not decompress.
	ErrBadGzip = errors.New("invalid gzip body")
	// ErrUnsupportedEncoding: a Content-Encoding other than gzip.
	ErrUnsupportedEncoding = errors.New("unsupported content encoding")
	// ErrBodyTimeout: the body stalled longer than the body read timeout.
	ErrBodyTimeout = errors.New("request body timed out")
)

// BodyCounter reads a request body, decompressed, up to a limit, and counts
// what it read.
type BodyCounter struct {
	raw     rawBody
	r       io.Reader // raw, or a gzip reader of it
	limit   int64
	n       int64
	gzipped bool
}

// rawBody remembers the error of the body itself, to tell it from a gzip
// reader's own.
type rawBody struct {
	r   io.Reader
	err error
}

func (b *rawBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// OpenBody returns the reader of r's body, decompressed as its
// Content-Encoding says (gzip or none) and bounded by limit bytes. A body
// that declares a length over the limit is refused before it is read, with
// ErrBodyTooLarge; an unknown encoding with ErrUnsupportedEncoding; a gzip
// header that does not parse with ErrBadGzip. Reading past the limit fails
// with ErrBodyTooLarge, after the bytes up to it (none beyond); a gzip
// stream that breaks off fails with ErrBadGzip.
func OpenBody(r *http.Request, limit int64) (*BodyCounter, error) {
	c := &BodyCounter{raw: rawBody{r: r.Body}, limit: limit}
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		// A declared length over the limit is refused before anything is
		// stored; a chunked body is only known to be over it once read.
		if r.ContentLength > limit {
			return nil, &bodyError{fmt.Sprintf("request body of %d bytes exceeds the limit of %d bytes", r.ContentLength, limit), ErrBodyTooLarge}
		}
		c.r = &c.raw
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(&c.raw)
		if err != nil {
			if c.raw.err != nil {
				return nil, c.raw.err
			}
			return nil, fmt.Errorf("%w: %w", ErrBadGzip, err)
		}
		c.r, c.gzipped = zr, true
	default:
		return nil, &bodyError{fmt.Sprintf("content encoding %q is not supported (use gzip or none)", enc), ErrUnsupportedEncoding}
	}
	return c, nil
}

// bodyError is a refusal of a body worded for clients; Is matches its kind.
type bodyError struct {
	msg  string
	kind error
}

func (e *bodyError) Error() string        { return e.msg }
func (e *bodyError) Is(target error) bool { return target == e.kind }

// Read reads the decompressed body. It reads one byte past the limit to
// tell "exactly at" from "over", but never hands that byte on: no value
// may end beyond the limit.
func (c *BodyCounter) Read(p []byte) (int, error) {
	if c.n > c.limit {
		return 0, c.overLimit()
	}
	if rem := c.limit + 1 - c.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.limit {
		return n - int(c.n-c.limit), c.overLimit()
	}
	if err != nil && err != io.EOF && c.gzipped && err != c.raw.err {
		err = fmt.Errorf("%w: %w", ErrBadGzip, err)
	}
	return n, err
}

func (c *BodyCounter) overLimit() error {
	return &bodyError{fmt.Sprintf("request body exceeds the limit of %d bytes", c.limit), ErrBodyTooLarge}
}

// N returns how many (decompressed) bytes were read.
func (c *BodyCounter) N() int64 { return c.n }

// Failure classifies a request's error for a protocol's response: its
// HTTP status and the reason its metrics are labelled with.
type Failure struct {
	Status int
	Reason string
}

// StatusClientClosed is logged (and counted) for requests whose client went
// away; nobody reads the response.
const StatusClientClosed = 499

// ClassifyBodyError classifies errors of reading a request body (see
// OpenBody and BodyReadTimeout); ok is false for other errors.
func ClassifyBodyError(err error) (f Failure, ok bool) {
	var mbe *http.MaxBytesError
	var ce flate.CorruptInputError
	switch {
	case errors.Is(err, ErrBodyTooLarge), errors.As(err, &mbe):
		return Failure{http.StatusRequestEntityTooLarge, "body_too_large"}, true
	case errors.Is(err, ErrBodyTimeout):
		return Failure{http.StatusRequestTimeout, "body_timeout"}, true
	case errors.Is(err, ErrBadGzip), errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum), errors.As(err, &ce):
		return Failure{http.StatusBadRequest, "invalid_gzip"}, true
	case errors.Is(err, ErrUnsupportedEncoding):
		return Failure{http.StatusUnsupportedMediaType, "unsupported_encoding"}, true
	}
	return Failure{}, false
}

// ClassifyStoreError classifies an error of the log (a Pipeline's, or
// recording a source) for the request whose context is ctx: a missing
// chronicle, an invalid name, an event too large for a block, a client gone;
// anything else is the log being unavailable. A canceled or expired context
// is the client gone (499) only when ctx itself ended: the log's own
// timeouts (a publish that got no answer in time) wrap
// context.DeadlineExceeded too, and those are the log being unavailable —
// 503, which clients retry — not a 4xx they would drop the batch on.
func ClassifyStoreError(ctx context.Context, err error) Failure {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		if ctx != nil && ctx.Err() != nil {
			return Failure{StatusClientClosed, "canceled"}
		}
		return Failure{http.StatusServiceUnavailable, "store_timeout"}
	case errors.Is(err, store.ErrNoChronicle):
		return Failure{http.StatusNotFound, "no_chronicle"}
	case errors.Is(err, auth.ErrForbidden):
		return Failure{http.StatusForbidden, "forbidden"}
	case errors.Is(err, store.ErrInvalidName):
		return Failure{http.StatusBadRequest, "invalid_name"}
	case errors.Is(err, store.ErrTooLarge):
		return Failure{http.StatusRequestEntityTooLarge, "event_too_large"}
	}
	return Failure{http.StatusServiceUnavailable, "store_unavailable"}
}

// Recorder records a request's source for its Pipeline (pass Gate to
// Begin): Gate before the first append, BodyRead when the body was read to
// its end with the count of events handed to the pipeline, Finish with the
// count stored. Clients.Open records a request by its client; a client
// stream's request, which carries the stream's position, by NewSourceGate.
type Recorder interface {
	Gate() error
	BodyRead(events int)
	Finish(stored int, warn *ThrottledLogger) error
}

// SourceGate records a client stream's request for its Pipeline (pass Gate to
// Begin): no stored event names a source that is not recorded. Each record
// is an fsynced write, so a body that fits in one batch — most requests —
// is recorded once, complete with its count, when that batch is ready (the
// transport calls BodyRead before closing the pipeline). A body that may
// span batches is recorded as it starts, overlapping with reading it, and
// completed by Finish.
type SourceGate struct {
	ctx      context.Context
	log      Log
	src      *store.Source
	eager    bool
	done     chan error
	events   int
	bodyRead bool
	complete bool // the record put holds the final count
	err      func() error
}

// NewSourceGate returns the gate of src. A body that declares no length,
// or one over batchBytes, is recorded at once, in the background.
func NewSourceGate(ctx context.Context, log Log, src *store.Source, contentLength int64, batchBytes int) *SourceGate {
	g := &SourceGate{ctx: ctx, log: log, src: src, done: make(chan error, 1),
		eager: contentLength < 0 || contentLength > int64(batchBytes)}
	if g.eager {
		go g.put()
	}
	g.err = sync.OnceValue(func() error {
		if !g.eager {
			if g.bodyRead {
				g.src.Count, g.src.End, g.complete = uint64(g.events), time.Now().UTC(), true
			}
			g.put()
		}
		if err := <-g.done; err != nil {
			return fmt.Errorf("recording the source: %w", err)
		}
		return nil
	})
	return g
}

func (g *SourceGate) put() { g.done <- g.log.PutSource(g.ctx, *g.src) }

// Gate records the source (once) and returns its error.
func (g *SourceGate) Gate() error { return g.err() }

// BodyRead tells the gate that the body was read to its end (or its first
// error) and how many events went to the pipeline: a record put from now
// on is complete.
func (g *SourceGate) BodyRead(events int) { g.events, g.bodyRead = events, true }

// Finish records the source if nothing did yet, and completes its record
// with the count of events stored, unless the record put holds it
// already. It returns the error of recording the source; the completion
// is bookkeeping (the events are durable either way), finished even when
// the client has gone and only logged to warn if it fails.
func (g *SourceGate) Finish(stored int, warn *ThrottledLogger) error {
	if err := g.Gate(); err != nil {
		return err
	}
	if g.complete && g.src.Count == uint64(stored) {
		return nil
	}
	g.src.End = time.Now().UTC()
	g.src.Count = uint64(stored)
	uctx, cancel := context.WithTimeout(context.WithoutCancel(g.ctx), 10*time.Second)
	defer cancel()
	if err := g.log.PutSource(uctx, *g.src); err != nil && warn != nil {
		warn.Warn("recording the count of a source failed", "err", err)
	}
	return nil
}

// DefaultBodyReadTimeout is how long a request body may stall when
// Limits.BodyReadTimeout is zero.
const DefaultBodyReadTimeout = 60 * time.Second

// BodyReadTimeout cuts off request bodies that stall: every read of the
// body must get data within about d (the connection's read deadline is
// renewed as data arrives), else it fails with ErrBodyTimeout, which
// ClassifyBodyError answers with 408. What the handler stored before that
// is acknowledged as usual: the request's context is not canceled by the
// timeout (only by the client going away). A slow client that keeps
// sending is not cut off. d <= 0 disables it.
func BodyReadTimeout(d time.Duration) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		if d <= 0 {
			return h
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body == nil || r.Body == http.NoBody {
				h.ServeHTTP(w, r)
				return
			}
			tb := &timedBody{body: r.Body, rc: http.NewResponseController(w), d: d, start: time.Now()}
			if !tb.renew(0) {
				h.ServeHTTP(w, r) // the connection cannot take deadlines
				return
			}
			// The server cancels the request's context on any read error of
			// the connection, the deadline's too; the handler still has to
			// finish storing and answer then.
			parent := r.Context()
			ctx, cancel := context.WithCancelCause(context.WithoutCancel(parent))
			defer cancel(nil)
			stop := context.AfterFunc(parent, func() {
				if !tb.expired() {
					cancel(context.Cause(parent))
				}
			})
			defer stop()
			r = r.WithContext(ctx)
			r.Body = tb
			// The deadline stays set until the body ends: a body left
			// unread is not waited for after the handler either.
			h.ServeHTTP(w, r)
		})
	}
}

// timedBody renews the connection's read deadline as the body is read.
type timedBody struct {
	body     io.ReadCloser
	rc       *http.ResponseController
	d        time.Duration
	start    time.Time     // monotonic base of deadline
	setAt    time.Duration // since start, when the deadline was last set
	deadline atomic.Int64  // since start, in ns; 0 when none is set
}

// renew sets the deadline d from now (now is since start).
func (b *timedBody) renew(now time.Duration) bool {
	if b.rc.SetReadDeadline(b.start.Add(now+b.d)) != nil {
		return false
	}
	b.setAt = now
	b.deadline.Store(int64(now + b.d))
	return true
}

// clear drops the deadline: once the body is read to its end, the server
// reads the connection in the background to notice a client going, and
// the deadline must not cut that read.
func (b *timedBody) clear() {
	if b.deadline.Swap(0) != 0 {
		_ = b.rc.SetReadDeadline(time.Time{})
	}
}

func (b *timedBody) expired() bool {
	dl := b.deadline.Load()
	return dl != 0 && int64(time.Since(b.start)) >= dl
}

func (b *timedBody) Read(p []byte) (int, error) {
	// Renewing costs a call into the poller: do it once an eighth of the
	// timeout has passed, not on every read.
	if now := time.Since(b.start); b.deadline.Load() != 0 && now-b.setAt > b.d/8 {
		b.renew(now)
	}
	n, err := b.body.Read(p)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return n, fmt.Errorf("%w: no data for %s", ErrBodyTimeout, b.d)
		}
		b.clear()
	}
	return n, err
}

func (b *timedBody) Close() error { return b.body.Close() }
