package api

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/obs"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
)

// env is a real embedded store served through the API.
type env struct {
	t       testing.TB
	store   *store.Store
	metrics *obs.Metrics
	srv     *httptest.Server
	done    chan struct{}
	stop    func()
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	s := testutil.OpenStore(t, store.Options{})
	e := &env{t: t, store: s, metrics: obs.New(), done: make(chan struct{})}
	var once sync.Once
	e.stop = func() { once.Do(func() { close(e.done) }) }
	cfg.Store, cfg.Metrics, cfg.Done = s, e.metrics, e.done
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 50 * time.Millisecond
	}
	mux := http.NewServeMux()
	New(cfg).Register(mux, func(h http.Handler) http.Handler { return h })
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	t.Cleanup(e.stop) // runs first: live tails end before the server waits for them
	return e
}

func (e *env) append(chronicle, story string, evs ...event.Event) store.Appended {
	e.t.Helper()
	a, err := e.store.Append(chronicle, story, evs).Wait(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func (e *env) do(method, path string, body io.Reader, hdr ...string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

// getJSON GETs path, requires status and decodes the body into v.
func (e *env) getJSON(path string, status int, v any) {
	e.t.Helper()
	resp := e.do("GET", path, nil)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		e.t.Fatalf("GET %s: status %d, want %d: %s", path, resp.StatusCode, status, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			e.t.Fatalf("GET %s: %v: %s", path, err, b)
		}
	}
}

// eventOut is an event as the JSON formats show it.
type eventOut struct {
	Type       string            `json:"type"`
	Seq        uint64            `json:"seq"`
	Time       time.Time         `json:"time"`
	Story      string            `json:"story"`
	Kind       string            `json:"kind"`
	Tags       map[string]string `json:"tags"`
	Fields     map[string]any    `json:"fields"`
	Body       json.RawMessage   `json:"body"`
	BodyBase64 []byte            `json:"body_base64"`
	Source     string            `json:"source"`
}

type page struct {
	Events []eventOut  `json:"events"`
	Next   string      `json:"next"`
	Gaps   []store.Gap `json:"gaps"`
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	id, event, data string
	hasID           bool
}

// sseStream parses an event stream as it arrives.
type sseStream struct {
	resp *http.Response
	ch   chan sseEvent
}

func (e *env) sse(path string, hdr ...string) *sseStream {
	e.t.Helper()
	resp := e.do("GET", path, nil, hdr...)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		e.t.Fatalf("GET %s: status %d: %s", path, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		e.t.Fatalf("content type %q", ct)
	}
	s := &sseStream{resp: resp, ch: make(chan sseEvent, 1024)}
	go func() {
		defer close(s.ch)
		br := bufio.NewReader(resp.Body)
		var ev sseEvent
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\n")
			if line == "" {
				if ev.event != "" || ev.data != "" {
					s.ch <- ev
				}
				ev = sseEvent{}
				continue
			}
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimPrefix(v, " ")
			switch k {
			case "id":
				ev.id, ev.hasID = v, true
			case "event":
				ev.event = v
			case "data":
				ev.data += v
			}
		}
	}()
	e.t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() { s.resp.Body.Close() }

// next returns the next event of the given type (others are skipped);
// ok is false once the stream ended.
func (s *sseStream) next(t testing.TB, types ...string) (sseEvent, bool) {
	t.Helper()
	timeout := time.After(30 * time.Second) // only a hang guard
	for {
		select {
		case ev, ok := <-s.ch:
			if !ok {
				return sseEvent{}, false
			}
			if len(types) == 0 || contains(types, ev.event) {
				return ev, true
			}
		case <-timeout:
			t.Fatalf("no %v event within the hang guard", types)
		}
	}
}

func (s *sseStream) mustNext(t testing.TB, types ...string) sseEvent {
	t.Helper()
	ev, ok := s.next(t, types...)
	if !ok {
		t.Fatalf("stream ended while waiting for %v", types)
	}
	return ev
}

func decode[T any](t testing.TB, data string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	return v
}

// eventually waits for cond; the deadline is a hang guard, not an assertion of speed.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
