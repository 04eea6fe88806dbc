package graphite

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/ingest"
)

// TestTCPStalledLineCut: a sender that starts a line and then sends
// nothing (slowloris) is cut after the stall timeout instead of holding
// its connection for ever; the whole lines before it are stored, the cut
// is counted. An idle connection between lines is kept: collectd and
// carbon relays hold theirs open.
func TestTCPStalledLineCut(t *testing.T) {
	f := newFixture(t, Config{Config: ingest.Config{Limits: ingest.Limits{BodyReadTimeout: 200 * time.Millisecond}}})
	dial := func() net.Conn {
		c, err := net.Dial("tcp", f.srv.TCPAddr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	idle := dial()
	c := dial()
	if _, err := io.WriteString(c, "stall.whole 1 1700000000\nstall.whole 2 1700000001\nstall.half 3"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("a connection whose line stopped arriving is still open")
	}
	f.waitFor(t, "stall.whole", 2)
	if n := f.errors(ReasonStalledLine); n != 1 {
		t.Errorf("%v stalled lines counted, want 1", n)
	}
	if _, err := io.WriteString(idle, "stall.idle 1 1700000000\n"); err != nil {
		t.Fatal(err)
	}
	f.waitFor(t, "stall.idle", 1)
}
