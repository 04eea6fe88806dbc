package forward_test

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"

	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/server"
)

// forwardErrors returns chronostream_ingest_errors_total of Forward for
// reason (0 when absent).
func forwardErrors(t testing.TB, s *server.Server, reason string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + s.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	re := regexp.MustCompile(`chronostream_ingest_errors_total\{protocol="forward",reason="` + reason + `"\} (\S+)`)
	m := re.FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRateRefusesChunksFluentLogger: fluent-logger-golang with RequestAck
// over its address's bytes/s. Each record is two seconds of the rate, so
// the next one finds its client in debt for longer than the rate wait: it
// is held, then refused — not stored, not acknowledged, the connection
// closed — and the client reconnects and resends it until the debt is
// paid (reconnecting does not reset it). Every Post returns acknowledged,
// and every record is stored exactly once: a refused chunk was never
// stored, so its resend is no duplicate. Holds and refusals are counted.
func TestRateRefusesChunksFluentLogger(t *testing.T) {
	const rate, n = 4000, 3
	s := runServer(t, server.Options{ForwardRate: auth.Limits{BytesPerSecond: rate}, ForwardRateWait: 100 * time.Millisecond})
	host, port := hostPort(t, s.ForwardAddr())
	l, err := fluent.New(fluent.Config{FluentHost: host, FluentPort: port, RequestAck: true,
		Timeout: 5 * time.Second, MaxRetry: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pad := strings.Repeat("x", 2*rate)
	for i := range n {
		if err := l.Post("rate.ack", map[string]any{"seq": i, "pad": pad}); err != nil {
			t.Fatalf("Post %d: %v", i, err)
		}
	}
	// Acknowledged: stored before Post returned.
	seen := map[float64]int{}
	for _, e := range read(t, s, "logs", "rate.ack") {
		var rec struct{ Seq float64 }
		if err := json.Unmarshal(e.Body, &rec); err != nil {
			t.Fatal(err)
		}
		seen[rec.Seq]++
	}
	for i := range n {
		if seen[float64(i)] != 1 {
			t.Errorf("record %d stored %d times, want once", i, seen[float64(i)])
		}
	}
	if len(seen) != n {
		t.Errorf("stored %v, want records 0..%d", seen, n-1)
	}
	if got := forwardErrors(t, s, "rate_limited"); got < 1 {
		t.Errorf("rate_limited counted %v times, want at least 1", got)
	}
	if got := forwardErrors(t, s, "rate_paused"); got < 1 {
		t.Errorf("rate_paused counted %v times, want at least 1", got)
	}
}

// TestRateHoldsUnackedMessages: messages without the chunk option are
// only held (a refusal would lose them without the client knowing): the
// connection stays open, everything is stored, nothing is refused. The
// events/s limit is charged on receipt, so a burst read at once is paced
// from its second message on.
func TestRateHoldsUnackedMessages(t *testing.T) {
	s := runServer(t, server.Options{ForwardRate: auth.Limits{EventsPerSecond: 100}, ForwardRateWait: time.Minute})
	c := dial(t, s.ForwardAddr())
	for range 3 {
		c.send(packedMode("rate.noack", "", 100))
	}
	c.send(messageMode("rate.noack", "last"))
	c.expectAck("last")
	waitFor(t, s, "logs", "rate.noack", 301)
	// 100 events admitted at the full burst, 100 more at a balance of 0,
	// then each message waits for the one before it.
	if got := forwardErrors(t, s, "rate_paused"); got < 2 {
		t.Errorf("rate_paused counted %v times, want at least 2", got)
	}
	if got := forwardErrors(t, s, "rate_limited"); got != 0 {
		t.Errorf("rate_limited counted %v times, want 0 (nothing asked for an ack beyond its wait)", got)
	}
}
