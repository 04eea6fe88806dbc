package canary

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// target is where a protocol's events land.
type target struct{ chronicle, story string }

func (t target) String() string { return t.chronicle + "/" + t.story }

func (t target) path() string {
	return "/api/v1/chronicles/" + url.PathEscape(t.chronicle) + "/stories/" + url.PathEscape(t.story)
}

// get issues an authenticated GET to the server's API.
func (c *Canary) get(ctx context.Context, path string, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.Server+path, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return resp, nil
}

// lastSeq is the chronicle's newest seq (0 when it does not exist yet): the
// canary reads from there, not the chronicle's history.
func (c *Canary) lastSeq(ctx context.Context, chronicle string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.Server+"/api/v1/chronicles/"+url.PathEscape(chronicle), nil)
	if err != nil {
		return 0, err
	}
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotFound:
		return 0, nil
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("%w: GET chronicle %s: %s: %s (the canary's token needs the read and write scopes on the chronicles it writes to)",
			errRefused, chronicle, resp.Status, bytes.TrimSpace(b))
	default:
		return 0, fmt.Errorf("GET chronicle %s: %s", chronicle, resp.Status)
	}
	var info struct {
		LastSeq uint64 `json:"last_seq"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&info); err != nil {
		return 0, fmt.Errorf("GET chronicle %s: %w", chronicle, err)
	}
	return info.LastSeq, nil
}

// observe hands one event read back to the protocol's tracker if it is
// one of this run's.
func (c *Canary) observe(p *protocol, data []byte, tail bool) {
	m, err := parseEvent(data)
	if err != nil || m.run != c.runID {
		return
	}
	if tail {
		p.tr.seenTail(m.seq, m.sent, time.Now())
	} else {
		p.tr.seenRead(m.seq)
	}
}

// tail follows the protocol's story over SSE from the start cursor until
// ctx ends, reconnecting after the last id it got (Last-Event-ID) so that a
// server restart neither loses nor repeats a delivery.
func (c *Canary) tail(ctx context.Context, p *protocol, cursor uint64) {
	attempt := 0
	for ctx.Err() == nil {
		got, err := c.tailOnce(ctx, p, &cursor)
		if ctx.Err() != nil {
			return
		}
		if got {
			attempt = 0
		}
		c.m.errors.WithLabelValues(p.name, "tail").Inc()
		c.log.Debug("canary tail reconnecting", "protocol", p.name, "cursor", cursor, "err", err)
		if !sleep(ctx, backoff(attempt)) {
			return
		}
		attempt++
	}
}

func (c *Canary) tailOnce(ctx context.Context, p *protocol, cursor *uint64) (got bool, err error) {
	// The server sends a heartbeat after 15 s without events: a stream
	// silent for tailIdle is dead (a peer gone without a reset), so the
	// request is cancelled and the tail reconnects.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idle := time.AfterFunc(tailIdle, cancel)
	defer idle.Stop()
	h := http.Header{}
	h.Set("Accept", "text/event-stream")
	h.Set("Last-Event-ID", strconv.FormatUint(*cursor, 10))
	resp, err := c.get(ctx, p.target.path()+"/tail", h)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	r := newSSEReader(resp.Body)
	for {
		msg, err := r.next()
		if err != nil {
			return got, err
		}
		got = true
		idle.Reset(tailIdle)
		switch msg.event {
		case "event":
			c.observe(p, msg.data, true)
		case "gap":
			c.log.Warn("canary tail: retention removed events", "protocol", p.name, "gap", string(msg.data))
		case "error":
			return got, fmt.Errorf("the server ended the tail: %s", msg.data)
		}
		if id, err := strconv.ParseUint(msg.id, 10, 64); err == nil {
			*cursor = id
		}
	}
}

// sweepPage bounds one read request; the sweep pages on.
const sweepPage = 5000

const (
	requestTimeout = time.Minute      // bounds a read request, so a hung server cannot stall the sweep
	tailIdle       = 45 * time.Second // three missed heartbeats
)

// sweep reads the story from its cursor to its end once through the read
// API, which sees every log position exactly once: a canary event found
// twice is a duplicate in the log.
func (c *Canary) sweep(ctx context.Context, p *protocol) error {
	for {
		path := fmt.Sprintf("%s/events?format=ndjson&limit=%d&after=%d", p.target.path(), sweepPage, p.sweepCursor)
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		resp, err := c.get(rctx, path, nil)
		if err != nil {
			cancel()
			return err
		}
		n, err := c.sweepBody(p, resp.Body)
		resp.Body.Close()
		cancel()
		if err != nil {
			return err
		}
		if n < sweepPage {
			return nil
		}
	}
}

func (c *Canary) sweepBody(p *protocol, body io.Reader) (int, error) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), maxSSELine)
	n := 0
	for sc.Scan() {
		line := sc.Bytes()
		var pos struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal(line, &pos); err != nil || pos.Seq <= p.sweepCursor {
			return n, fmt.Errorf("read sweep: a line that is not an event after %d: %.100q", p.sweepCursor, line)
		}
		c.observe(p, line, false)
		p.sweepCursor = pos.Seq
		n++
	}
	return n, sc.Err()
}

// backoff is exponential from 100 ms to 5 s, so that a restarted server is
// found again quickly without hammering one that is down.
func backoff(attempt int) time.Duration {
	return min(100*time.Millisecond<<min(attempt, 6), 5*time.Second)
}

// sleep waits d or until ctx ends; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
