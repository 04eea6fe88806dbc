package wsingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/obs"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
)

type fixture struct {
	srv     *httptest.Server
	handler *Handler
	store   *store.Store
	metrics *obs.Metrics
	done    chan struct{}
}

func newFixture(t testing.TB, limits ingest.Limits) *fixture {
	t.Helper()
	f := &fixture{store: testutil.OpenStore(t, store.Options{}), metrics: obs.New(), done: make(chan struct{})}
	f.handler = NewHandler(Config{Config: ingest.Config{Log: f.store, Limits: limits, Metrics: f.metrics,
		DefaultChronicle: "main", DefaultStory: "ws"}, Done: f.done})
	f.srv = httptest.NewServer(f.handler)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) dial(t testing.TB, query string, header http.Header) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(f.srv.URL, "http")+"/"+query,
		&websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func (f *fixture) read(t testing.TB, chronicle, story string) []event.Event {
	t.Helper()
	var evs []event.Event
	_, err := f.store.Read(context.Background(), store.Query{Chronicle: chronicle, Story: story}, func(e *event.Event) error {
		evs = append(evs, *e)
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func send(t testing.TB, c *websocket.Conn, typ websocket.MessageType, msg string) {
	t.Helper()
	if err := c.Write(context.Background(), typ, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

// readCount reads the server's next count message.
func readCount(t testing.TB, c *websocket.Conn) int {
	t.Helper()
	typ, b, err := c.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(string(b))
	if typ != websocket.MessageText || err != nil {
		t.Fatalf("got %v message %q, want a text count", typ, b)
	}
	return n
}

// countsUntil reads counts until one reaches want; counts never decrease.
func countsUntil(t testing.TB, c *websocket.Conn, want int) {
	t.Helper()
	last := 0
	for last < want {
		n := readCount(t, c)
		if n < last || n > want {
			t.Fatalf("count %d after %d, want up to %d", n, last, want)
		}
		last = n
	}
}

// closeStatus reads until the server closes and returns its status; any
// message before the close fails the test.
func closeStatus(t testing.TB, c *websocket.Conn) websocket.StatusCode {
	t.Helper()
	_, b, err := c.Read(context.Background())
	if err == nil {
		t.Fatalf("message %q, want the close", b)
	}
	return websocket.CloseStatus(err)
}

func TestMessagesAreEvents(t *testing.T) {
	f := newFixture(t, ingest.Limits{})
	h := http.Header{"User-Agent": {"ws-test"}, "Cookie": {"session=secret"}}
	c := f.dial(t, "?chronicle=app.prod&story=web%20logs", h)

	msgs := []struct {
		typ  websocket.MessageType
		body string
	}{
		{websocket.MessageText, "{\"time\":\"2024-07-03T15:16:55.563839+10:00\",\"level\":\"INFO\",\"msg\":\"hi mom\"}\n"},
		{websocket.MessageBinary, "\x00\x01 not json \xff"},
		{websocket.MessageText, "plain text line"},
		{websocket.MessageText, `{"kind":"metric","cpu":0.25}`},
		{websocket.MessageBinary, `[1,2,3]`},
		{websocket.MessageText, `{"a":1}{"b":2}`}, // two values: not one JSON value
	}
	for _, m := range msgs {
		send(t, c, m.typ, m.body)
	}
	countsUntil(t, c, len(msgs))
	send(t, c, websocket.MessageText, `{"msg":"after the first run"}`)
	if n := readCount(t, c); n != len(msgs)+1 {
		t.Fatalf("count %d, want %d", n, len(msgs)+1)
	}
	send(t, c, websocket.MessageBinary, "") // end of stream
	// The client has the final count already: it is not sent again.
	if st := closeStatus(t, c); st != websocket.StatusNormalClosure {
		t.Fatalf("close status %v, want 1000", st)
	}

	evs := f.read(t, "app.prod", "web logs")
	want := []struct {
		body string
		json bool
		kind event.Kind
	}{
		{`{"time":"2024-07-03T15:16:55.563839+10:00","level":"INFO","msg":"hi mom"}`, true, event.KindLog},
		{"\x00\x01 not json \xff", false, event.KindEvent},
		{"plain text line", false, event.KindEvent},
		{`{"kind":"metric","cpu":0.25}`, true, event.KindMetric},
		{`[1,2,3]`, true, event.KindEvent},
		{`{"a":1}{"b":2}`, false, event.KindEvent},
		{`{"msg":"after the first run"}`, true, event.KindLog},
	}
	if len(evs) != len(want) {
		t.Fatalf("read back %d events, want %d", len(evs), len(want))
	}
	for i, w := range want {
		e := evs[i]
		if string(e.Body) != w.body || (e.Format == event.FormatJSON) != w.json || e.Kind != w.kind || e.Source != evs[0].Source {
			t.Errorf("event %d = body %q json %v kind %v source %q; want %q %v %v", i, e.Body, e.Format, e.Kind, e.Source, w.body, w.json, w.kind)
		}
	}
	if evs[0].TimeValue().UnixMicro() != 1719983815563839 {
		t.Errorf("time %v, want the payload's", evs[0].TimeValue())
	}

	// The source's count is updated when the handler finishes, after the close.
	f.srv.Close()
	if err := f.handler.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	src, err := f.store.GetSource(context.Background(), evs[0].Source)
	if err != nil {
		t.Fatal(err)
	}
	if src.Protocol != Protocol || src.Count != uint64(len(want)) || src.Chronicle != "app.prod" || src.Story != "web logs" ||
		src.End.Before(src.Start) || src.Remote == "" {
		t.Errorf("source = %+v", src)
	}
	if ua := src.Headers["User-Agent"]; len(ua) != 1 || ua[0] != "ws-test" {
		t.Errorf("User-Agent = %q", ua)
	}
	if ck := src.Headers["Cookie"]; len(ck) != 1 || ck[0] != "[REDACTED]" {
		t.Errorf("Cookie = %q, want it redacted", ck)
	}
}

// TestBurst sends many messages without waiting: the server stores them in
// runs and the counts it sends reach the total, never decreasing.
func TestBurst(t *testing.T) {
	f := newFixture(t, ingest.Limits{})
	c := f.dial(t, "", http.Header{"X-Chronostream-Story": {"burst"}})
	const n = 20000
	go func() {
		for i := range n {
			if err := c.Write(context.Background(), websocket.MessageText, fmt.Appendf(nil, `{"i":%d}`, i)); err != nil {
				return
			}
		}
	}()
	countsUntil(t, c, n)
	send(t, c, websocket.MessageBinary, "")
	if st := closeStatus(t, c); st != websocket.StatusNormalClosure {
		t.Fatalf("close status %v", st)
	}
	evs := f.read(t, "main", "burst")
	if len(evs) != n {
		t.Fatalf("read back %d, want %d", len(evs), n)
	}
	for i, e := range evs {
		if want := fmt.Sprintf(`{"i":%d}`, i); string(e.Body) != want {
			t.Fatalf("event %d = %s, want %s", i, e.Body, want)
		}
	}
}

func TestMessageTooLarge(t *testing.T) {
	f := newFixture(t, ingest.Limits{MaxEventBytes: 1000})
	c := f.dial(t, "", nil)
	send(t, c, websocket.MessageText, `{"a":1}`)
	send(t, c, websocket.MessageText, strings.Repeat("x", 1000)) // at the limit: fine
	countsUntil(t, c, 2)
	send(t, c, websocket.MessageText, `{"a":2}`)
	send(t, c, websocket.MessageBinary, strings.Repeat("y", 5000))
	// Whatever was read before the oversized message is acknowledged.
	for {
		_, b, err := c.Read(context.Background())
		if err != nil {
			if st := websocket.CloseStatus(err); st != websocket.StatusMessageTooBig {
				t.Fatalf("close status %v (%v), want 1009", st, err)
			}
			break
		}
		if string(b) != "3" {
			t.Fatalf("count %q, want 3", b)
		}
	}
	evs := f.read(t, "main", "ws")
	if len(evs) != 3 || string(evs[2].Body) != `{"a":2}` {
		t.Fatalf("read back %d events", len(evs))
	}
	f.srv.Close()
	f.handler.Wait(context.Background())
	var m dto.Metric
	if err := f.metrics.IngestErrors.WithLabelValues(Protocol, "event_too_large").Write(&m); err != nil || m.GetCounter().GetValue() != 1 {
		t.Errorf("event_too_large errors = %v (%v), want 1", m.GetCounter().GetValue(), err)
	}
}

func TestPing(t *testing.T) {
	f := newFixture(t, ingest.Limits{})
	c := f.dial(t, "", nil)
	// Pongs are read by the client's reader.
	counts := make(chan string, 4)
	go func() {
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				close(counts)
				return
			}
			counts <- string(b)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	send(t, c, websocket.MessageText, "x")
	if got := <-counts; got != "1" {
		t.Fatalf("count %q", got)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestShutdownAcksAndGoesAway(t *testing.T) {
	f := newFixture(t, ingest.Limits{})
	c := f.dial(t, "?kind=annotation", nil)
	send(t, c, websocket.MessageText, "deploy v1.2.3")
	countsUntil(t, c, 1)
	close(f.done)
	if st := closeStatus(t, c); st != websocket.StatusGoingAway {
		t.Fatalf("close status %v, want 1001", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f.handler.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	evs := f.read(t, "main", "ws")
	if len(evs) != 1 || evs[0].Kind != event.KindAnnotation || evs[0].Format != event.FormatRaw {
		t.Fatalf("events %+v", evs)
	}
	// New connections are refused while shutting down.
	_, resp, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(f.srv.URL, "http"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial during shutdown: %v %v", resp, err)
	}
}

func TestClientCloseWithoutEndMessage(t *testing.T) {
	f := newFixture(t, ingest.Limits{})
	c := f.dial(t, "", nil)
	send(t, c, websocket.MessageText, "one")
	countsUntil(t, c, 1)
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil && !errors.Is(err, context.Canceled) {
		t.Logf("close: %v", err)
	}
	f.srv.Close()
	f.handler.Wait(context.Background())
	evs := f.read(t, "main", "ws")
	if len(evs) != 1 || !bytes.Equal(evs[0].Body, []byte("one")) {
		t.Fatalf("events %+v", evs)
	}
	src, err := f.store.GetSource(context.Background(), evs[0].Source)
	if err != nil || src.Count != 1 || src.End.IsZero() {
		t.Fatalf("source %+v, %v", src, err)
	}
}

func TestBadRequest(t *testing.T) {
	f := newFixture(t, ingest.Limits{})
	for _, q := range []string{"?kind=nope", "?chronicle=" + strings.Repeat("c", event.MaxChronicleName+1)} {
		_, resp, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(f.srv.URL, "http")+"/"+q, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %v %v, want 400", q, resp, err)
		}
	}
}

// TestCountSentOnce: a count is sent only when it changed, so the end
// message after an acknowledged run is answered by the close alone, and an
// end message with nothing acknowledged yet still gets its count.
func TestCountSentOnce(t *testing.T) {
	f := newFixture(t, ingest.Limits{})
	c := f.dial(t, "", nil)
	send(t, c, websocket.MessageText, "one")
	if n := readCount(t, c); n != 1 {
		t.Fatalf("count %d, want 1", n)
	}
	send(t, c, websocket.MessageBinary, "")
	if st := closeStatus(t, c); st != websocket.StatusNormalClosure {
		t.Fatalf("close status %v, want 1000", st)
	}

	// Messages and the end message in one run: one count, then the close.
	c = f.dial(t, "", nil)
	for _, m := range []string{"a", "b", "c"} {
		send(t, c, websocket.MessageText, m)
	}
	send(t, c, websocket.MessageBinary, "")
	countsUntil(t, c, 3)
	if st := closeStatus(t, c); st != websocket.StatusNormalClosure {
		t.Fatalf("close status %v, want 1000", st)
	}

	// Nothing sent: the final count, 0, is still sent before the close.
	c = f.dial(t, "", nil)
	send(t, c, websocket.MessageBinary, "")
	if n := readCount(t, c); n != 0 {
		t.Fatalf("count %d, want 0", n)
	}
	if st := closeStatus(t, c); st != websocket.StatusNormalClosure {
		t.Fatalf("close status %v, want 1000", st)
	}
}

// TestWaitRacesNewConnections: connections arriving while shutdown waits
// are refused, never counted after Wait began (a WaitGroup's Add racing its
// Wait; the race detector reports it).
func TestWaitRacesNewConnections(t *testing.T) {
	for range 50 {
		done := make(chan struct{})
		h := NewHandler(Config{Config: ingest.Config{Log: nopLog{}}, Done: done})
		close(done)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
				if rec.Code != http.StatusServiceUnavailable {
					t.Errorf("status %d during shutdown, want 503", rec.Code)
				}
			})
		}
		if err := h.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
	}
}

// nopLog is a log nothing reaches.
type nopLog struct{}

func (nopLog) Append(string, string, []event.Event) *store.Pending { panic("unexpected append") }
func (nopLog) PutSource(context.Context, store.Source) error       { panic("unexpected source") }
func (nopLog) MergeSource(context.Context, string, func(store.Source, bool) store.Source) error {
	panic("unexpected source")
}
