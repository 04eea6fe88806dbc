package client_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/client"
	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// storedIs reads a story through the API and returns the "i" member of each
// event's body, in log order, with the event's source and stream index.
func storedIs(t testing.TB, base, chronicle, story string) (is []int, sources []string) {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/chronicles/" + url.PathEscape(chronicle) + "/stories/" + url.PathEscape(story) + "/events?format=ndjson")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if resp.StatusCode != 200 {
		t.Fatalf("export: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			Body   struct{ I int }
			Source string
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("%v: %s", err, sc.Bytes())
		}
		is = append(is, ev.Body.I)
		sources = append(sources, ev.Source)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return is, sources
}

// wantExactlyOnce fails unless is is 0, 1, …, n-1.
func wantExactlyOnce(t testing.TB, is []int, n int) {
	t.Helper()
	seen := make(map[int]int)
	for _, i := range is {
		seen[i]++
	}
	var missing, dup []int
	for i := range n {
		switch seen[i] {
		case 0:
			missing = append(missing, i)
		case 1:
		default:
			dup = append(dup, i)
		}
	}
	if len(missing) > 0 || len(dup) > 0 || len(is) != n {
		t.Fatalf("stored %d events for %d sent: %d missing (first %v), %d duplicated (first %v)",
			len(is), n, len(missing), head(missing), len(dup), head(dup))
	}
	for k, i := range is {
		if i != k {
			t.Fatalf("event %d is {\"i\":%d}: out of order", k, i)
		}
	}
}

func head(s []int) []int { return s[:min(len(s), 5)] }

func schemes(base string) map[string]string {
	return map[string]string{"ws": "ws" + strings.TrimPrefix(base, "http"), "http": base}
}

