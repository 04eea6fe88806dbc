package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const requestTimeout = 60 * time.Second

// The server's machine-readable answer to POST / (see docs/api.md).
const (
	headerStored       = "X-Chronostream-Stored"        // events of the request stored (a prefix)
	headerReason       = "X-Chronostream-Reason"        // why the request failed
	headerRejectedLine = "X-Chronostream-Rejected-Line" // the body's line the server refused on its own
)

// reply is the server's answer to one batch.
type reply struct {
	status   int
	stored   uint64 // X-Chronostream-Stored, or the body of a 200
	reason   string
	rejected bool // one event, the one after the stored ones, was refused
	text     string
}

// runHTTP posts NDJSON batches, one request at a time, until a request
// fails, or until the client is closed and every event acknowledged (nil
// error). A batch is acknowledged by the count in the 200 reply; a failed
// batch is sent again, with the same stream index, in the next request.
func (c *Client) runHTTP(target string) (progressed bool, err error) {
	u := c.targetURL(target)
	limit := c.cfg.batchSize // events per request; halved on a 413 for the whole body
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
		n := 0
		// A fresh buffer each time: the transport may still be reading
		// the previous body after a server answered before reading it all.
		var body bytes.Buffer
		for _, it := range c.items[:min(len(c.items), limit)] {
			if n > 0 && body.Len()+len(it.payload)+1 > c.cfg.batchBytes {
				break
			}
			body.Write(it.payload)
			body.WriteByte('\n')
			n++
		}
		c.stats.Resent += uint64(min(n, c.assigned))
		c.assigned = max(c.assigned, n)
		first := c.ackBase
		c.mu.Unlock()

		rep, err := c.post(u, first, body.Bytes())
		if err != nil {
			return progressed, err
		}
		c.mu.Lock()
		c.ackLocked(first + min(rep.stored, uint64(n)))
		c.mu.Unlock()
		progressed = progressed || rep.stored > 0
		switch {
		case rep.status == http.StatusOK:
			limit = min(2*limit, c.cfg.batchSize)
		case rep.rejected || rep.status == http.StatusRequestEntityTooLarge && n-int(rep.stored) <= 1:
			// The server refused the event after the stored ones on its
			// own (or a batch of that one event): it never will take
			// it. Drop it; its index stays unused.
			c.mu.Lock()
			if c.ackBase == first+rep.stored {
				c.rejectLocked()
			}
			c.mu.Unlock()
			c.failed(fmt.Errorf("%w: %d %s", ErrRejected, rep.status, rep.text))
			c.log.ErrorContext(logCtx, "chronostream client: the server refused an event; dropped", "status", rep.status, "reason", rep.reason, "reply", rep.text)
			progressed = true
		case rep.status == http.StatusRequestEntityTooLarge:
			// The body was too large for the server as a whole: send the
			// rest in smaller requests.
			limit = max(1, (n-int(rep.stored))/2)
			c.log.WarnContext(logCtx, "chronostream client: request too large for the server; halving the batch", "events", limit)
		case configError(rep.status, rep.reason):
			return progressed, &ServerError{Status: rep.status, Reason: rep.reason, Detail: rep.text}
		default:
			return progressed, fmt.Errorf("server replied %d: %s", rep.status, rep.text)
		}
	}
}

// configError tells a refusal that resending cannot cure: the client's
// configuration (its token, target or stream) is wrong.
func configError(status int, reason string) bool {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusNotImplemented,
		http.StatusMethodNotAllowed, http.StatusUnsupportedMediaType:
		return true
	case http.StatusBadRequest:
		switch reason {
		case "invalid_stream", "invalid_name", "invalid_kind", "":
			// A 400 without a reason comes from something that is not a
			// chronostream server (a proxy, an old version): it would
			// refuse every resend too.
			return true
		}
	}
	return false
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

func (c *Client) post(u string, first uint64, body []byte) (reply, error) {
	ctx, cancel := context.WithTimeout(c.ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	req.Header = c.headers(first)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := c.cfg.httpClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return reply{}, err
	}
	rep := reply{status: resp.StatusCode, text: strings.TrimSpace(string(b)), reason: resp.Header.Get(headerReason)}
	if resp.StatusCode == http.StatusOK {
		k, perr := strconv.ParseUint(rep.text, 10, 64)
		if perr != nil {
			return reply{}, fmt.Errorf("unexpected reply %q", rep.text)
		}
		rep.stored = k
		return rep, nil
	}
	rep.stored, _ = strconv.ParseUint(resp.Header.Get(headerStored), 10, 64)
	rep.rejected = resp.Header.Get(headerRejectedLine) != ""
	if rep.reason == "" && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		var p struct{ Type string }
		if json.Unmarshal(b, &p) == nil {
			rep.reason = strings.ReplaceAll(strings.TrimPrefix(p.Type, "urn:chronostream:problem:"), "-", "_")
		}
	}
	return rep, nil
}
