package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/canary"
	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

func TestCanaryUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--rate", "fast"},
		{"--rate", "10/d"},
		{"--protocols", "ndjson,carrier-pigeon"},
		{"--server", "127.0.0.1:4318"},
		{"extra"},
		{"--summary", "xml"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), append([]string{"canary"}, args...), nil, &out, &errb); code != exitUsage {
			t.Errorf("canary %v: exit %d, want %d; stderr %s", args, code, exitUsage, errb.String())
		}
	}
	var r rate
	if err := r.Set("6000/m"); err != nil || float64(r) != 100 {
		t.Errorf("6000/m = %v, %v; want 100/s", float64(r), err)
	}
}

// TestCanaryCommand runs the command against a real server: exit 0, a JSON
// summary on stdout, and the metrics served on --metrics-listen while it runs.
func TestCanaryCommand(t *testing.T) {
	s := servertest.RunServer(t, server.Options{AutoCreate: true})
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"canary", "--server", "http://" + s.Addr(), "--protocols", "ndjson",
			"--protocols", "lineproto", "--rate", "20/s", "--duration", "2s", "--sweep", "300ms",
			"--metrics-listen", metricsAddr, "--summary", "json"}, []string{"CHRONOSTREAM_CHRONICLE=cli-canary"}, &out, &errb)
	}()
	var metrics string
	testutil.Eventually(t, 30*time.Second, func() bool {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		metrics = string(b)
		return strings.Contains(metrics, `chronostream_canary_acked_total{protocol="lineproto"}`)
	}, "canary metrics on --metrics-listen")
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, errb.String())
	}
	var sum canary.Summary
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("summary %q: %v", out.String(), err)
	}
	for _, p := range []string{"ndjson", "lineproto"} {
		n := sum.Protocols[p]
		if n.Sent == 0 || n.Acked != n.Sent || n.ReadSeen != n.Sent || n.Missing != 0 {
			t.Errorf("%s: %+v", p, n)
		}
	}
	if len(sum.Protocols) != 2 {
		t.Errorf("protocols %v, want ndjson and lineproto", sum.Protocols)
	}
	// The environment named the chronicle.
	resp, err := http.Get("http://" + s.Addr() + "/api/v1/chronicles/cli-canary/stories/ndjson/events?limit=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("chronicle cli-canary: %s", resp.Status)
	}
}
