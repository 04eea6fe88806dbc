package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/store"
)

type heartbeat struct {
	Cursor *uint64 `json:"cursor"`
}

// collect reads SSE events until it holds n of type "event".
func collect(t *testing.T, s *sseStream, n int) []eventOut {
	t.Helper()
	var out []eventOut
	for len(out) < n {
		ev := s.mustNext(t, "event")
		got := decode[eventOut](t, ev.data)
		if ev.id != strconv.FormatUint(got.Seq, 10) {
			t.Fatalf("id %q for seq %d", ev.id, got.Seq)
		}
		out = append(out, got)
	}
	return out
}

func TestTailSSEResume(t *testing.T) {
	e := newEnv(t, Config{})
	e.append("c", "s", seedEvents(0, 1)...) // the chronicle exists; the tail starts after it
	const path = "/api/v1/chronicles/c/stories/s/tail"
	s := e.sse(path)
	hb := s.mustNext(t, "heartbeat")
	if cur := decode[heartbeat](t, hb.data).Cursor; cur == nil || hb.id != strconv.FormatUint(*cur, 10) {
		t.Fatalf("first heartbeat %+v", hb)
	}
	for i := 1; i < 11; i += 2 { // several blocks
		e.append("c", "s", seedEvents(i, 2)...)
	}
	e.append("c", "other", seedEvents(1000, 1)...) // not this story
	got := collect(t, s, 5)
	is(t, "first connection", got, []int{1, 2, 3, 4, 5})
	s.close() // a forced disconnect: events 6.. may have been sent and lost

	e.append("c", "s", seedEvents(11, 10)...)
	s = e.sse(path, "Last-Event-ID", strconv.FormatUint(got[4].Seq, 10))
	e.append("c", "s", seedEvents(21, 1)...) // the sentinel
	is(t, "resumed", collect(t, s, 16), span(6, 21, nil))

	// Chronicle tails carry every story; after= works as Last-Event-ID does.
	c := e.sse("/api/v1/chronicles/c/tail?after=" + strconv.FormatUint(got[4].Seq, 10))
	all := collect(t, c, 17)
	if all[5].Story != "other" || fieldI(t, all[5]) != 1000 {
		t.Fatalf("chronicle tail: %+v", all[5])
	}
	// From the beginning, filtered.
	f := e.sse("/api/v1/chronicles/c/tail?after=0&tag.host=h2&kind=metric")
	is(t, "filtered from the start", collect(t, f, 2), []int{5, 20})
	// From a time (of ingest): everything was ingested after 1970.
	tm := e.sse("/api/v1/chronicles/c/stories/s/tail?from=2000-01-01T00:00:00Z")
	is(t, "from time", collect(t, tm, 3), []int{0, 1, 2})
}

func TestTailHeartbeatCursor(t *testing.T) {
	e := newEnv(t, Config{})
	e.append("c", "s", seedEvents(0, 1)...)
	s := e.sse("/api/v1/chronicles/c/stories/s/tail?tag.host=h1")
	start := *decode[heartbeat](t, s.mustNext(t, "heartbeat").data).Cursor
	a := e.append("c", "s", seedEvents(1, 3)...) // only i=1 matches
	ev := collect(t, s, 1)
	is(t, "filtered", ev, []int{1})
	// Heartbeats come during silence and carry the cursor past the
	// filtered events, with an id to resume from.
	for {
		hb := s.mustNext(t, "heartbeat")
		cur := *decode[heartbeat](t, hb.data).Cursor
		if hb.id != strconv.FormatUint(cur, 10) {
			t.Fatalf("heartbeat id %q, cursor %d", hb.id, cur)
		}
		if cur == a.Last {
			break
		}
		if cur != start && cur != ev[0].Seq {
			t.Fatalf("heartbeat cursor %d, want %d (start %d)", cur, a.Last, start)
		}
	}
	// A tail from a time has no cursor until an event passes.
	tm := e.sse("/api/v1/chronicles/c/tail?from=" + strconv.FormatInt(time.Now().Add(time.Hour).UnixNano(), 10))
	hb := tm.mustNext(t, "heartbeat")
	if hb.hasID || decode[heartbeat](t, hb.data).Cursor != nil {
		t.Fatalf("cursorless heartbeat %+v", hb)
	}
}

