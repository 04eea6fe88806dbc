package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// wsBatch is how many events the WebSocket writer takes per lock.
const wsBatch = 256

// runWS streams events over one WebSocket connection until it fails, or
// until the client is closed and every event acknowledged (nil error). The
// server's cumulative counts acknowledge the connection's first events.
func (c *Client) runWS(target string) (progressed bool, err error) {
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	c.mu.Lock()
	first := c.ackBase
	c.mu.Unlock()
	dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
	conn, resp, err := websocket.Dial(dctx, c.targetURL(target), &websocket.DialOptions{
		HTTPHeader: c.headers(first),
		HTTPClient: c.cfg.httpClient,
	})
	dcancel()
	if err != nil {
		if resp != nil && configError(resp.StatusCode, "") {
			return false, handshakeError(resp)
		}
		return false, fmt.Errorf("connect: %w", err)
	}
	conn.SetReadLimit(1 << 10) // counts only

	readErr := make(chan error, 1)
	acked := make(chan struct{}, 1)
	readerDone := make(chan struct{})
	// The reader must be gone before the next connection starts: a late
	// count of this one, relative to its first index, would acknowledge
	// the next one's events.
	defer func() {
		cancel()
		conn.CloseNow()
		<-readerDone
	}()
	go func() {
		defer close(readerDone)
		for {
			typ, b, err := conn.Read(ctx)
			if err != nil {
				readErr <- err
				return
			}
			n, perr := strconv.ParseUint(string(b), 10, 64)
			if typ != websocket.MessageText || perr != nil {
				readErr <- fmt.Errorf("unexpected %v message %q from the server", typ, b)
				return
			}
			c.mu.Lock()
			c.ackLocked(first + n)
			c.mu.Unlock()
			select {
			case acked <- struct{}{}:
			default:
			}
		}
	}()

	// Dead-connection detection: while events are outstanding, a count is
	// due within ackTimeout; then a ping must be answered within as long.
	quiet := time.NewTimer(c.cfg.ackTimeout)
	defer quiet.Stop()
	outstanding := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.assigned > 0
	}
	onAck := func() {
		progressed = true
		quiet.Reset(c.cfg.ackTimeout)
	}
	onQuiet := func() error {
		if !outstanding() {
			quiet.Reset(c.cfg.ackTimeout)
			return nil
		}
		pctx, pcancel := context.WithTimeout(ctx, c.cfg.ackTimeout)
		defer pcancel()
		if err := conn.Ping(pctx); err != nil {
			return fmt.Errorf("no acknowledgement for %v and no answer to a ping: %w", c.cfg.ackTimeout, err)
		}
		quiet.Reset(c.cfg.ackTimeout)
		return nil
	}

	next := first // stream index of the next event to write
	batch := make([][]byte, 0, wsBatch)
	for {
		c.mu.Lock()
		if next < c.ackBase {
			next = c.ackBase // never behind what is acknowledged
		}
		for next-c.ackBase >= uint64(len(c.items)) {
			if c.finishedLocked() {
				fatal := c.fatal
				c.mu.Unlock()
				if fatal != nil {
					return progressed, nil
				}
				return true, c.endWS(ctx, conn, readErr)
			}
			ch := c.changed
			c.mu.Unlock()
			select {
			case <-ch:
			case <-acked:
				onAck()
			case <-quiet.C:
				if err := onQuiet(); err != nil {
					return progressed, err
				}
			case err := <-readErr:
				return progressed, c.readFailed(err, first)
			case <-ctx.Done():
				return progressed, ctx.Err()
			}
			c.mu.Lock()
			if next < c.ackBase {
				next = c.ackBase
			}
		}
		pos := int(next - c.ackBase)
		end := min(len(c.items), pos+wsBatch)
		batch = batch[:0]
		for _, it := range c.items[pos:end] {
			batch = append(batch, it.payload)
		}
		if pos < c.assigned {
			c.stats.Resent += uint64(min(end, c.assigned) - pos)
		}
		c.assigned = max(c.assigned, end)
		c.mu.Unlock()
		// A server that stops reading must not hold a write forever.
		wctx, wcancel := context.WithTimeout(ctx, 2*c.cfg.ackTimeout)
		for _, p := range batch {
			if err := conn.Write(wctx, websocket.MessageText, p); err != nil {
				wcancel()
				select {
				case rerr := <-readErr: // the server's close says why
					return progressed, c.readFailed(rerr, first)
				case <-time.After(100 * time.Millisecond):
				}
				return progressed, fmt.Errorf("write: %w", err)
			}
		}
		wcancel()
		next += uint64(len(batch))
		select {
		case <-acked:
			onAck()
		default:
		}
	}
}

// readFailed turns the end of a connection into the error run handles.
// The server closes with 1009 when the event after the last count is too
// large, and with 1008 when the stream's target is refused (no such
// chronicle, an invalid name). The reader has applied every count before
// the close.
func (c *Client) readFailed(err error, first uint64) error {
	switch websocket.CloseStatus(err) {
	case websocket.StatusMessageTooBig:
		c.mu.Lock()
		c.rejectLocked()
		c.mu.Unlock()
		var ce websocket.CloseError
		errors.As(err, &ce)
		rerr := fmt.Errorf("%w: %s", ErrRejected, ce.Reason)
		c.failed(rerr)
		c.log.ErrorContext(logCtx, "chronostream client: the server refused an event; dropped", "reason", ce.Reason)
		return fmt.Errorf("read: %w", err) // reconnect and go on
	case websocket.StatusPolicyViolation:
		var ce websocket.CloseError
		errors.As(err, &ce)
		return &ServerError{Reason: "policy_violation", Detail: ce.Reason}
	}
	return fmt.Errorf("read: %w", err)
}

// handshakeError is the refusal of a WebSocket handshake.
func handshakeError(resp *http.Response) error {
	var b []byte
	if resp.Body != nil {
		b, _ = io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	}
	return &ServerError{Status: resp.StatusCode, Reason: resp.Header.Get(headerReason), Detail: strings.TrimSpace(string(b))}
}

// endWS ends the stream with an empty binary message, as the anacrolix
// protocol does, and waits for the server's close.
func (c *Client) endWS(ctx context.Context, conn *websocket.Conn, readErr <-chan error) error {
	if err := conn.Write(ctx, websocket.MessageBinary, nil); err != nil {
		return nil // everything is acknowledged: the stream's end is a courtesy
	}
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case err := <-readErr:
		if st := websocket.CloseStatus(err); st != websocket.StatusNormalClosure && st != -1 && !errors.Is(err, context.Canceled) {
			c.log.DebugContext(logCtx, "chronostream client: stream ended", "status", st)
		}
	case <-t.C:
	case <-ctx.Done():
	}
	_ = conn.Close(websocket.StatusNormalClosure, "")
	return nil
}
