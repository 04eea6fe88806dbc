package connlimit

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// httpServer serves "ok" on a listener capped by WrapHTTP, over TLS if
// asked, and returns it with the counter of refusals.
func httpServer(t *testing.T, l Limits, useTLS bool) (*httptest.Server, *listener, *Metrics) {
	t.Helper()
	m := NewMetrics(prometheus.NewRegistry())
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	ln := WrapHTTP(s.Listener, l, m, "http", s.Config)
	s.Listener = ln
	if useTLS {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s, ln.(*listener), m
}

// client is one HTTP client with its own connection pool (keep-alive).
func client(s *httptest.Server) *http.Client {
	c := s.Client()
	tr := c.Transport.(*http.Transport).Clone()
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// TestHTTPOverCapAnswered503: a second connection from one address at
// PerIP 1 gets 503 with Retry-After and Connection: close, in plaintext
// and over TLS (the answer is written inside the handshake's session);
// the first connection keeps serving, and the refusal is counted.
func TestHTTPOverCapAnswered503(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		s, _, m := httpServer(t, Limits{PerIP: 1}, useTLS)
		first := client(s)
		get := func(c *http.Client) (*http.Response, string) {
			t.Helper()
			resp, err := c.Get(s.URL)
			if err != nil {
				t.Fatalf("tls %v: %v", useTLS, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp, string(b)
		}
		if resp, _ := get(first); resp.StatusCode != 200 {
			t.Fatalf("tls %v: first connection: %s", useTLS, resp.Status)
		}
		resp, body := get(client(s))
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" || !resp.Close ||
			!strings.Contains(body, "max_connections_per_ip") {
			t.Errorf("tls %v: over the per-IP cap: %s, Retry-After %q, close %v, %q", useTLS, resp.Status, resp.Header.Get("Retry-After"), resp.Close, body)
		}
		if resp, _ := get(first); resp.StatusCode != 200 {
			t.Errorf("tls %v: the first connection was disturbed: %s", useTLS, resp.Status)
		}
		if n := refusals(t, m, "max_connections_per_ip"); n != 1 {
			t.Errorf("tls %v: %v refusals counted, want 1", useTLS, n)
		}
	}
}

// TestHTTPAnswerBudget: once the connections being answered use the
// budget, one more over a cap is closed on accept (and still counted).
func TestHTTPAnswerBudget(t *testing.T) {
	s, l, m := httpServer(t, Limits{Max: 1}, false)
	l.mu.Lock()
	l.answers = 0
	l.mu.Unlock()
	first := client(s)
	resp, err := first.Get(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(resp.Body) // read whole, the connection stays open
	resp.Body.Close()
	if resp, err := client(s).Get(s.URL); err == nil {
		resp.Body.Close()
		t.Fatalf("over the cap with no answer budget: %s, want the connection closed", resp.Status)
	}
	if n := refusals(t, m, "max_connections"); n < 1 {
		t.Errorf("%v refusals counted", n)
	}
}

// TestRefusedDeadlineBounded: a server cannot extend a refused
// connection's life past answerTimeout, nor clear its deadline.
func TestRefusedDeadlineBounded(t *testing.T) {
	r := &refused{end: time.Now().Add(time.Second)}
	if got := r.bound(time.Time{}); !got.Equal(r.end) {
		t.Errorf("no deadline became %v, want the end", got)
	}
	if got := r.bound(r.end.Add(time.Hour)); !got.Equal(r.end) {
		t.Errorf("a later deadline became %v, want the end", got)
	}
	if early := r.end.Add(-time.Millisecond); !r.bound(early).Equal(early) {
		t.Error("an earlier deadline was not kept")
	}
}

// refusals is the count of the "http" listener's refusals for reason.
func refusals(t *testing.T, m *Metrics, reason string) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.refused.WithLabelValues("http", reason).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetCounter().GetValue()
}
