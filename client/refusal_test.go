package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/chronostream/chronostream/client"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

func closeCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// bigEvent is {"i":i,"pad":"xxx…"} of about size bytes.
func bigEvent(i, size int) []byte {
	return []byte(fmt.Sprintf(`{"i":%d,"pad":"%s"}`, i, strings.Repeat("x", size)))
}

// TestHTTPBatchOverBodyLimit: batches whose bodies exceed the server's body
// limit are split, not dropped event by event: every event is stored once,
// nothing is rejected and Close reports no error.
func TestHTTPBatchOverBodyLimit(t *testing.T) {
	s := servertest.RunServer(t, server.Options{AutoCreate: true, Limits: ingest.Limits{MaxBodyBytes: 200 << 10}})
	base := "http://" + s.Addr()
	// 100 events of 40 KB: 4 MB in one batch by count, 20 times the limit.
	c, err := client.New(base, client.Chronicle("c"), client.Story("big"), client.Batch(1000, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	for i := range n {
		if err := c.Send(context.Background(), bigEvent(i, 40<<10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(closeCtx(t)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if st := c.Stats(); st.Rejected != 0 || st.Acked != n {
		t.Fatalf("stats %+v", st)
	}
	is, _ := storedIs(t, base, "c", "big")
	wantExactlyOnce(t, is, n)
}

// TestBatchBytes: the byte bound splits batches before the server has to.
func TestBatchBytes(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		sizes = append(sizes, len(b))
		mu.Unlock()
		fmt.Fprintf(w, "%d\n", strings.Count(string(b), "\n"))
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, client.Batch(1000, time.Hour), client.BatchBytes(10<<10))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := c.Send(context.Background(), bigEvent(i, 3000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(closeCtx(t)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) < 6 {
		t.Fatalf("request sizes %v: want batches of at most 10 KB", sizes)
	}
	for _, n := range sizes {
		if n > 10<<10 {
			t.Fatalf("request of %d bytes over the bound", n)
		}
	}
}

// TestHTTPEventTooLarge: an event the server refuses on its own is
// dropped, the others stored; Flush and Close say so.
func TestHTTPEventTooLarge(t *testing.T) {
	s := servertest.RunServer(t, server.Options{AutoCreate: true, Limits: ingest.Limits{MaxEventBytes: 1000}})
	base := "http://" + s.Addr()
	c, err := client.New(base, client.Chronicle("c"), client.Story("one-big"), client.Batch(100, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	sendN(t, c, 0, 3)
	if err := c.Send(context.Background(), bigEvent(3, 2000)); err != nil {
		t.Fatal(err)
	}
	sendN(t, c, 4, 8)
	if err := c.Flush(closeCtx(t)); !errors.Is(err, client.ErrRejected) || !strings.Contains(err.Error(), "1 events") {
		t.Fatalf("Flush: %v, want ErrRejected for 1 event", err)
	}
	if err := c.Flush(closeCtx(t)); err != nil {
		t.Fatalf("second Flush: %v, want nil (reported already)", err)
	}
	if err := c.Close(closeCtx(t)); !errors.Is(err, client.ErrRejected) {
		t.Fatalf("Close after a rejection: %v, want ErrRejected", err)
	}
	st := c.Stats()
	if st.Rejected != 1 || st.Acked != 7 || !errors.Is(st.LastError, client.ErrRejected) {
		t.Fatalf("stats %+v", st)
	}
	is, _ := storedIs(t, base, "c", "one-big")
	if fmt.Sprint(is) != "[0 1 2 4 5 6 7]" {
		t.Fatalf("stored %v", is)
	}
}

// TestMaxEventSize: Send refuses an event over the bound up front.
func TestMaxEventSize(t *testing.T) {
	c, err := client.New("http://127.0.0.1:1", client.MaxEventSize(100))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		_ = c.Close(ctx)
	}()
	if err := c.Send(context.Background(), bigEvent(0, 200)); !errors.Is(err, client.ErrTooLarge) {
		t.Fatalf("Send of 200 bytes: %v, want ErrTooLarge", err)
	}
	if err := c.Send(context.Background(), []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
}

// TestWSEventTooLarge: an event over the server's limit, sent over
// WebSocket, is dropped (the server closes with 1009) instead of being
// resent forever; the events around it are stored, and Close returns.
func TestWSEventTooLarge(t *testing.T) {
	s := servertest.RunServer(t, server.Options{AutoCreate: true, Limits: ingest.Limits{MaxEventBytes: 1000}})
	base := "http://" + s.Addr()
	c, err := client.New("ws://"+s.Addr(), client.Chronicle("c"), client.Story("ws-big"),
		client.Backoff(time.Millisecond, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	sendN(t, c, 0, 3)
	if err := c.Send(context.Background(), bigEvent(3, 2000)); err != nil {
		t.Fatal(err)
	}
	sendN(t, c, 4, 8)
	if err := c.Close(closeCtx(t)); !errors.Is(err, client.ErrRejected) {
		t.Fatalf("Close: %v, want ErrRejected", err)
	}
	if st := c.Stats(); st.Rejected != 1 || st.Acked != 7 {
		t.Fatalf("stats %+v", st)
	}
	is, _ := storedIs(t, base, "c", "ws-big")
	if fmt.Sprint(is) != "[0 1 2 4 5 6 7]" {
		t.Fatalf("stored %v", is)
	}
}

// TestStreamIDValidated: a stream id the server would refuse is refused
// by New.
func TestStreamIDValidated(t *testing.T) {
	for _, id := range []string{"", "a b", "é", strings.Repeat("x", 129), "a/b"} {
		if _, err := client.New("http://127.0.0.1:1", client.Stream(id, 0)); err == nil {
			t.Errorf("stream id %q accepted", id)
		}
	}
	c, err := client.New("http://127.0.0.1:1", client.Stream("ok-"+strings.Repeat("x", 125), 0))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close(context.Background())
	if _, err := client.New("http://127.0.0.1:1", client.Story(strings.Repeat("s", 2000))); err == nil {
		t.Error("a story name over the limit accepted")
	}
}

// TestConfigurationErrors: a refusal that resending cannot cure (a wrong
// token, a missing chronicle) stops sending, keeps the events, and is
// returned by Send, Flush and Close, in Stats and to OnError.
func TestConfigurationErrors(t *testing.T) {
	s := servertest.RunServer(t, server.Options{Tokens: []string{"secret"}})
	for _, tc := range []struct {
		name, scheme string
		opts         []client.Option
		status       int
	}{
		{"http-token", "http", []client.Option{client.Token("wrong")}, http.StatusUnauthorized},
		{"ws-token", "ws", []client.Option{client.Token("wrong")}, http.StatusUnauthorized},
		{"http-no-chronicle", "http", []client.Option{client.Token("secret"), client.Chronicle("missing")}, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			opts := append(tc.opts, client.Backoff(time.Millisecond, time.Millisecond),
				client.OnError(func(error) { calls.Add(1) }))
			c, err := client.New(tc.scheme+"://"+s.Addr(), opts...)
			if err != nil {
				t.Fatal(err)
			}
			sendN(t, c, 0, 5)
			var se *client.ServerError
			if err := c.Flush(closeCtx(t)); !errors.As(err, &se) || se.Status != tc.status {
				t.Fatalf("Flush: %v, want a ServerError with status %d", err, tc.status)
			}
			if err := c.Send(context.Background(), []byte(`{}`)); !errors.As(err, &se) {
				t.Fatalf("Send after the refusal: %v", err)
			}
			st := c.Stats()
			if st.Buffered != 5 || st.Rejected != 0 || !errors.As(st.LastError, &se) || st.Reconnects != 0 {
				t.Fatalf("stats %+v: want the 5 events kept, none rejected, no retry", st)
			}
			if err := c.Close(closeCtx(t)); !errors.As(err, &se) || !strings.Contains(err.Error(), "5 events unsent") {
				t.Fatalf("Close: %v", err)
			}
			if calls.Load() != 1 {
				t.Fatalf("OnError called %d times, want 1", calls.Load())
			}
		})
	}
}

// TestInvalidStreamOnServer: a server refusing the stream id (400
// invalid_stream) is a configuration error, not a rejection of each event.
func TestInvalidStreamOnServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Chronostream-Stored", "0")
		w.Header().Set("X-Chronostream-Reason", "invalid_stream")
		http.Error(w, "bad stream\nstored 0", http.StatusBadRequest)
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, client.Backoff(time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	sendN(t, c, 0, 3)
	var se *client.ServerError
	if err := c.Close(closeCtx(t)); !errors.As(err, &se) || se.Reason != "invalid_stream" {
		t.Fatalf("Close: %v", err)
	}
	if st := c.Stats(); st.Rejected != 0 || st.Buffered != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// TestCloseTwice: Flush after Close is ErrClosed; a second Close returns
// the first one's outcome, and honours its own context while the first
// is still waiting.
func TestCloseTwice(t *testing.T) {
	dead := "http://127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	c, err := client.New(dead, client.Backoff(time.Hour, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	sendN(t, c, 0, 2)
	first := make(chan error, 1)
	fctx, fcancel := context.WithCancel(context.Background())
	go func() { first <- c.Close(fctx) }()
	testutil.Eventually(t, 10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		return errors.Is(c.Flush(ctx), client.ErrClosed)
	}, "Flush after Close to return ErrClosed")
	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer scancel()
	if err := c.Close(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Close while the first waits: %v, want its own deadline", err)
	}
	fcancel()
	err1 := <-first
	if err1 == nil || !strings.Contains(err1.Error(), "2 events unacknowledged") {
		t.Fatalf("first Close: %v", err1)
	}
	if err := c.Close(context.Background()); err == nil || err.Error() != err1.Error() {
		t.Fatalf("third Close: %v, want the first's %v", err, err1)
	}
}

// TestDropOldestKeepsSentEvents: DropOldest never discards events already
// sent (they may be stored): with every buffered event in flight, the new
// one is dropped instead, and what was in flight is stored once.
func TestDropOldestKeepsSentEvents(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	var got []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		b, _ := io.ReadAll(r.Body)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		mu.Lock()
		got = append(got, lines...)
		mu.Unlock()
		fmt.Fprintf(w, "%d\n", len(lines))
	}))
	defer srv.Close()
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	c, err := client.New(srv.URL, client.BufferSize(3), client.OverflowPolicy(client.DropOldest), client.Batch(3, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	sendN(t, c, 0, 3) // a full batch: sent at once
	<-entered
	if err := c.Send(context.Background(), []byte(`{"i":99}`)); !errors.Is(err, client.ErrBufferFull) {
		t.Fatalf("Send with every buffered event in flight: %v, want ErrBufferFull", err)
	}
	if st := c.Stats(); st.DroppedOldest != 0 || st.DroppedNewest != 1 || st.Buffered != 3 {
		t.Fatalf("stats %+v", st)
	}
	close(release)
	released = true
	if err := c.Close(closeCtx(t)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != `[{"i":0} {"i":1} {"i":2}]` {
		t.Fatalf("server got %v", got)
	}
}

// TestFailover: when the first server is down, the client sends to the
// next one.
func TestFailover(t *testing.T) {
	s := servertest.RunServer(t, server.Options{AutoCreate: true})
	base := "http://" + s.Addr()
	dead := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	for name, u := range schemes(base) {
		t.Run(name, func(t *testing.T) {
			scheme := strings.SplitN(u, ":", 2)[0]
			c, err := client.New(scheme+"://"+dead, client.Failover(u), client.Chronicle("c"), client.Story("failover-"+name),
				client.Backoff(time.Millisecond, 10*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			sendN(t, c, 0, 50)
			if err := c.Close(closeCtx(t)); err != nil {
				t.Fatal(err)
			}
			if st := c.Stats(); st.Reconnects == 0 {
				t.Fatalf("stats %+v: the dead server was not tried", st)
			}
			is, _ := storedIs(t, base, "c", "failover-"+name)
			wantExactlyOnce(t, is, 50)
		})
	}
}

// TestWSDeadConnection: a WebSocket peer that stops answering (no counts,
// no pongs) is detected after the ack timeout and the client reconnects.
func TestWSDeadConnection(t *testing.T) {
	var conns atomic.Int32
	hang := make(chan struct{})
	defer close(hang)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		if conns.Add(1) == 1 {
			<-hang // reads nothing: no counts, no pongs
			return
		}
		n := 0
		for {
			typ, b, err := c.Read(r.Context())
			if err != nil || typ == websocket.MessageBinary && len(b) == 0 {
				c.Close(websocket.StatusNormalClosure, "")
				return
			}
			n++
			if err := c.Write(r.Context(), websocket.MessageText, []byte(strconv.Itoa(n))); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	c, err := client.New("ws"+strings.TrimPrefix(srv.URL, "http"), client.AckTimeout(100*time.Millisecond),
		client.Backoff(time.Millisecond, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	sendN(t, c, 0, 5)
	if err := c.Close(closeCtx(t)); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Acked != 5 || st.Reconnects == 0 || conns.Load() < 2 {
		t.Fatalf("stats %+v after %d connections", st, conns.Load())
	}
}

// TestHandlerOwnLogsDoNotDeadlock: the client's logger is a Handler of the
// same client with Block and a full buffer; its reports of failures are
// dropped, not waited for, so the sender goes on and Close returns.
func TestHandlerOwnLogsDoNotDeadlock(t *testing.T) {
	s := servertest.RunServer(t, server.Options{AutoCreate: true})
	dead := "http://127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	var c *client.Client
	lazy := &lazyHandler{}
	c, err := client.New(dead, client.Failover("http://"+s.Addr()), client.Chronicle("c"), client.Story("selflog"),
		client.BufferSize(2), client.Backoff(time.Millisecond, 5*time.Millisecond), client.Logger(slog.New(lazy)))
	if err != nil {
		t.Fatal(err)
	}
	lazy.set(client.NewHandler(c, nil))
	sendN(t, c, 0, 2) // full: the sender's warning about the dead server finds no room
	done := make(chan error, 1)
	go func() { done <- c.Close(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close hangs: the sender is blocked logging into its own buffer")
	}
}

type lazyHandler struct {
	mu sync.Mutex
	h  slog.Handler
}

func (l *lazyHandler) set(h slog.Handler) { l.mu.Lock(); l.h = h; l.mu.Unlock() }
func (l *lazyHandler) get() slog.Handler {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.h == nil {
		return slog.DiscardHandler
	}
	return l.h
}
func (l *lazyHandler) Enabled(ctx context.Context, lv slog.Level) bool { return true }
func (l *lazyHandler) Handle(ctx context.Context, r slog.Record) error {
	return l.get().Handle(ctx, r)
}
func (l *lazyHandler) WithAttrs(as []slog.Attr) slog.Handler { return l }
func (l *lazyHandler) WithGroup(string) slog.Handler         { return l }

// TestHandlerPassesContext: Handle waits with the log call's context.
func TestHandlerPassesContext(t *testing.T) {
	dead := "http://127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	c, err := client.New(dead, client.BufferSize(1), client.Backoff(time.Hour, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		_ = c.Close(ctx)
	}()
	l := slog.New(client.NewHandler(c, nil))
	l.Info("fills the buffer")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() { l.InfoContext(ctx, "waits for room"); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("logging into a full buffer ignores the context of the call")
	}
}
