package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/sink"
	"github.com/chronostream/chronostream/internal/sink/grafana/grafanatest"
	"github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = run(ctx, args, nil, &out, &errb)
	return code, out.String(), errb.String()
}

// TestAnnotateThroughGrafanaSink: annotate writes the convention's events
// through the API (with the server's token), and a server's grafana sink
// turns them into a point and one region annotation (against grafanatest:
// Grafana cannot run here).
func TestAnnotateThroughGrafanaSink(t *testing.T) {
	g := &grafanatest.Server{Token: "gtoken"}
	hs := grafanatest.Start(t, g, false)
	host, port, _ := net.SplitHostPort(hs.Listener.Addr().String())
	settings := fmt.Sprintf(`{"servers":[{"host":%q,"port":%s,"api_token":"gtoken","tags":["chronostream"]}]}`, host, port)
	srv := servertest.RunServer(t, server.Options{
		Tokens:     []string{"s3cret"},
		AutoCreate: true,
		Sinks: []sink.Config{{Name: "grafana", Type: "grafana", Chronicle: "prod", Kinds: []string{"annotation"},
			BatchAge: sink.Duration(10 * time.Millisecond), Settings: json.RawMessage(settings)}},
	})
	base := "http://" + srv.Addr()
	common := []string{"annotate", "--server", base, "--token", "s3cret", "-r", "prod"}

	code, out, errOut := runCmd(t, append(common, "--tag", "service=api", "--tag", "canary", "--title", "Deploy", "v2.3.1", "rolled", "out")...)
	if code != exitOK || !strings.Contains(out, "stored in prod/annotations at seq") {
		t.Fatalf("annotate: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// The start a minute back: an annotate run can take under a millisecond,
	// and a region opened and closed in one millisecond (Grafana's unit) has
	// timeEnd == time, which the check below would never see grow.
	if code, out, errOut = runCmd(t, append(common, "--start", "exp-42", "--time", "1m", "--activity", "action", "kill one pod")...); code != exitOK {
		t.Fatalf("annotate --start: exit %d, %q %q", code, out, errOut)
	}
	if code, out, errOut = runCmd(t, append(common, "--end", "exp-42")...); code != exitOK || !strings.Contains(out, `region "exp-42" closed`) {
		t.Fatalf("annotate --end: exit %d, %q %q", code, out, errOut)
	}

	// The events, as the API reads them back.
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/chronicles/prod/stories/annotations/events?format=ndjson", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	type storedEvent struct {
		Kind   string            `json:"kind"`
		Tags   map[string]string `json:"tags"`
		Fields map[string]any    `json:"fields"`
	}
	var events []storedEvent
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var e storedEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: %v", sc.Bytes(), err)
		}
		events = append(events, e)
	}
	if len(events) != 3 {
		t.Fatalf("%d events stored, want 3: %+v", len(events), events)
	}
	p := events[0]
	if p.Kind != "annotation" || p.Fields["text"] != "v2.3.1 rolled out" || p.Fields["title"] != "Deploy" || p.Tags["service"] != "api" || p.Tags["canary"] != "" {
		t.Errorf("point event: %+v", p)
	}
	if s, e := events[1], events[2]; s.Fields["region"] != "exp-42" || s.Fields["phase"] != "start" || s.Fields["activity"] != "action" ||
		e.Fields["region"] != "exp-42" || e.Fields["phase"] != "end" {
		t.Errorf("region events: %+v %+v", s, e)
	}

	testutil.Eventually(t, 20*time.Second, func() bool {
		a := g.Annotations()
		return len(a) == 2 && a[1].TimeEnd > a[1].Time
	}, "Grafana holds the point and the closed region")
	a := g.Annotations()
	if a[0].Text != "Deploy\nv2.3.1 rolled out" || !containsAll(a[0].Tags, "canary", "chronostream", "service:api") {
		t.Errorf("point annotation: %+v", a[0])
	}
	if a[1].Text != "kill one pod" || !containsAll(a[1].Tags, "region:exp-42") {
		t.Errorf("region annotation: %+v", a[1])
	}

	// An end with no start to close is not lost: it is dead-lettered with
	// the reason, and later annotations still go through.
	if code, out, errOut = runCmd(t, append(common, "--end", "never-opened")...); code != exitOK {
		t.Fatalf("annotate --end: exit %d, %q %q", code, out, errOut)
	}
	if code, out, errOut = runCmd(t, append(common, "after the refusal")...); code != exitOK {
		t.Fatalf("annotate: exit %d, %q %q", code, out, errOut)
	}
	testutil.Eventually(t, 20*time.Second, func() bool { return len(g.Annotations()) == 3 }, "the annotation after the refused one reaches Grafana")
	req, _ = http.NewRequest(http.MethodGet, base+"/api/v1/chronicles/prod/stories/_deadletter%2Fgrafana/events?format=ndjson", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dead, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(dead), `no open start`) || !strings.Contains(string(dead), `never-opened`) || strings.Count(string(dead), "\n") != 1 {
		t.Errorf("dead letters: %s", dead)
	}
}

func containsAll(have []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

func TestAnnotateRefusals(t *testing.T) {
	for name, args := range map[string][]string{
		"no chronicle":      {"annotate", "text"},
		"no text":           {"annotate", "-r", "c"},
		"start and end":     {"annotate", "-r", "c", "--start", "a", "--end", "a", "x"},
		"time-end in pair":  {"annotate", "-r", "c", "--start", "a", "--time-end", "5m", "x"},
		"bad activity":      {"annotate", "-r", "c", "--activity", "rollback", "x"},
		"bad time":          {"annotate", "-r", "c", "--time", "yesterday", "x"},
		"end before start":  {"annotate", "-r", "c", "--time", "2026-01-02T00:00:00Z", "--time-end", "2026-01-01T00:00:00Z", "x"},
		"bad server":        {"annotate", "--server", "localhost:4318", "-r", "c", "x"},
		"empty tag":         {"annotate", "-r", "c", "--tag", "=v", "x"},
		"invalid chronicle": {"annotate", "-r", "a\xffb", "x"},
	} {
		if code, _, _ := runCmd(t, args...); code != exitUsage {
			t.Errorf("%s: exit %d, want %d", name, code, exitUsage)
		}
	}

	srv := servertest.RunServer(t, server.Options{Tokens: []string{"right"}})
	code, _, errOut := runCmd(t, "annotate", "--server", "http://"+srv.Addr(), "--token", "wrong-secret", "-r", "c", "x")
	if code != exitFailure || !strings.Contains(errOut, "401") || strings.Contains(errOut, "wrong-secret") {
		t.Errorf("wrong token: exit %d, stderr %q (want 1, the 401, never the token)", code, errOut)
	}

	// Nothing listening: retried until --timeout, then a failure.
	dead := fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t))
	if code, _, errOut := runCmd(t, "annotate", "--server", dead, "--timeout", "1s", "-r", "c", "x"); code != exitFailure || !strings.Contains(errOut, "not stored") {
		t.Errorf("server down: exit %d, stderr %q", code, errOut)
	}
}

func TestAnnotateTimes(t *testing.T) {
	now := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"2026-11-22T03:00:00Z", now.Add(-time.Hour).UnixNano()},
		{"10m", now.Add(-10 * time.Minute).UnixNano()},
		{"1795312800", 1795312800 * 1e9},
		{"1795312800123", 1795312800123 * 1e6},
		{"1795312800123456789", 1795312800123456789},
	} {
		got, err := unixNanos(tc.in, now)
		if err != nil || got != tc.want {
			t.Errorf("unixNanos(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}
