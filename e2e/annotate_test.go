package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/sink/grafana/grafanatest"
	"github.com/chronostream/chronostream/internal/sink/webhook"
	"github.com/chronostream/chronostream/internal/testutil"
)

// webhookReceiver verifies each delivery's signature and records the seqs
// it received, every time they arrive.
type webhookReceiver struct {
	secret string
	mu     sync.Mutex
	seqs   map[uint64]int
	bad    []string
}

func (rc *webhookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if r.Header.Get(webhook.HeaderSignature) != webhook.Sign(rc.secret, body) || r.Header.Get(webhook.HeaderDelivery) == "" {
		rc.bad = append(rc.bad, r.Header.Get(webhook.HeaderDelivery))
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var e struct {
			Seq uint64 `json:"seq"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			http.Error(w, "bad line", http.StatusBadRequest)
			return
		}
		rc.seqs[e.Seq]++
	}
	w.WriteHeader(http.StatusOK)
}

func (rc *webhookReceiver) received() (distinct int, bad []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.seqs), append([]string(nil), rc.bad...)
}

// TestAnnotateRegionAcrossKill9: a server with a grafana and a webhook
// sink in its config file; `chronostream annotate` opens a region, the
// server is killed (-9) before the region ends and started again, the
// region is closed: Grafana (grafanatest, written to Grafana's documented
// API, as Grafana cannot run here) holds one region annotation from the
// start to the end, and the webhook got every event.
func TestAnnotateRegionAcrossKill9(t *testing.T) {
	bin := testutil.BuildBinary(t)
	g := &grafanatest.Server{Token: "grafana-token"}
	gs := grafanatest.Start(t, g, false)
	host, port, _ := net.SplitHostPort(gs.Listener.Addr().String())
	rc := &webhookReceiver{secret: "hook-secret", seqs: map[uint64]int{}}
	ws := httptest.NewServer(rc)
	t.Cleanup(ws.Close)

	dir := t.TempDir()
	cfg := filepath.Join(dir, "chronostream.yaml")
	yaml := fmt.Sprintf(`token: [api-token]
sinks:
  - name: grafana
    type: grafana
    chronicle: prod
    kinds: [annotation]
    batch_age: 20ms
    settings:
      servers:
        - host: %s
          port: %s
          api_token: grafana-token
          dashboard_uid: chaos
          tags: [chronostream]
  - name: hook
    type: webhook
    chronicle: prod
    batch_age: 20ms
    settings:
      url: %s/hook
      secret: hook-secret
      gzip: false
`, host, port, ws.URL)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	annotate := func(server string, args ...string) {
		t.Helper()
		p := testutil.StartProc(t, bin, testutil.ProcOptions{NoWaitReady: true,
			Args: append([]string{"annotate", "--server", server, "-r", "prod"}, args...),
			Env:  []string{"CHRONOSTREAM_TOKEN=api-token"}})
		if code := p.Wait(); code != 0 {
			t.Fatalf("annotate %v: exit %d\n%s", args, code, p.Stderr())
		}
		if !strings.Contains(p.Stdout(), "stored in prod/annotations") {
			t.Fatalf("annotate %v: stdout %q", args, p.Stdout())
		}
	}

	srv := testutil.StartBinary(t, bin, "--data", data, "--config", cfg)
	annotate(srv.URL(), "--start", "exp-7", "--activity", "action", "--tag", "team=sre", "terminate one replica")
	testutil.Eventually(t, 30*time.Second, func() bool { return len(g.Annotations()) == 1 }, "the region's start reaches Grafana")

	srv.Kill9()
	srv = testutil.StartBinary(t, bin, "--data", data, "--config", cfg)
	annotate(srv.URL(), "--end", "exp-7")
	// The bound covers the restarted node taking over the dead one's sink
	// lease (sink.DefaultLeaseTTL, 15 s) on a loaded machine.
	testutil.Eventually(t, 90*time.Second, func() bool {
		a := g.Annotations()
		return len(a) == 1 && a[0].TimeEnd > a[0].Time
	}, "the region is closed after the restart")
	testutil.Eventually(t, 90*time.Second, func() bool { n, _ := rc.received(); return n == 2 }, "the webhook got both events")

	a := g.Annotations()
	if len(a) != 1 || a[0].DashboardUID != "chaos" || a[0].Text != "terminate one replica" ||
		!containsTag(a[0].Tags, "region:exp-7") || !containsTag(a[0].Tags, "team:sre") || !containsTag(a[0].Tags, "chronostream") {
		t.Errorf("Grafana holds %+v, want one region annotation", a)
	}
	if _, bad := rc.received(); len(bad) > 0 {
		t.Errorf("deliveries with a bad signature: %q", bad)
	}
}

func containsTag(tags []string, want string) bool {
	for _, t := range tags {
		if t == want {
			return true
		}
	}
	return false
}
