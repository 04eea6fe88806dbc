package lineproto_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"

	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

const token = "s3cret-token"

type readEvent struct {
	Time   time.Time                  `json:"time"`
	Story  string                     `json:"story"`
	Kind   string                     `json:"kind"`
	Tags   map[string]string          `json:"tags"`
	Fields map[string]json.RawMessage `json:"fields"`
}

// readStory reads a story back through the HTTP API, as users do.
func readStory(t *testing.T, base, chronicle, story string) []readEvent {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/v1/chronicles/"+url.PathEscape(chronicle)+"/stories/"+url.PathEscape(story)+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("read %s/%s: %d %s", chronicle, story, resp.StatusCode, b)
	}
	var p struct{ Events []readEvent }
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return p.Events
}

func startServer(t *testing.T) string {
	s := servertest.RunServer(t, server.Options{AutoCreate: true, Tokens: []string{token}, Version: "9.9.9-test"})
	return "http://" + s.Addr()
}

// TestInfluxClientGo drives the official InfluxDB 2 Go client unchanged:
// its blocking write API at every precision with every field type, and its
// Health and Ping.
func TestInfluxClientGo(t *testing.T) {
	base := startServer(t)
	ctx := context.Background()
	ts := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	for _, prec := range []time.Duration{time.Second, time.Millisecond, time.Microsecond, time.Nanosecond} {
		t.Run(prec.String(), func(t *testing.T) {
			c := influxdb2.NewClientWithOptions(base, token, influxdb2.DefaultOptions().SetPrecision(prec))
			defer c.Close()
			w := c.WriteAPIBlocking("my-org", "bucket-"+prec.String())
			p := influxdb2.NewPoint("weather station",
				map[string]string{"location": "us, midwest", "sensor=id": "a b"},
				map[string]any{"temp": 82.5, "count": int64(-7), "total": uint64(18446744073709551615),
					"note": `say "hi" \o/`, "ok": true, "whole": 3.0},
				ts)
			if err := w.WritePoint(ctx, p); err != nil {
				t.Fatal(err)
			}
			// A point without a time takes the server's.
			if err := w.WriteRecord(ctx, "weather\\ station,location=x temp=1"); err != nil {
				t.Fatal(err)
			}
			evs := readStory(t, base, "bucket-"+prec.String(), "weather station")
			if len(evs) != 2 {
				t.Fatalf("read %d events: %+v", len(evs), evs)
			}
			e := evs[0]
			if want := ts.Truncate(prec); !e.Time.Equal(want) {
				t.Errorf("time %v, want %v", e.Time, want)
			}
			if e.Kind != "metric" || e.Tags["location"] != "us, midwest" || e.Tags["sensor=id"] != "a b" {
				t.Errorf("event %+v", e)
			}
			want := map[string]string{"temp": "82.5", "count": "-7", "total": "18446744073709551615",
				"note": `"say \"hi\" \\o/"`, "ok": "true", "whole": "3"}
			for k, v := range want {
				if string(e.Fields[k]) != v {
					t.Errorf("field %s = %s, want %s", k, e.Fields[k], v)
				}
			}
			if time.Since(evs[1].Time) > time.Minute || evs[1].Tags["location"] != "x" {
				t.Errorf("point without time: %+v", evs[1])
			}
		})
	}
	c := influxdb2.NewClient(base, token)
	defer c.Close()
	ok, err := c.Ping(ctx)
	if err != nil || !ok {
		t.Errorf("Ping: %v %v", ok, err)
	}
	h, err := c.Health(ctx)
	if err != nil || h.Status != "pass" {
		t.Errorf("Health: %+v %v", h, err)
	}
	// A wrong token is refused.
	bad := influxdb2.NewClient(base, "wrong")
	defer bad.Close()
	if err := bad.WriteAPIBlocking("o", "b").WriteRecord(ctx, "cpu v=1"); err == nil {
		t.Error("write with a wrong token succeeded")
	}
}

// influxCLI returns the path of InfluxDB 1.x's influx CLI (Debian package
// influxdb-client); CI installs it, elsewhere the test skips without it.
func influxCLI(t *testing.T) string {
	p, err := exec.LookPath("influx")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("the influx CLI (Debian package influxdb-client) is required in CI")
		}
		t.Skip("influx CLI not installed (apt-get install influxdb-client)")
	}
	return p
}

// TestInfluxCLI drives InfluxDB 1.x's own CLI: it pings, then writes with
// /write and the u/p credentials, and imports a file.
func TestInfluxCLI(t *testing.T) {
	bin := influxCLI(t)
	base := startServer(t)
	u, _ := url.Parse(base)
	host, port, _ := strings.Cut(u.Host, ":")
	run := func(args ...string) string {
		t.Helper()
		args = append([]string{"-host", host, "-port", port, "-username", "me", "-password", token}, args...)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("influx %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("-database", "clidb", "-execute", "INSERT cpu,host=a value=1,n=2i")
	evs := readStory(t, base, "clidb", "cpu")
	if len(evs) != 1 || evs[0].Tags["host"] != "a" || string(evs[0].Fields["value"]) != "1" || string(evs[0].Fields["n"]) != "2" {
		t.Fatalf("after INSERT: %+v", evs)
	}

	file := filepath.Join(t.TempDir(), "import.txt")
	data := "# DML\n# CONTEXT-DATABASE: importdb\n# CONTEXT-RETENTION-POLICY: autogen\n" +
		"mem,host=a free=10i 1700000000\nmem,host=b free=20i 1700000001\nmem,host=c free=30i 1700000002\n"
	if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run("-import", "-path", file, "-precision", "s")
	evs = readStory(t, base, "importdb", "mem")
	if len(evs) != 3 || !evs[0].Time.Equal(time.Unix(1700000000, 0)) || string(evs[2].Fields["free"]) != "30" {
		t.Fatalf("after -import (%s): %+v", out, evs)
	}
}
