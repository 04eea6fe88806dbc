package query_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

// TestInfluxCLIQueries drives InfluxDB 1.x's own influx CLI (Debian package
// influxdb-client) against /query: it connects (it pings and runs SHOW
// DATABASES-style statements), creates a database, writes and queries in
// its JSON and column formats, with token credentials as u/p.
func TestInfluxCLIQueries(t *testing.T) {
	bin, err := exec.LookPath("influx")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("the influx CLI (Debian package influxdb-client) is required in CI")
		}
		t.Skip("influx CLI not installed (apt-get install influxdb-client)")
	}
	s := servertest.RunServer(t, server.Options{AutoCreate: true, Tokens: []string{"tok"}})
	host, port, _ := strings.Cut(s.Addr(), ":")
	run := func(args ...string) string {
		t.Helper()
		args = append([]string{"-host", host, "-port", port, "-username", "grafana", "-password", "tok"}, args...)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("influx %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("-execute", "CREATE DATABASE clidb")
	run("-database", "clidb", "-execute", "INSERT cpu,host=a v=1 60000000000")
	run("-database", "clidb", "-execute", "INSERT cpu,host=b v=3 60000000000")
	if got, want := run("-execute", "SHOW DATABASES", "-format", "json"),
		`{"results":[{"series":[{"name":"databases","columns":["name"],"values":[["clidb"]]}]}]}`; got != want {
		t.Errorf("SHOW DATABASES:\n got %s\nwant %s", got, want)
	}
	got := run("-database", "clidb", "-precision", "s", "-format", "json",
		"-execute", "SELECT mean(v) FROM cpu GROUP BY host; SHOW TAG KEYS")
	// The CLI asks for chunked answers: one series a chunk, as influxd sends them.
	want := `{"results":[{"series":[{"name":"cpu","tags":{"host":"a"},"columns":["time","mean"],"values":[[0,1]]}]},` +
		`{"series":[{"name":"cpu","tags":{"host":"b"},"columns":["time","mean"],"values":[[0,3]]}]},` +
		`{"series":[{"name":"cpu","columns":["tagKey"],"values":[["host"]]}]}]}`
	if got != want {
		t.Errorf("SELECT and SHOW:\n got %s\nwant %s", got, want)
	}
	if got := run("-database", "clidb", "-precision", "rfc3339", "-execute", "SELECT v FROM cpu WHERE host = 'b'"); !strings.Contains(got, "1970-01-01T00:01:00Z 3") {
		t.Errorf("column format: %s", got)
	}
}
