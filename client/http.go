package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

const requestTimeout = 60 * time.Second

// runHTTP posts NDJSON batches, one request at a time, until a request
// fails, or until the client is closed and every event acknowledged (nil
// error). A batch is acknowledged by the count in the 200 reply; a failed
// batch is sent again, with the same stream index, in the next request.
func (c *Client) runHTTP(target string) (progressed bool, err error) {
	u := c.targetURL(target)
	var body bytes.Buffer
	for {
		c.mu.Lock()
		if !c.waitBatchLocked() {
			fin := c.finishedLocked()
			c.mu.Unlock()
			if fin {
				return progressed, nil
			}
			return progressed, c.ctx.Err()
		}
		n := max(min(len(c.items), c.cfg.batchSize), c.assigned)
		if c.assigned > 0 {
			c.stats.Resent += uint64(c.assigned)
		}
		c.assigned = n
		first := c.ackBase
		body.Reset()
		for _, it := range c.items[:n] {
			body.Write(it.payload)
			body.WriteByte('\n')
		}
		c.mu.Unlock()

		status, reply, err := c.post(u, first, body.Bytes())
		if err != nil {
			return progressed, err
		}
		switch {
		case status == http.StatusOK:
			k, perr := strconv.ParseUint(strings.TrimSpace(reply), 10, 64)
			if perr != nil {
				return progressed, fmt.Errorf("unexpected reply %q", reply)
			}
			c.mu.Lock()
			c.ackLocked(first + k)
			c.mu.Unlock()
			progressed = progressed || k > 0
		case status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge:
			// The events before the one refused are stored; that one
			// never will be: drop it (its index stays unused).
			stored := storedOf(reply)
			c.mu.Lock()
			c.ackLocked(first + stored)
			if c.assigned > 0 && c.ackBase == first+stored {
				c.items[0] = item{}
				c.items = c.items[1:]
				c.assigned--
				c.ackBase++
				c.stats.Rejected++
				c.notifyLocked()
			}
			c.mu.Unlock()
			c.log.Error("chronostream client: the server refused an event; dropped", "status", status, "reply", strings.TrimSpace(reply))
			progressed = true
		default:
			return progressed, fmt.Errorf("server replied %d: %s", status, strings.TrimSpace(reply))
		}
	}
}

// waitBatchLocked waits until a batch is due: the buffer holds a full batch,
// the linger has passed, a flush or close is waiting, or a failed batch is
// to be resent. It returns false when there is nothing to send and the
// client is finished or canceled.
func (c *Client) waitBatchLocked() bool {
	var timer <-chan time.Time
	lingered := false
	for {
		if c.ctx.Err() != nil || c.finishedLocked() {
			return false
		}
		if n := len(c.items); n > 0 && (lingered || n >= c.cfg.batchSize || c.assigned > 0 || c.flushing > 0 || c.closed || c.cfg.linger == 0) {
			return true
		}
		if len(c.items) > 0 && timer == nil {
			t := time.NewTimer(c.cfg.linger)
			defer t.Stop()
			timer = t.C
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-timer:
			lingered = true
		case <-c.ctx.Done():
		}
		c.mu.Lock()
	}
}

func (c *Client) post(u string, first uint64, body []byte) (int, string, error) {
	ctx, cancel := context.WithTimeout(c.ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header = c.headers(first)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := c.cfg.httpClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, "", err
	}
	return resp.StatusCode, string(b), nil
}

var storedLine = regexp.MustCompile(`(?m)^stored (\d+)$`)

// storedOf reads the "stored N" line of a POST / error reply.
func storedOf(reply string) uint64 {
	if m := storedLine.FindStringSubmatch(reply); m != nil {
		n, _ := strconv.ParseUint(m[1], 10, 64)
		return n
	}
	return 0
}
