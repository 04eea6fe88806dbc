package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
	conn, _, err := websocket.Dial(dctx, c.targetURL(target), &websocket.DialOptions{
		HTTPHeader: c.headers(first),
		HTTPClient: c.cfg.httpClient,
	})
	dcancel()
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 10) // counts only

	readErr := make(chan error, 1)
	acked := make(chan struct{}, 1)
	go func() {
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

	next := first // stream index of the next event to write
	batch := make([][]byte, 0, wsBatch)
	for {
		c.mu.Lock()
		for int(next-c.ackBase) >= len(c.items) {
			if c.finishedLocked() {
				c.mu.Unlock()
				return true, c.endWS(ctx, conn, readErr)
			}
			ch := c.changed
			c.mu.Unlock()
			select {
			case <-ch:
			case <-acked:
				progressed = true
			case err := <-readErr:
				return progressed, fmt.Errorf("read: %w", err)
			case <-ctx.Done():
				return progressed, ctx.Err()
			}
			c.mu.Lock()
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
		for _, p := range batch {
			if err := conn.Write(ctx, websocket.MessageText, p); err != nil {
				return progressed, fmt.Errorf("write: %w", err)
			}
		}
		next += uint64(len(batch))
		select {
		case <-acked:
			progressed = true
		default:
		}
	}
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
			c.log.Debug("chronostream client: stream ended", "status", st)
		}
	case <-t.C:
	case <-ctx.Done():
	}
	_ = conn.Close(websocket.StatusNormalClosure, "")
	return nil
}
