package server_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/connlimit"
	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

// TestHTTPConnectionCaps: the HTTP and Vivo listeners apply the per-IP
// cap: with two connections open from one address, a third is answered
// 503 with Retry-After and Connection: close (what an HTTP client retries,
// where a bare close reads as a network fault); the two keep serving, and
// the refusals are counted per listener on /metrics.
func TestHTTPConnectionCaps(t *testing.T) {
	s := servertest.RunServer(t, server.Options{VivoAddr: "127.0.0.1:0",
		HTTPConnLimits: connlimit.Limits{PerIP: 2}})
	held := map[string][]net.Conn{}
	for name, addr := range map[string]string{"http": s.Addr(), "vivo": s.VivoAddr()} {
		// Accepted in order, the two are the ones within the cap.
		for range 2 {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			held[name] = append(held[name], c)
		}
		hc := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
		resp, err := hc.Get("http://" + addr + "/health")
		if err != nil {
			t.Fatalf("%s: a connection over the cap: %v, want a 503", name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !resp.Close {
			t.Errorf("%s: over the per-IP cap: %s, Retry-After %q, close %v: %s", name, resp.Status, resp.Header.Get("Retry-After"), resp.Close, body)
		}
	}
	// The connections within the cap serve: /metrics is read through one.
	metrics := getOn(t, held["vivo"][0], "/logs") + getOn(t, held["http"][0], "/metrics")
	for _, l := range []string{"http", "vivo"} {
		want := `chronostream_tcp_connections_refused_total{listener="` + l + `",reason="max_connections_per_ip"} 1`
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// getOn sends GET path on the open connection c and returns the answer's
// body, failing unless it is a 200.
func getOn(t *testing.T, c net.Conn, path string) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: chronostream\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s on a connection within the cap: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s on a connection within the cap: %s: %s", path, resp.Status, b)
	}
	return string(b)
}