func sendN(t testing.TB, c *client.Client, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := c.Send(context.Background(), []byte(fmt.Sprintf(`{"i":%d}`, i))); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSendAndClose: Close flushes everything sent, over each transport, and
// every event is stored once with the client's stream as its source.
func TestSendAndClose(t *testing.T) {
	s := servertest.RunServer(t, server.Options{AutoCreate: true})
	base := "http://" + s.Addr()
	for name, u := range schemes(base) {
		t.Run(name, func(t *testing.T) {
			c, err := client.New(u, client.Chronicle("c"), client.Story(name), client.Batch(100, time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			sendN(t, c, 0, 1000)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := c.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if err := c.Send(ctx, []byte(`{}`)); !errors.Is(err, client.ErrClosed) {
				t.Fatalf("Send after Close: %v", err)
			}
			st := c.Stats()
			if st.Acked != 1000 || st.Buffered != 0 || st.Accepted != 1000 {
				t.Fatalf("stats %+v", st)
			}
			is, srcs := storedIs(t, base, "c", name)
			wantExactlyOnce(t, is, 1000)
			if srcs[0] != c.StreamID() {
				t.Fatalf("source %q, want the stream id %q", srcs[0], c.StreamID())
			}
		})
	}
}

// TestFlush: Flush returns once what was sent before it is durable, without
// waiting for the batch to fill or linger.
func TestFlush(t *testing.T) {
	s := servertest.RunServer(t, server.Options{AutoCreate: true})
	base := "http://" + s.Addr()
	for name, u := range schemes(base) {
		t.Run(name, func(t *testing.T) {
			c, err := client.New(u, client.Chronicle("c"), client.Story("flush-"+name), client.Batch(1000, time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			sendN(t, c, 0, 10)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := c.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			is, _ := storedIs(t, base, "c", "flush-"+name)
			wantExactlyOnce(t, is, 10)
		})
	}
}

// TestOverflow: with the server away, each policy does what it says and
// counts its drops; Block waits until its context ends.
func TestOverflow(t *testing.T) {
	dead := "http://127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	ctx := context.Background()
	for _, tc := range []struct {
		policy              client.Overflow
		oldest, newest      uint64
		errFromFull         error
		buffered, sendCalls int
	}{
		{client.DropNewest, 0, 3, client.ErrBufferFull, 4, 7},
		{client.DropOldest, 3, 0, nil, 4, 7},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			// No linger ends while the test sends: no event is in flight,
			// so DropOldest has unsent events to drop.
			c, err := client.New(dead, client.BufferSize(4), client.OverflowPolicy(tc.policy), client.Backoff(time.Hour, time.Hour),
				client.Batch(1000, time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			for i := range tc.sendCalls {
				err := c.Send(ctx, []byte(fmt.Sprintf(`{"i":%d}`, i)))
				if i >= 4 && !errors.Is(err, tc.errFromFull) || i < 4 && err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
			st := c.Stats()
			if st.DroppedOldest != tc.oldest || st.DroppedNewest != tc.newest || st.Buffered != tc.buffered {
				t.Fatalf("stats %+v", st)
			}
			cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			if err := c.Close(cctx); err == nil || !strings.Contains(err.Error(), "4 events unacknowledged") {
				t.Fatalf("Close with the server away: %v", err)
			}
		})
	}
	t.Run("block", func(t *testing.T) {
		c, err := client.New(dead, client.BufferSize(2), client.Backoff(time.Hour, time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
			defer cancel()
			_ = c.Close(cctx)
		}()
		sendN(t, c, 0, 2)
		sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if err := c.Send(sctx, []byte(`{"i":2}`)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send into a full buffer: %v, want it to block until its context ends", err)
		}
		if st := c.Stats(); st.DroppedNewest+st.DroppedOldest != 0 || st.Buffered != 2 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// TestBlockResumesWhenServerAcks: with Block, a small buffer only slows
// Send down; acknowledgements make room and nothing is lost.
func TestBlockResumesWhenServerAcks(t *testing.T) {
	s := servertest.RunServer(t, server.Options{AutoCreate: true})
	c, err := client.New("ws://"+s.Addr(), client.Chronicle("c"), client.Story("block"), client.BufferSize(8))
	if err != nil {
		t.Fatal(err)
	}
	sendN(t, c, 0, 2000) // far more than the buffer: Send blocks and resumes
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	is, _ := storedIs(t, "http://"+s.Addr(), "c", "block")
	wantExactlyOnce(t, is, 2000)
}

func TestInvalidJSON(t *testing.T) {
	c, err := client.New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if err := c.Send(context.Background(), []byte("not json")); !errors.Is(err, client.ErrInvalidJSON) {
		t.Fatalf("got %v", err)
	}
	if _, err := client.New("ftp://x"); err == nil {
		t.Fatal("ftp:// accepted")
	}
}

// TestExactlyOnceAcrossKill9: the server is killed (SIGKILL) while a client
// streams, and restarted on the same data and port; every event is in the
// story exactly once and in order, over each transport.
func TestExactlyOnceAcrossKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and restarts the binary")
	}
	bin := testutil.BuildBinary(t)
	for _, name := range []string{"ws", "http"} {
		t.Run(name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			addr := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
			p := testutil.StartBinary(t, bin, "--data", data, "--http", addr)
			base := p.URL()
			u := schemes(base)[name]
			const n = 30000
			c, err := client.New(u, client.Chronicle("c"), client.Story("kill"), client.BufferSize(2000),
				client.Batch(500, 5*time.Millisecond), client.Backoff(20*time.Millisecond, 200*time.Millisecond),
				client.Logger(testutil.Logger(t, 0)))
			if err != nil {
				t.Fatal(err)
			}
			sent := make(chan struct{})
			go func() {
				defer close(sent)
				for i := range n {
					if err := c.Send(context.Background(), []byte(fmt.Sprintf(`{"i":%d}`, i))); err != nil {
						t.Error(err)
						return
					}
				}
			}()
			for _, kill := range []uint64{n / 5, n / 2} {
				testutil.Eventually(t, time.Minute, func() bool { return c.Stats().Acked >= kill }, "acknowledgements before the kill")
				p.Kill9()
				p = testutil.StartBinary(t, bin, "--data", data, "--http", addr)
			}
			<-sent
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := c.Close(ctx); err != nil {
				t.Fatal(err)
			}
			st := c.Stats()
			t.Logf("stats: %+v", st)
			if st.Reconnects == 0 {
				t.Error("no reconnection: the kill did not interrupt the stream")
			}
			is, _ := storedIs(t, base, "c", "kill")
			wantExactlyOnce(t, is, n)
		})
	}
}
