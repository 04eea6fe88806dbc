package forward_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/server"
)

// TestStalledMessageCut: a client that sends the start of a message and
// then nothing (slowloris) is cut after the stall timeout instead of
// holding its connection and buffer for ever; the whole messages it sent
// before are stored, the cut is counted. An idle connection between
// messages is not cut: Fluent Bit and Fluentd keep theirs open.
func TestStalledMessageCut(t *testing.T) {
	s := runServer(t, server.Options{Limits: ingest.Limits{BodyReadTimeout: 200 * time.Millisecond}})
	idle := dial(t, s.ForwardAddr())
	c := dial(t, s.ForwardAddr())
	c.send(packedMode("stall", "whole", 3))
	c.expectAck("whole")
	half := packedMode("stall", "half", 3)
	c.send(half[:len(half)/2])
	c.expectClosed()
	waitFor(t, s, "logs", "stall", 3)
	resp, err := http.Get("http://" + s.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `chronostream_ingest_errors_total{protocol="forward",reason="stalled_message"} 1`; !strings.Contains(string(b), want) {
		t.Errorf("/metrics lacks %s", want)
	}
	// Idle longer than the stall timeout (the cut above took it), then a
	// message: served.
	idle.send(messageMode("stall.idle", "later"))
	idle.expectAck("later")
}
