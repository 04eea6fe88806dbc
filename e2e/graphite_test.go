package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/testutil"
)

// peerBinary returns the path of a real sender installed from Debian, or
// skips the test outside CI when it is missing (.ci/run installs it).
func peerBinary(t testing.TB, name, pkg string, paths ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	if os.Getenv("CI") == "" {
		t.Skipf("%s is not installed (apt-get install %s); skipping outside CI", name, pkg)
	}
	t.Fatalf("%s is not installed, and CI is set: .ci/run must install %s", name, pkg)
	return ""
}

// trendlinesRows reads a metric through Trendlines' export.
func trendlinesRows(t testing.TB, base, metric string) []map[string]any {
	t.Helper()
	resp, err := client.Get(base + "/api/v1/data/" + url.PathEscape(metric))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == 404 {
		return nil
	}
	var ex struct {
		Rows []map[string]any `json:"rows"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ex); err != nil {
		t.Fatalf("export of %s: %v", metric, err)
	}
	return ex.Rows
}

func waitTrendlinesRows(t testing.TB, base, metric string, n int) []map[string]any {
	t.Helper()
	var rows []map[string]any
	testutil.Eventually(t, time.Minute, func() bool {
		rows = trendlinesRows(t, base, metric)
		return len(rows) >= n
	}, fmt.Sprintf("%d rows of %s", n, metric))
	if len(rows) != n {
		t.Fatalf("%s: %d rows, want %d: %v", metric, len(rows), n, rows)
	}
	return rows
}

// TestGraphiteWithNetcat sends Graphite plaintext with the real nc
// (netcat-openbsd), over TCP and UDP, to the built binary, and reads it
// back through Trendlines' API and the events API.
func TestGraphiteWithNetcat(t *testing.T) {
	nc := peerBinary(t, "nc", "netcat-openbsd", "/bin/nc")
	bin := testutil.BuildBinary(t)
	p := testutil.StartBinary(t, bin, "--data", t.TempDir(), "--graphite", "127.0.0.1:0")
	gaddr := p.GraphiteAddr()
	host, port, err := net.SplitHostPort(gaddr)
	if err != nil {
		t.Fatalf("ready line %q: graphite address %q: %v", p.ReadyLine, gaddr, err)
	}

	// TCP: many lines, a bad one in the middle, a tagged series, CRLF, and
	// a last line without a newline. -N: shut the socket down at EOF.
	lines := "nc.tcp.load 0.25 1700000000\n" +
		"nc.tcp.load 0.5 1700000001\r\n" +
		"nc.tcp.load oops 1700000002\n" +
		"nc.tagged;host=h1;dc=x 9 1700000003\n" +
		"nc.tcp.load 0.75 1700000004"
	cmd := exec.Command(nc, "-N", host, port)
	cmd.Stdin = strings.NewReader(lines)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nc: %v: %s", err, out)
	}
	rows := waitTrendlinesRows(t, p.URL(), "nc.tcp.load", 3)
	for i, want := range []float64{0.25, 0.5, 0.75} {
		if rows[i]["value"] != want {
			t.Errorf("row %d: %v, want %v", i, rows[i], want)
		}
	}
	var evs []readEvent
	testutil.Eventually(t, time.Minute, func() bool {
		evs = readStory(t, p.URL(), "metrics", "nc.tagged")
		return len(evs) == 1
	}, "the tagged series")
	if e := evs[0]; e.Tags["host"] != "h1" || e.Tags["dc"] != "x" || e.Fields["value"] != 9.0 || e.Kind != "metric" ||
		string(e.Body) != `"nc.tagged;host=h1;dc=x 9 1700000003"` {
		t.Errorf("tagged event %+v body %s", e, e.Body)
	}

	// UDP: one datagram of many lines. -w1: give up after a second.
	cmd = exec.Command(nc, "-u", "-w1", host, port)
	cmd.Stdin = strings.NewReader("nc.udp 1 1700000000\nnc.udp 2 1700000001\nnc.udp\nnc.udp 3 1700000002\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nc -u: %v: %s", err, out)
	}
	waitTrendlinesRows(t, p.URL(), "nc.udp", 3)

	// The bad lines are counted by reason on /metrics.
	resp, err := client.Get(p.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var m bytes.Buffer
	_, _ = m.ReadFrom(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`chronostream_ingest_errors_total{protocol="graphite",reason="invalid_value"} 1`,
		`chronostream_ingest_errors_total{protocol="graphite",reason="invalid_line"} 1`,
	} {
		if !strings.Contains(m.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestGraphiteShutdownFlushes: lines a sender wrote just before SIGTERM,
// on a connection it keeps open, are in the log after a restart.
func TestGraphiteShutdownFlushes(t *testing.T) {
	bin := testutil.BuildBinary(t)
	data := t.TempDir()
	p := testutil.StartBinary(t, bin, "--data", data, "--graphite", "127.0.0.1:0")
	c, err := net.Dial("tcp", p.GraphiteAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var b strings.Builder
	const n = 2000
	for i := range n {
		fmt.Fprintf(&b, "sd.load %d %d\n", i, 1700000000+i)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // delivered to the server's socket
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	q := testutil.StartBinary(t, bin, "--data", data)
	if got := len(trendlinesRows(t, q.URL(), "sd.load")); got != n {
		t.Fatalf("%d of %d lines stored after a graceful shutdown", got, n)
	}
}

// TestGraphiteWithCollectd runs Debian's collectd with write_graphite
// pointed at the server, one-second interval, and waits for its load
// metrics to arrive.
func TestGraphiteWithCollectd(t *testing.T) {
	collectd := peerBinary(t, "collectd", "collectd-core", "/usr/sbin/collectd")
	bin := testutil.BuildBinary(t)
	p := testutil.StartBinary(t, bin, "--data", t.TempDir(), "--graphite", "127.0.0.1:0")
	host, port, _ := net.SplitHostPort(p.GraphiteAddr())
	dir := t.TempDir()
	conf := filepath.Join(dir, "collectd.conf")
	writeConfig(t, conf, fmt.Sprintf(`Hostname "e2ehost"
FQDNLookup false
BaseDir %q
PIDFile %q
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
Interval 1
LoadPlugin load
LoadPlugin write_graphite
<Plugin write_graphite>
  <Node "chronostream">
    Host %q
    Port %q
    Protocol "tcp"
    Prefix "collectd."
    StoreRates true
    EscapeCharacter "_"
  </Node>
</Plugin>
`, dir, filepath.Join(dir, "collectd.pid"), host, port))
	cmd := exec.Command(collectd, "-f", "-C", conf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("collectd output:\n%s", out.String())
		}
	})
	const metric = "collectd.e2ehost.load.load.shortterm"
	testutil.Eventually(t, time.Minute, func() bool { return len(trendlinesRows(t, p.URL(), metric)) >= 2 },
		"two load samples from collectd")
	rows := trendlinesRows(t, p.URL(), metric)
	for _, r := range rows {
		if v, ok := r["value"].(float64); !ok || v < 0 {
			t.Errorf("row %v: a load average is a non-negative number", r)
		}
	}
	// The listing holds collectd's three load series.
	resp, err := client.Get(p.URL() + "/api/v1/metric")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Results []struct {
			Name string `json:"name"`
		} `json:"results"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range list.Results {
		names = append(names, r.Name)
	}
	for _, want := range []string{"collectd.e2ehost.load.load.shortterm", "collectd.e2ehost.load.load.midterm", "collectd.e2ehost.load.load.longterm"} {
		if !slices.Contains(names, want) {
			t.Errorf("listing %v lacks %s", names, want)
		}
	}
}
