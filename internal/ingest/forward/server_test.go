package forward_test

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"
	"github.com/klauspost/compress/gzip"
	"github.com/tinylib/msgp/msgp"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/store"
	tu "github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

func runServer(t testing.TB, o server.Options) *server.Server {
	t.Helper()
	o.ForwardAddr = "127.0.0.1:0"
	o.AutoCreate = true
	return servertest.RunServer(t, o)
}

// read returns the events of a story.
func read(t testing.TB, s *server.Server, chronicle, story string) []event.Event {
	t.Helper()
	var out []event.Event
	_, err := s.Store().Read(context.Background(), store.Query{Chronicle: chronicle, Story: story}, func(e *event.Event) error {
		e.Body = bytes.Clone(e.Body)
		out = append(out, *e)
		return nil
	}, nil)
	if err != nil && !strings.Contains(err.Error(), "not found") {
		t.Fatal(err)
	}
	return out
}

func waitFor(t testing.TB, s *server.Server, chronicle, story string, n int) []event.Event {
	t.Helper()
	var evs []event.Event
	tu.Eventually(t, 30*time.Second, func() bool {
		evs = read(t, s, chronicle, story)
		return len(evs) >= n
	}, fmt.Sprintf("%d events in %s/%s", n, chronicle, story))
	if len(evs) != n {
		t.Fatalf("%s/%s: %d events, want %d", chronicle, story, len(evs), n)
	}
	return evs
}

func hostPort(t testing.TB, addr string) (string, int) {
	t.Helper()
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ta.IP.String(), ta.Port
}

// TestFluentLogger drives the server with fluent-logger-golang: plain
// Message mode, with sub-second EventTime, and with RequestAck (the chunk
// option, whose ack the client checks before Post returns).
func TestFluentLogger(t *testing.T) {
	s := runServer(t, server.Options{})
	host, port := hostPort(t, s.ForwardAddr())
	for _, tc := range []struct {
		name string
		cfg  fluent.Config
	}{
		{"plain", fluent.Config{}},
		{"subsecond", fluent.Config{SubSecondPrecision: true}},
		{"ack", fluent.Config{RequestAck: true, SubSecondPrecision: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.FluentHost, cfg.FluentPort, cfg.Timeout, cfg.ReadTimeout = host, port, 5*time.Second, 10*time.Second
			cfg.MaxRetry = 1
			l, err := fluent.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			base := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
			const n = 20
			for i := range n {
				rec := map[string]any{"msg": fmt.Sprintf("hello %d", i), "n": i, "ok": i%2 == 0,
					"nested": map[string]any{"a": []any{1, "x"}}}
				if err := l.PostWithTime("app."+tc.name, base.Add(time.Duration(i)*time.Second), rec); err != nil {
					t.Fatal(err)
				}
			}
			if cfg.RequestAck {
				// Acked: durable before Post returned, readable at once.
				if evs := read(t, s, "logs", "app.ack"); len(evs) != n {
					t.Fatalf("after acks: %d events, want %d", len(evs), n)
				}
			}
			l.Close()
			evs := waitFor(t, s, "logs", "app."+tc.name, n)
			for i, e := range evs {
				want := base.Add(time.Duration(i) * time.Second)
				if !cfg.SubSecondPrecision {
					want = want.Truncate(time.Second)
				}
				if e.Time != want.UnixNano() || e.Kind != event.KindLog || e.Format != event.FormatJSON {
					t.Errorf("event %d: time %v kind %v format %v", i, e.TimeValue(), e.Kind, e.Format)
				}
				var got map[string]any
				if err := json.Unmarshal(e.Body, &got); err != nil {
					t.Fatalf("body %q: %v", e.Body, err)
				}
				if got["msg"] != fmt.Sprintf("hello %d", i) || got["n"] != float64(i) || got["ok"] != (i%2 == 0) {
					t.Errorf("event %d: body %s", i, e.Body)
				}
				if !strings.Contains(string(e.Body), `"nested":{"a":[1,"x"]}`) {
					t.Errorf("event %d: body %s", i, e.Body)
				}
			}
			src, err := s.Store().GetSource(context.Background(), evs[0].Source)
			if err != nil || src.Protocol != "forward" || src.Chronicle != "logs" {
				t.Errorf("source %+v, %v", src, err)
			}
		})
	}
}

