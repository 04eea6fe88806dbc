package testutil

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestStartNATSServerHasJetStream(t *testing.T) {
	url := StartNATSServer(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(); err != nil {
		t.Fatalf("JetStream is not enabled: %v", err)
	}
}

func TestReadyAddr(t *testing.T) {
	for line, want := range map[string]string{
		`time=2026-01-01T00:00:00Z level=INFO msg="chronostream ready" http=127.0.0.1:4318 data=./data`: "127.0.0.1:4318",
		`{"time":"x","level":"INFO","msg":"chronostream ready","http":"[::1]:9"}`:                       "[::1]:9",
		`level=INFO msg="chronostream ready"`:                                                           "",
	} {
		if got := readyAddr(line); got != want {
			t.Errorf("readyAddr(%q) = %q, want %q", line, got, want)
		}
	}
}

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, time.Minute, func() bool { n++; return n == 3 }, "counts to three")
}