func TestTailGap(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	first := e.append("r", "s", seedEvents(0, 10)...)
	for i := 10; i < 100; i += 10 {
		e.append("r", "s", seedEvents(i, 10)...)
	}
	if err := e.store.SetRetention(ctx, "r", store.Retention{MaxEvents: 35}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/v1/chronicles/r/stories/s/tail", "/api/v1/chronicles/r/tail"} {
		s := e.sse(path + "?after=" + strconv.FormatUint(first.Last, 10))
		gap := decode[store.Gap](t, s.mustNext(t, "gap").data)
		evs := collect(t, s, 30)
		is(t, "after the gap", evs, span(70, 99, nil))
		if gap.After != first.Last || gap.Next != evs[0].Seq {
			t.Fatalf("%s: gap %+v, first event %d", path, gap, evs[0].Seq)
		}
		// The next heartbeat's cursor is past the gap.
		for {
			cur := *decode[heartbeat](t, s.mustNext(t, "heartbeat").data).Cursor
			if cur == evs[29].Seq {
				break
			}
		}
	}
	// Reads report the gap too.
	var p page
	e.getJSON("/api/v1/chronicles/r/stories/s/events?after="+strconv.FormatUint(first.Last, 10), 200, &p)
	if len(p.Gaps) != 1 || p.Gaps[0].Next != p.Events[0].Seq || len(p.Events) != 30 {
		t.Fatalf("read gap %+v", p.Gaps)
	}
	resp := e.do("GET", "/api/v1/chronicles/r/stories/s/events?format=ndjson&limit=1&after="+strconv.FormatUint(first.Last, 10), nil)
	defer resp.Body.Close()
	var line struct{ Gap *store.Gap }
	if err := json.NewDecoder(resp.Body).Decode(&line); err != nil || line.Gap == nil || line.Gap.After != first.Last {
		t.Fatalf("ndjson gap line %+v: %v", line, err)
	}
}

func wsURL(e *env, path string) string { return "ws" + strings.TrimPrefix(e.srv.URL, "http") + path }

type wsMsg struct {
	eventOut
	Cursor *uint64 `json:"cursor"`
	After  uint64  `json:"after"`
	Next   uint64  `json:"next"`
}

func wsRead(t *testing.T, c *websocket.Conn, typ string) (wsMsg, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a hang guard
	defer cancel()
	for {
		mt, b, err := c.Read(ctx)
		if err != nil {
			return wsMsg{}, err
		}
		if mt != websocket.MessageText {
			t.Fatalf("message type %v", mt)
		}
		m := decode[wsMsg](t, string(b))
		if m.Type == typ {
			return m, nil
		}
	}
}

func wsDial(t *testing.T, e *env, path string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(context.Background(), wsURL(e, path), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func TestTailWebSocket(t *testing.T) {
	e := newEnv(t, Config{})
	e.append("c", "s", seedEvents(0, 1)...)
	c := wsDial(t, e, "/api/v1/chronicles/c/stories/s/tail")
	hb, err := wsRead(t, c, "heartbeat")
	if err != nil || hb.Cursor == nil {
		t.Fatalf("heartbeat %+v: %v", hb, err)
	}
	e.append("c", "s", seedEvents(1, 4)...)
	var got []eventOut
	for len(got) < 4 {
		m, err := wsRead(t, c, "event")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m.eventOut)
	}
	is(t, "ws", got, []int{1, 2, 3, 4})
	c.Close(websocket.StatusNormalClosure, "")

	// Resume from a cursor.
	c = wsDial(t, e, fmt.Sprintf("/api/v1/chronicles/c/tail?after=%d", got[1].Seq))
	for _, want := range []int{3, 4} {
		m, err := wsRead(t, c, "event")
		if err != nil || fieldI(t, m.eventOut) != want {
			t.Fatalf("resumed %+v, want %d: %v", m, want, err)
		}
	}
	// Shutdown closes with 1001.
	e.stop()
	_, err = wsRead(t, c, "never")
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("after shutdown: %v", err)
	}
	if n := counter(t, e, "shutdown"); n < 1 {
		t.Fatalf("shutdown disconnects %v", n)
	}
}