// Hand-built messages, after the examples of Fluent Bit's and Fluentd's
// documentation of the protocol.

func eventTime(b []byte, t time.Time) []byte {
	var d [8]byte
	u := t.UTC()
	d[0], d[1], d[2], d[3] = byte(u.Unix()>>24), byte(u.Unix()>>16), byte(u.Unix()>>8), byte(u.Unix())
	ns := u.Nanosecond()
	d[4], d[5], d[6], d[7] = byte(ns>>24), byte(ns>>16), byte(ns>>8), byte(ns)
	b = append(b, 0xd7, 0x00)
	return append(b, d[:]...)
}

func record(b []byte, i int) []byte {
	b = msgp.AppendMapHeader(b, 2)
	b = msgp.AppendString(b, "message")
	b = msgp.AppendString(b, fmt.Sprintf("line %d", i))
	b = msgp.AppendString(b, "raw")
	return msgp.AppendBytes(b, []byte{0xff, byte(i)})
}

func entries(n int, t0 time.Time) []byte {
	var b []byte
	for i := range n {
		b = msgp.AppendArrayHeader(b, 2)
		b = eventTime(b, t0.Add(time.Duration(i)*time.Millisecond))
		b = record(b, i)
	}
	return b
}

func options(b []byte, chunk string, size int, compressed string) []byte {
	n := 0
	for _, set := range []bool{chunk != "", size >= 0, compressed != ""} {
		if set {
			n++
		}
	}
	b = msgp.AppendMapHeader(b, uint32(n))
	if chunk != "" {
		b = msgp.AppendString(b, "chunk")
		b = msgp.AppendString(b, chunk)
	}
	if size >= 0 {
		b = msgp.AppendString(b, "size")
		b = msgp.AppendInt(b, size)
	}
	if compressed != "" {
		b = msgp.AppendString(b, "compressed")
		b = msgp.AppendString(b, compressed)
	}
	return b
}

var t0 = time.Date(2024, 1, 2, 3, 4, 5, 600000000, time.UTC)

// Messages of each mode holding n entries, the chunk option set.
func messageMode(tag, chunk string) []byte {
	b := msgp.AppendArrayHeader(nil, 4)
	b = msgp.AppendString(b, tag)
	b = eventTime(b, t0)
	b = record(b, 0)
	return options(b, chunk, -1, "")
}

func forwardMode(tag, chunk string, n int) []byte {
	b := msgp.AppendArrayHeader(nil, 3)
	b = msgp.AppendString(b, tag)
	b = msgp.AppendArrayHeader(b, uint32(n))
	b = append(b, entries(n, t0)...)
	return options(b, chunk, n, "")
}

func packedMode(tag, chunk string, n int) []byte {
	b := msgp.AppendArrayHeader(nil, 3)
	b = msgp.AppendString(b, tag)
	b = msgp.AppendBytes(b, entries(n, t0))
	return options(b, chunk, n, "")
}

func compressedMode(tag, chunk string, n int) []byte {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	half := entries(n, t0)
	// Two gzip members, as Fluentd appends compressed chunks.
	cut := len(entries(n/2, t0))
	zw.Write(half[:cut])
	zw.Close()
	zw = gzip.NewWriter(&z)
	zw.Write(half[cut:])
	zw.Close()
	b := msgp.AppendArrayHeader(nil, 3)
	b = msgp.AppendString(b, tag)
	b = msgp.AppendBytes(b, z.Bytes())
	return options(b, chunk, n, "gzip")
}

// client is a raw Forward client.
type client struct {
	t  testing.TB
	c  net.Conn
	rd *msgp.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, rd: msgp.NewReader(c)}
}

func (c *client) send(b []byte) {
	c.t.Helper()
	if _, err := c.c.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// readValue reads one msgpack value from the server.
func (c *client) readValue() (any, error) {
	_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	return c.rd.ReadIntf()
}

func (c *client) expectAck(chunk string) {
	c.t.Helper()
	v, err := c.readValue()
	if err != nil {
		c.t.Fatalf("waiting for the ack of %q: %v", chunk, err)
	}
	m, _ := v.(map[string]any)
	if m["ack"] != chunk {
		c.t.Fatalf("got %#v, want the ack of %q", v, chunk)
	}
}

// expectClosed checks that the server closed the connection.
func (c *client) expectClosed() {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c.c); err != nil && !strings.Contains(err.Error(), "reset") {
		c.t.Fatalf("connection not closed: %v", err)
	}
}

