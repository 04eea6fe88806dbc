package graphite

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/obs"
	"github.com/chronostream/chronostream/internal/store"
	tu "github.com/chronostream/chronostream/internal/testutil"
)

const chronicle = "metrics"

type fixture struct {
	srv     *Server
	store   *store.Store
	metrics *obs.Metrics
}

func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	st := tu.OpenStore(t, store.Options{})
	m := obs.New()
	cfg.Config = ingest.Config{Log: st, Metrics: m, Logger: tu.Logger(t, 0), DefaultChronicle: chronicle, Limits: cfg.Limits}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	f := &fixture{srv: s, store: st, metrics: m}
	t.Cleanup(func() { f.shutdown(t) })
	return f
}

func (f *fixture) shutdown(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// read returns the events of a story (nil when the chronicle is not there yet).
func (f *fixture) read(t testing.TB, story string) []event.Event {
	t.Helper()
	var out []event.Event
	_, err := f.store.Read(context.Background(), store.Query{Chronicle: chronicle, Story: story}, func(e *event.Event) error {
		out = append(out, *e)
		return nil
	}, nil)
	if err != nil && !strings.Contains(err.Error(), "not found") {
		t.Fatal(err)
	}
	return out
}

func (f *fixture) waitFor(t testing.TB, story string, n int) []event.Event {
	t.Helper()
	var evs []event.Event
	tu.Eventually(t, 30*time.Second, func() bool {
		evs = f.read(t, story)
		return len(evs) >= n
	}, fmt.Sprintf("%d events in story %q", n, story))
	if len(evs) != n {
		t.Fatalf("story %q: %d events, want %d", story, len(evs), n)
	}
	return evs
}

func (f *fixture) errors(reason string) float64 {
	var m dto.Metric
	if err := f.metrics.IngestErrors.WithLabelValues(MetricProtocol, reason).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func value(e event.Event) float64 { return e.Fields["value"].FloatValue() }

func TestTCPLinesBadLineAndTags(t *testing.T) {
	f := newFixture(t, Config{})
	c, err := net.Dial("tcp", f.srv.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Many lines in one write, a bad one in the middle, CRLF, a blank line.
	_, err = c.Write([]byte("tcp.a 1 1700000001\n" +
		"tcp.a 2 1700000002\r\n" +
		"tcp.a not-a-number 1700000003\n" +
		"\n" +
		"tcp.a 4 1700000004.25\n" +
		"tcp.tagged;host=web01;dc=eu 5 1700000005\n"))
	if err != nil {
		t.Fatal(err)
	}
	evs := f.waitFor(t, "tcp.a", 3)
	for i, want := range []struct {
		v    float64
		t    int64
		body string
	}{{1, 1700000001e9, "tcp.a 1 1700000001"}, {2, 1700000002e9, "tcp.a 2 1700000002"}, {4, 1700000004250000000, "tcp.a 4 1700000004.25"}} {
		e := evs[i]
		if value(e) != want.v || e.Time != want.t || string(e.Body) != want.body || e.Kind != event.KindMetric || e.Format != event.FormatRaw {
			t.Errorf("event %d: value %v time %d body %q kind %v format %v; want %v %d %q", i, value(e), e.Time, e.Body, e.Kind, e.Format, want.v, want.t, want.body)
		}
	}
	tagged := f.waitFor(t, "tcp.tagged", 1)[0]
	if tagged.Tags["host"] != "web01" || tagged.Tags["dc"] != "eu" || len(tagged.Tags) != 2 || value(tagged) != 5 {
		t.Errorf("tagged event: tags %v value %v", tagged.Tags, value(tagged))
	}
	if got := f.errors(ReasonInvalidValue); got != 1 {
		t.Errorf("invalid_value errors = %v, want 1", got)
	}

	// The connection stayed open: more lines on it are stored too, without
	// closing it (the flush interval appends them).
	if _, err := c.Write([]byte("tcp.a 6\n")); err != nil {
		t.Fatal(err)
	}
	evs = f.waitFor(t, "tcp.a", 4)
	if value(evs[3]) != 6 || evs[3].Time < time.Now().Add(-time.Minute).UnixNano() {
		t.Errorf("a line without timestamp: value %v time %v", value(evs[3]), evs[3].TimeValue())
	}

	// The source names the connection's client: its host.
	src, err := f.store.GetSource(context.Background(), evs[0].Source)
	if err != nil {
		t.Fatal(err)
	}
	host, _, _ := net.SplitHostPort(c.LocalAddr().String())
	if src.Protocol != ProtocolTCP || src.Remote != host || src.Chronicle != chronicle {
		t.Errorf("source %+v", src)
	}
}

func TestTCPLastLineWithoutNewlineAndLongLine(t *testing.T) {
	f := newFixture(t, Config{MaxLineBytes: 100})
	c, err := net.Dial("tcp", f.srv.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	long := "tcp.long " + strings.Repeat("9", 5000) + " 1700000000"
	// Written in pieces so the long line spans reads.
	for _, part := range []string{"long.b 1 1700000001\n", long[:3000], long[3000:] + "\n", "long.b 2 1700000002\n", "long.b 3 1700000003"} {
		if _, err := c.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.Close()
	evs := f.waitFor(t, "long.b", 3)
	for i, e := range evs {
		if value(e) != float64(i+1) {
			t.Errorf("event %d: value %v", i, value(e))
		}
	}
	if got := f.errors(ReasonLineTooLong); got != 1 {
		t.Errorf("line_too_long errors = %v, want 1", got)
	}
	if evs := f.read(t, "tcp.long"); len(evs) != 0 {
		t.Errorf("a part of the long line was stored: %d events", len(evs))
	}
	// The client's source counts the connection and its lines once it ends.
	tu.Eventually(t, 10*time.Second, func() bool {
		src, err := f.store.GetSource(context.Background(), evs[0].Source)
		return err == nil && src.Count == 3 && src.Requests == 1 && !src.End.IsZero()
	}, "the source's final count")
}

func TestUDPDatagrams(t *testing.T) {
	f := newFixture(t, Config{})
	if f.srv.UDPAddr() != f.srv.TCPAddr() {
		t.Errorf("UDP on %s, TCP on %s: want one port", f.srv.UDPAddr(), f.srv.TCPAddr())
	}
	c, err := net.Dial("udp", f.srv.UDPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, d := range []string{
		"udp.a 1 1700000001\nudp.a 2 1700000002\r\nudp.a\nudp.a 3 1700000003", // no final newline
		"udp.a 4 1700000004\nudp.a;k=v 5 1700000005\n",
	} {
		if _, err := c.Write([]byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	evs := f.waitFor(t, "udp.a", 5)
	for i, e := range evs {
		if value(e) != float64(i+1) {
			t.Errorf("event %d: value %v", i, value(e))
		}
	}
	if evs[4].Tags["k"] != "v" {
		t.Errorf("tags %v", evs[4].Tags)
	}
	if f.errors(ReasonInvalidLine) != 1 {
		t.Errorf("invalid_line errors = %v, want 1", f.errors(ReasonInvalidLine))
	}
	src, err := f.store.GetSource(context.Background(), evs[0].Source)
	if err != nil || src.Protocol != ProtocolUDP {
		t.Errorf("source %+v, %v", src, err)
	}
}

func TestManyConnections(t *testing.T) {
	f := newFixture(t, Config{})
	const conns, lines = 8, 500
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			c, err := net.Dial("tcp", f.srv.TCPAddr())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			var b strings.Builder
			for j := range lines {
				fmt.Fprintf(&b, "many.%d %d %d\n", i, j, 1700000000+j)
			}
			if _, err := c.Write([]byte(b.String())); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range conns {
		evs := f.waitFor(t, fmt.Sprintf("many.%d", i), lines)
		for j, e := range evs {
			if value(e) != float64(j) {
				t.Fatalf("many.%d event %d: value %v (out of order?)", i, j, value(e))
			}
		}
	}
}

// TestShutdownFlushes: lines received but not yet appended (the flush
// interval is long), or not even read yet, are appended by Shutdown, from
// open connections too.
func TestShutdownFlushes(t *testing.T) {
	f := newFixture(t, Config{FlushInterval: time.Hour})
	c, err := net.Dial("tcp", f.srv.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	u, err := net.Dial("udp", f.srv.UDPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := c.Write([]byte("sd.tcp 1\nsd.tcp 2\nsd.tcp 3 17000")); err != nil { // the last line is cut off
		t.Fatal(err)
	}
	if _, err := u.Write([]byte("sd.udp 1\nsd.udp 2\n")); err != nil {
		t.Fatal(err)
	}
	// No waiting for the server to read them: Shutdown takes the
	// connection from the backlog if need be and drains both sockets.
	f.shutdown(t)
	if n := len(f.read(t, "sd.tcp")); n != 2 {
		t.Errorf("sd.tcp: %d events after shutdown, want 2", n)
	}
	if n := len(f.read(t, "sd.udp")); n != 2 {
		t.Errorf("sd.udp: %d events after shutdown, want 2", n)
	}
	if got := f.errors(ReasonIncompleteLine); got != 1 {
		t.Errorf("incomplete_line errors = %v, want 1", got)
	}
	// The connection is closed by the server.
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the connection is still open after shutdown")
	}
}