func TestTailShutdownSSE(t *testing.T) {
	e := newEnv(t, Config{})
	e.append("c", "s", seedEvents(0, 1)...)
	s := e.sse("/api/v1/chronicles/c/tail")
	s.mustNext(t, "heartbeat")
	eventually(t, "one tail client", func() bool { return gauge(t, e) == 1 })
	e.stop()
	for {
		if _, ok := s.next(t); !ok {
			break
		}
	}
	eventually(t, "no tail client", func() bool { return gauge(t, e) == 0 })
}

func counter(t *testing.T, e *env, reason string) float64 {
	t.Helper()
	var m dto.Metric
	if err := e.metrics.TailDisconnects.WithLabelValues(reason).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func gauge(t *testing.T, e *env) float64 {
	t.Helper()
	var m dto.Metric
	if err := e.metrics.TailClients.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// A buffer smaller than one block overflows as soon as a block arrives.
func TestTailSlowConsumer(t *testing.T) {
	e := newEnv(t, Config{TailMaxBuffered: 16})
	e.append("c", "s", seedEvents(0, 1)...)
	s := e.sse("/api/v1/chronicles/c/tail")
	s.mustNext(t, "heartbeat")
	c := wsDial(t, e, "/api/v1/chronicles/c/stories/s/tail")
	if _, err := wsRead(t, c, "heartbeat"); err != nil {
		t.Fatal(err)
	}
	e.append("c", "s", seedEvents(1, 5)...)

	ev := s.mustNext(t, "error")
	if !strings.Contains(ev.data, "slow consumer") {
		t.Fatalf("error event %+v", ev)
	}
	if _, ok := s.next(t); ok {
		t.Fatal("the stream goes on after the error")
	}
	_, err := wsRead(t, c, "never")
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "slow consumer" {
		t.Fatalf("ws close: %v", err)
	}
	if n := counter(t, e, "slow_consumer"); n != 2 {
		t.Fatalf("slow consumer disconnects %v", n)
	}
	eventually(t, "no tail client", func() bool { return gauge(t, e) == 0 })
}

// A client that stops reading fills the socket, then the tail's buffer:
// when it reads again it finds what was buffered, then the reason.
func TestTailSlowConsumerStalled(t *testing.T) {
	if testing.Short() {
		t.Skip("writes about 100 MB")
	}
	e := newEnv(t, Config{TailMaxBuffered: 256 << 10, TailWriteTimeout: 10 * time.Minute})
	e.append("c", "s", seedEvents(0, 1)...)
	s := e.sse("/api/v1/chronicles/c/stories/s/tail")
	s.mustNext(t, "heartbeat")
	// Blocks well under the buffer's size: only a stalled writer overflows
	// it. sseStream's reader stops after 1024 events; then the socket's
	// buffers fill (at most 32 MiB + 4 MiB here, see tcp_rmem and tcp_wmem),
	// then the tail's, long before 96 MB.
	pad := strings.Repeat("x", 1000)
	evs := make([]event.Event, 50)
	for i := range evs {
		evs[i] = event.Event{Body: []byte(pad)}
	}
	for range 96 << 20 / (50 * 1000) {
		e.append("c", "s", evs...)
	}
	n := 0
	for {
		ev, ok := s.next(t)
		if !ok {
			t.Fatalf("stream ended without an error event after %d events", n)
		}
		if ev.event == "error" {
			if !strings.Contains(ev.data, "slow consumer") {
				t.Fatalf("error %q", ev.data)
			}
			break
		}
		n++
	}
	if n >= 96<<20/1000 {
		t.Fatalf("every event (%d) arrived: the client was not slow", n)
	}
	if c := counter(t, e, "slow_consumer"); c != 1 {
		t.Fatalf("slow consumer disconnects %v", c)
	}
}