func TestModes(t *testing.T) {
	s := runServer(t, server.Options{})
	c := dial(t, s.ForwardAddr())
	for i, msg := range [][]byte{messageMode("mode.message", "c1"), forwardMode("mode.forward", "c2", 5),
		packedMode("mode.packed", "c3", 50), compressedMode("mode.compressed", "c4", 500)} {
		c.send(msg)
		c.expectAck(fmt.Sprintf("c%d", i+1))
	}
	for _, tc := range []struct {
		story string
		n     int
	}{{"mode.message", 1}, {"mode.forward", 5}, {"mode.packed", 50}, {"mode.compressed", 500}} {
		evs := read(t, s, "logs", tc.story) // acked: there already
		if len(evs) != tc.n {
			t.Fatalf("%s: %d events, want %d", tc.story, len(evs), tc.n)
		}
		for i, e := range evs {
			if want := t0.Add(time.Duration(i) * time.Millisecond).UnixNano(); e.Time != want {
				t.Errorf("%s %d: time %v", tc.story, i, e.TimeValue())
			}
			// bin 0xff… is not UTF-8: base64.
			want := fmt.Sprintf(`{"message":"line %d","raw":"%s"}`, i, b64([]byte{0xff, byte(i)}))
			if string(e.Body) != want {
				t.Errorf("%s %d: body %s, want %s", tc.story, i, e.Body, want)
			}
		}
	}
	// Without the chunk option: no ack, stored within the flush interval.
	b := msgp.AppendArrayHeader(nil, 3)
	b = msgp.AppendString(b, "noack")
	b = msgp.AppendInt64(b, t0.Unix())
	b = record(b, 7)
	c.send(b)
	c.send([]byte{0xc0}) // heartbeat
	evs := waitFor(t, s, "logs", "noack", 1)
	if evs[0].Time != t0.Truncate(time.Second).UnixNano() {
		t.Errorf("integer time: %v", evs[0].TimeValue())
	}
}

func TestTagChronicle(t *testing.T) {
	s := runServer(t, server.Options{ForwardTagChronicle: true, ForwardChronicle: "fluent"})
	c := dial(t, s.ForwardAddr())
	c.send(forwardMode("app.web.access", "a", 2))
	c.expectAck("a")
	c.send(forwardMode("plain", "b", 1))
	c.expectAck("b")
	waitFor(t, s, "app", "web.access", 2)
	waitFor(t, s, "fluent", "plain", 1)
}

func pingMsg(hostname, salt, key, user, pass string, nonce, authSalt []byte) []byte {
	hash := func(parts ...[]byte) string {
		h := sha512.New()
		for _, p := range parts {
			h.Write(p)
		}
		return hex.EncodeToString(h.Sum(nil))
	}
	b := msgp.AppendArrayHeader(nil, 6)
	b = msgp.AppendString(b, "PING")
	b = msgp.AppendString(b, hostname)
	b = msgp.AppendString(b, salt)
	b = msgp.AppendString(b, hash([]byte(salt), []byte(hostname), nonce, []byte(key)))
	b = msgp.AppendString(b, user)
	b = msgp.AppendString(b, hash(authSalt, []byte(user), []byte(pass)))
	return b
}

func (c *client) helo() (nonce, authSalt []byte) {
	c.t.Helper()
	v, err := c.readValue()
	if err != nil {
		c.t.Fatalf("HELO: %v", err)
	}
	a, _ := v.([]any)
	if len(a) != 2 || a[0] != "HELO" {
		c.t.Fatalf("HELO: got %#v", v)
	}
	opts, _ := a[1].(map[string]any)
	nonce, _ = opts["nonce"].([]byte)
	authSalt, _ = opts["auth"].([]byte)
	if len(nonce) == 0 || opts["keepalive"] != true {
		c.t.Fatalf("HELO options %#v", opts)
	}
	return nonce, authSalt
}

func (c *client) pong() []any {
	c.t.Helper()
	v, err := c.readValue()
	if err != nil {
		c.t.Fatalf("PONG: %v", err)
	}
	a, _ := v.([]any)
	if len(a) != 5 || a[0] != "PONG" {
		c.t.Fatalf("PONG: got %#v", v)
	}
	return a
}

