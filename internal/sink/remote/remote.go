// Package remote reads a chronicle from a running chronostream server over
// its HTTP API, for `chronostream forward`: sink.Source (reads with
// after=cursor&sort=seq to catch up, the SSE tail to be woken) and
// sink.Cursors (the cursor kept on the server under the sink's name, in
// the same bucket as the server's own sinks).
package remote

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/sink"
	"github.com/chronostream/chronostream/internal/store"
)

// MaxLine bounds one NDJSON line or SSE message: an event as the API
// encodes it (the server's own limit per event is smaller).
const MaxLine = 64 << 20

// Server is a chronostream server's API.
type Server struct {
	// Base is the server's URL (http://127.0.0.1:4318).
	Base   string
	Token  string
	Client *http.Client
	Log    *slog.Logger
}

var (
	_ sink.Source  = (*Server)(nil)
	_ sink.Cursors = (*Server)(nil)
)

// apiError is a reply other than the one expected.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("server replied %d: %s", e.status, e.msg) }

func (s *Server) do(ctx context.Context, method, path string, q url.Values, body io.Reader, ctype string) (*http.Response, error) {
	u := strings.TrimRight(s.Base, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	var p struct{ Detail string }
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &p) == nil && p.Detail != "" {
		msg = p.Detail
	}
	err = &apiError{status: resp.StatusCode, msg: msg}
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("remote: %s %s: %w: %w", method, path, store.ErrNotFound, err)
	}
	return nil, fmt.Errorf("remote: %s %s: %w", method, path, err)
}

func chroniclePath(c string) string { return "/api/v1/chronicles/" + url.PathEscape(c) }

// Read implements sink.Source with the read API in seq order (NDJSON).
func (s *Server) Read(ctx context.Context, chronicle string, after uint64, limit int, fn func(*event.Event) error, onGap func(store.Gap) error) (int, error) {
	q := url.Values{"sort": {"seq"}, "format": {"ndjson"}, "after": {strconv.FormatUint(after, 10)}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	resp, err := s.do(ctx, http.MethodGet, chroniclePath(chronicle)+"/events", q, nil, "")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	n := 0
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if bytes.HasPrefix(line, []byte(`{"gap":`)) {
			var g struct{ Gap store.Gap }
			if err := json.Unmarshal(line, &g); err != nil {
				return n, fmt.Errorf("remote: gap: %w", err)
			}
			if onGap != nil {
				if err := onGap(g.Gap); err != nil {
					return n, err
				}
			}
			continue
		}
		e, err := DecodeEvent(line)
		if err != nil {
			return n, err
		}
		n++
		if err := fn(&e); err != nil {
			return n, err
		}
	}
	if err := sc.Err(); err != nil {
		return n, fmt.Errorf("remote: read: %w", err)
	}
	return n, nil
}

// ReadBack implements sink.Source with a newest-first read.
func (s *Server) ReadBack(ctx context.Context, chronicle string, upto uint64, limit int, fn func(*event.Event) error) error {
	q := url.Values{"sort": {"seq"}, "format": {"ndjson"}, "order": {"desc"}, "before": {strconv.FormatUint(upto+1, 10)}, "limit": {strconv.Itoa(limit)}}
	resp, err := s.do(ctx, http.MethodGet, chroniclePath(chronicle)+"/events", q, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	var evs []event.Event
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 || bytes.HasPrefix(sc.Bytes(), []byte(`{"gap":`)) {
			continue
		}
		e, err := DecodeEvent(sc.Bytes())
		if err != nil {
			return err
		}
		evs = append(evs, e)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("remote: read: %w", err)
	}
	for i := len(evs) - 1; i >= 0; i-- {
		if err := fn(&evs[i]); err != nil {
			return err
		}
	}
	return nil
}

// Head implements sink.Source.
func (s *Server) Head(ctx context.Context, chronicle string) (uint64, error) {
	resp, err := s.do(ctx, http.MethodGet, chroniclePath(chronicle), nil, nil, "")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var ci struct {
		LastSeq uint64 `json:"last_seq"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ci); err != nil {
		return 0, fmt.Errorf("remote: chronicle: %w", err)
	}
	return ci.LastSeq, nil
}

// SeqAt implements sink.Source.
func (s *Server) SeqAt(ctx context.Context, chronicle string, t time.Time) (uint64, error) {
	q := url.Values{"sort": {"seq"}, "format": {"ndjson"}, "from": {t.UTC().Format(time.RFC3339Nano)}, "limit": {"1"}}
	resp, err := s.do(ctx, http.MethodGet, chroniclePath(chronicle)+"/events", q, nil, "")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	for sc.Scan() {
		if bytes.HasPrefix(sc.Bytes(), []byte(`{"gap":`)) {
			continue
		}
		var e struct{ Seq uint64 }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Seq == 0 {
			return 0, fmt.Errorf("remote: event: %q", sc.Bytes())
		}
		return e.Seq - 1, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("remote: read: %w", err)
	}
	return s.Head(ctx, chronicle)
}

// DeadLetter implements sink.Source: the events' JSON bodies, posted as
// NDJSON to the story (stored durably before the server answers).
func (s *Server) DeadLetter(ctx context.Context, chronicle, story string, evs []event.Event) error {
	var body bytes.Buffer
	for _, e := range evs {
		body.Write(e.Body)
		body.WriteByte('\n')
	}
	resp, err := s.do(ctx, http.MethodPost, chroniclePath(chronicle)+"/stories/"+url.PathEscape(story)+"/events", nil, &body, "application/x-ndjson")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func cursorPath(name string) string { return "/api/v1/sinks/" + url.PathEscape(name) + "/cursor" }

// Cursor implements sink.Cursors. The revision is not kept over HTTP: a
// forward is the only writer of its cursor.
func (s *Server) Cursor(ctx context.Context, name string) (sink.Cursor, uint64, error) {
	var c sink.Cursor
	resp, err := s.do(ctx, http.MethodGet, cursorPath(name), nil, nil, "")
	if errors.Is(err, store.ErrNotFound) {
		return c, 0, sink.ErrNoCursor
	}
	if err != nil {
		return c, 0, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&c); err != nil {
		return c, 0, fmt.Errorf("remote: cursor: %w", err)
	}
	return c, 1, nil
}

// SetCursor implements sink.Cursors (unconditionally; see Cursor).
func (s *Server) SetCursor(ctx context.Context, name string, c sink.Cursor, _ int64) (uint64, error) {
	b, _ := json.Marshal(map[string]any{"seq": c.Seq, "chronicle": c.Chronicle})
	resp, err := s.do(ctx, http.MethodPut, cursorPath(name), nil, bytes.NewReader(b), "application/json")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return 1, nil
}

// WatchCursor implements sink.Cursors: changes made on the server are
// not watched (a nil channel).
func (s *Server) WatchCursor(context.Context, string) (<-chan sink.Cursor, error) { return nil, nil }