func TestHandshake(t *testing.T) {
	const key = "s3cret"
	s := runServer(t, server.Options{ForwardSharedKey: key, ForwardUsername: "fluent", ForwardPassword: "pw"})

	t.Run("success", func(t *testing.T) {
		c := dial(t, s.ForwardAddr())
		nonce, authSalt := c.helo()
		if len(authSalt) == 0 {
			t.Fatal("HELO without an auth salt although a user is configured")
		}
		c.send(pingMsg("client-host", "salty", key, "fluent", "pw", nonce, authSalt))
		p := c.pong()
		if p[1] != true {
			t.Fatalf("PONG %#v", p)
		}
		// The server proves it knows the key too.
		h := sha512.Sum512([]byte("salty" + p[3].(string) + string(nonce) + key))
		if p[4] != hex.EncodeToString(h[:]) {
			t.Errorf("server digest %v", p[4])
		}
		c.send(forwardMode("authed", "k1", 3))
		c.expectAck("k1")
		evs := read(t, s, "logs", "authed")
		if len(evs) != 3 {
			t.Fatalf("%d events", len(evs))
		}
		src, err := s.Store().GetSource(context.Background(), evs[0].Source)
		if err != nil || src.Headers["Hostname"][0] != "client-host" {
			t.Errorf("source %+v %v", src, err)
		}
	})
	for _, tc := range []struct{ name, key, user, pass string }{
		{"wrong key", "nope", "fluent", "pw"},
		{"wrong password", key, "fluent", "nope"},
		{"wrong user", key, "other", "pw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, s.ForwardAddr())
			nonce, authSalt := c.helo()
			c.send(pingMsg("h", "salt", tc.key, tc.user, tc.pass, nonce, authSalt))
			p := c.pong()
			if p[1] != false || p[2] == "" {
				t.Fatalf("PONG %#v", p)
			}
			// No digest to a client that failed: with the salt and nonce
			// it knows, it would find the shared key offline.
			if p[3] != "" || p[4] != "" {
				t.Fatalf("failed PONG carries hostname %q and digest %q, want both empty", p[3], p[4])
			}
			c.expectClosed()
		})
	}
	t.Run("unauthenticated", func(t *testing.T) {
		c := dial(t, s.ForwardAddr())
		c.send(forwardMode("anon", "x", 1))
		c.helo()
		c.expectClosed()
		if evs := read(t, s, "logs", "anon"); len(evs) != 0 {
			t.Fatalf("an unauthenticated client stored %d events", len(evs))
		}
	})
	t.Run("fluent-logger without handshake", func(t *testing.T) {
		host, port := hostPort(t, s.ForwardAddr())
		l, err := fluent.New(fluent.Config{FluentHost: host, FluentPort: port, RequestAck: true, MaxRetry: 1,
			Timeout: 2 * time.Second, ReadTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := l.Post("anon2", map[string]string{"a": "b"}); err == nil {
			t.Fatal("Post acknowledged by a server that requires the handshake")
		}
	})
}

// TestMalformed: malformed msgpack closes the connection; what was acked
// before it is stored, and a new connection works.
func TestMalformed(t *testing.T) {
	s := runServer(t, server.Options{})
	for _, tc := range []struct {
		name string
		bad  []byte
	}{
		{"invalid byte", []byte{0xc1, 0x00}},
		{"not an array", msgp.AppendString(nil, "hello")},
		{"record not a map", func() []byte {
			b := msgp.AppendArrayHeader(nil, 3)
			b = msgp.AppendString(b, "bad")
			b = msgp.AppendInt64(b, 1)
			return msgp.AppendString(b, "not a map")
		}()},
		{"bad gzip", func() []byte {
			b := msgp.AppendArrayHeader(nil, 3)
			b = msgp.AppendString(b, "bad")
			b = msgp.AppendBytes(b, []byte("not gzip at all"))
			return options(b, "z", -1, "gzip")
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			story := "before." + strings.ReplaceAll(tc.name, " ", "_")
			c := dial(t, s.ForwardAddr())
			c.send(packedMode(story, "ok", 10))
			c.expectAck("ok")
			c.send(tc.bad)
			c.expectClosed()
			if evs := read(t, s, "logs", story); len(evs) != 10 {
				t.Fatalf("%d events, want 10", len(evs))
			}
			c2 := dial(t, s.ForwardAddr())
			c2.send(messageMode(story, "again"))
			c2.expectAck("again")
		})
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
