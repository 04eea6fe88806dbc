package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/testutil"
)

// startServer starts the built binary on a fixed port and data directory,
// so that a restart comes back at the same address with the same log
// (testutil disables the other listeners).
func startServer(t testing.TB, bin, data string, port int) *testutil.Proc {
	t.Helper()
	return testutil.StartBinary(t, bin, "--data", data, "--http", fmt.Sprintf("127.0.0.1:%d", port))
}

// startAgent runs `chronostream agent` with sub-second intervals.
func startAgent(t testing.TB, bin, server, spool string, args ...string) *testutil.Proc {
	t.Helper()
	return testutil.StartProc(t, bin, testutil.ProcOptions{NoWaitReady: true, Args: append([]string{"agent",
		"--server", server, "-r", "agent-e2e", "-i", "0.1", "--hostname", "e2e-host",
		"--spool", spool, "--retry-max", "200ms"}, args...)})
}

// stopSummary reads the counters of the agent's "agent stopped" log line.
func stopSummary(t testing.TB, stderr string) map[string]int {
	t.Helper()
	line := ""
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, `msg="agent stopped"`) {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no \"agent stopped\" line; stderr:\n%s", stderr)
	}
	out := map[string]int{}
	for _, m := range regexp.MustCompile(`(\w+)=(\d+)`).FindAllStringSubmatch(line, -1) {
		out[m[1]], _ = strconv.Atoi(m[2])
	}
	return out
}

var agentStories = []string{"cpu_usage", "memory_usage", "network_usage", "disk_usage", "disk_io", "load"}

// TestAgentSpoolAcrossServerRestart: the agent keeps sampling while the
// server is down, then sends the backlog in order; SIGTERM flushes and
// exits 0; every sample is stored exactly once.
func TestAgentSpoolAcrossServerRestart(t *testing.T) {
	bin := testutil.BuildBinary(t)
	data, port := t.TempDir(), testutil.FreePort(t)
	srv := startServer(t, bin, data, port)
	base := srv.URL()
	a := startAgent(t, bin, base, t.TempDir())

	countMem := func() int {
		resp, err := client.Get(base + "/api/v1/chronicles/agent-e2e/stories/memory_usage/events?format=ndjson")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		n := 0
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			n++
		}
		return n
	}
	testutil.Eventually(t, 30*time.Second, func() bool { return countMem() >= 3 }, "the agent's first samples arrive")

	srv.Kill9()
	outage := time.Now()
	time.Sleep(time.Second) // intervals spooled while the server is down
	restart := time.Now()
	srv = startServer(t, bin, data, port)
	before := countMem()
	testutil.Eventually(t, 30*time.Second, func() bool { return countMem() >= before+5 }, "the backlog and new samples arrive")

	if code := a.Stop(); code != 0 {
		t.Fatalf("agent exit code %d after SIGTERM, want 0; stderr:\n%s", code, a.Stderr())
	}
	sum := stopSummary(t, a.Stderr())
	if sum["unsent_spooled"] != 0 || sum["dropped_spool_full"] != 0 || sum["sent"] != sum["spooled"] {
		t.Fatalf("agent summary %v: want everything spooled sent", sum)
	}

	total := 0
	for _, story := range agentStories {
		evs := readStory(t, base, "agent-e2e", story)
		total += len(evs)
		// In order: event times never go back in log order, and the
		// samples taken during the outage are there.
		var last time.Time
		during := 0
		for _, e := range evs {
			ts, err := time.Parse(time.RFC3339Nano, e.Time)
			if err != nil {
				t.Fatal(err)
			}
			if ts.Before(last) {
				t.Fatalf("%s: event time %v after %v: out of order", story, ts, last)
			}
			last = ts
			if ts.After(outage) && ts.Before(restart) {
				during++
			}
		}
		if story == "memory_usage" {
			if len(evs) != sum["samples"] {
				t.Errorf("memory_usage: %d events for %d samples (lost or doubled)", len(evs), sum["samples"])
			}
			if during == 0 {
				t.Errorf("memory_usage: no sample from the outage: the spool did not keep them")
			}
		}
	}
	if total != sum["spooled"] {
		t.Errorf("%d events stored, the agent spooled %d: lost or doubled", total, sum["spooled"])
	}
	t.Logf("agent summary %v; %d events stored", sum, total)
}

// TestAgentSpoolFullDropsOldest: with no server and a tiny spool, the
// agent drops its oldest samples and says so; what it kept is sent, in
// order, when it next runs with a server.
func TestAgentSpoolFullDropsOldest(t *testing.T) {
	bin := testutil.BuildBinary(t)
	spool := t.TempDir()
	dead := fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t))
	a := startAgent(t, bin, dead, spool, "--spool-max-bytes", "24KiB", "--spool-segment-bytes", "4KiB",
		"-i", "0.02", "-d", "1", "--flush-timeout", "100ms")
	if code := a.Wait(); code != 0 {
		t.Fatalf("agent exit code %d, want 0; stderr:\n%s", code, a.Stderr())
	}
	sum := stopSummary(t, a.Stderr())
	if sum["dropped_spool_full"] == 0 || !strings.Contains(a.Stderr(), "agent spool full: dropped the oldest unsent samples") {
		t.Fatalf("summary %v: want drops, logged; stderr:\n%s", sum, a.Stderr())
	}
	kept := sum["unsent_spooled"]
	if kept == 0 || kept+sum["dropped_spool_full"]+sum["sent"] != sum["spooled"] {
		t.Fatalf("summary %v: kept + dropped + sent != spooled", sum)
	}

	srv := testutil.StartBinary(t, bin)
	b := startAgent(t, bin, srv.URL(), spool, "-d", "0.3")
	if code := b.Wait(); code != 0 {
		t.Fatalf("second agent: exit code %d; stderr:\n%s", code, b.Stderr())
	}
	sum2 := stopSummary(t, b.Stderr())
	total := 0
	for _, story := range agentStories {
		total += len(readStory(t, srv.URL(), "agent-e2e", story))
	}
	if total != kept+sum2["spooled"] {
		t.Errorf("stored %d events, want the %d kept from the outage plus %d new", total, kept, sum2["spooled"])
	}
	t.Logf("outage: %v; after: %v", sum, sum2)
}

// runCLI runs the binary with stdin and returns stdout, stderr and the
// exit code.
func runCLI(t testing.TB, bin, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestSendNDJSONAndLines(t *testing.T) {
	bin := testutil.BuildBinary(t)
	srv := testutil.StartBinary(t, bin)

	var in strings.Builder
	for i := range 500 {
		fmt.Fprintf(&in, `{"i":%d,"msg":"line %d","tags":{"src":"send"}}`+"\n", i, i)
	}
	in.WriteString("\n") // blank lines are skipped
	out, errs, code := runCLI(t, bin, in.String(), "send", "--server", srv.URL(), "-r", "app", "-s", "json")
	if code != 0 || !strings.Contains(out, "sent 500 events to app/json") {
		t.Fatalf("send: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if strings.Contains(errs, "\r") {
		t.Errorf("progress bar drawn on a pipe: %q", errs)
	}
	evs := readStory(t, srv.URL(), "app", "json")
	if len(evs) != 500 {
		t.Fatalf("%d events stored, want 500", len(evs))
	}
	for i, e := range evs {
		if want := fmt.Sprintf(`{"i":%d,"msg":"line %d","tags":{"src":"send"}}`, i, i); string(e.Body) != want {
			t.Fatalf("event %d: body %s, want %s", i, e.Body, want)
		}
	}

	lines := []string{"plain text", `  with "quotes" and spaces  `, "ünïcödé ✓", `{"not":"parsed"}`}
	out, errs, code = runCLI(t, bin, strings.Join(lines, "\n")+"\n", "send", "--lines", "--server", srv.URL(), "-r", "app", "-s", "lines")
	if code != 0 || !strings.Contains(out, "sent 4 events") {
		t.Fatalf("send --lines: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	evs = readStory(t, srv.URL(), "app", "lines")
	if len(evs) != len(lines) {
		t.Fatalf("%d events, want %d", len(evs), len(lines))
	}
	for i, e := range evs {
		if e.Fields["msg"] != lines[i] || e.Kind != "log" {
			t.Errorf("line %d: kind %s msg %q, want %q", i, e.Kind, e.Fields["msg"], lines[i])
		}
	}

	// A line that is not JSON is reported with its number; what came
	// before it is sent.
	out, errs, code = runCLI(t, bin, "{\"ok\":1}\nnot json\n", "send", "--server", srv.URL(), "-r", "app", "-s", "bad")
	if code != 1 || !strings.Contains(errs, "stdin:2: not a JSON value") || !strings.Contains(out, "sent 1 events") {
		t.Errorf("bad input: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// TestTailFollowsResumesAndSurvivesRestart drives `chronostream tail`: it
// prints events as they are stored, reports its cursor on exit, resumes
// with --after, and reconnects after a server restart without losing or
// repeating events.
func TestTailFollowsResumesAndSurvivesRestart(t *testing.T) {
	bin := testutil.BuildBinary(t)
	data, port := t.TempDir(), testutil.FreePort(t)
	srv := startServer(t, bin, data, port)
	base := srv.URL()
	mustPost(t, base, "tl", "s", `{"n":0}`)

	tail := func(args ...string) *testutil.Proc {
		return testutil.StartProc(t, bin, testutil.ProcOptions{NoWaitReady: true,
			Args: append([]string{"tail", "--server", base, "-o", "json"}, args...)})
	}
	ns := func(stdout string) []int {
		var out []int
		for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
			if l == "" {
				continue
			}
			m := regexp.MustCompile(`"body":\{"n":(\d+)\}`).FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("unexpected output line %q", l)
			}
			n, _ := strconv.Atoi(m[1])
			out = append(out, n)
		}
		return out
	}
	waitN := func(p *testutil.Proc, n int) {
		t.Helper()
		testutil.Eventually(t, 30*time.Second, func() bool { return len(ns(p.Stdout())) >= n },
			fmt.Sprintf("tail prints %d events", n))
	}

	p := tail("tl", "s", "--after", "0")
	waitN(p, 1)
	mustPost(t, base, "tl", "s", `{"n":1}`, `{"n":2}`)
	waitN(p, 3)
	if code := p.Stop(); code != 0 {
		t.Fatalf("tail exit code %d", code)
	}
	m := regexp.MustCompile(`cursor (\d+) \(resume with --after (\d+)\)`).FindStringSubmatch(p.Stderr())
	if m == nil {
		t.Fatalf("no cursor on exit; stderr:\n%s", p.Stderr())
	}
	mustPost(t, base, "tl", "s", `{"n":3}`)

	// Resume after the printed cursor: exactly the events after it.
	q := tail("tl", "s", "--after", m[1])
	waitN(q, 1)
	// The server restarts under the tail, which reconnects after its cursor.
	srv.Kill9()
	srv = startServer(t, bin, data, port)
	mustPost(t, base, "tl", "s", `{"n":4}`, `{"n":5}`)
	waitN(q, 3)
	time.Sleep(200 * time.Millisecond) // a duplicate would show by now
	if got := ns(q.Stdout()); fmt.Sprint(got) != "[3 4 5]" {
		t.Fatalf("resumed tail printed %v, want [3 4 5]; stderr:\n%s", got, q.Stderr())
	}
	if !strings.Contains(q.Stderr(), "reconnecting") {
		t.Errorf("no reconnect notice; stderr:\n%s", q.Stderr())
	}

	// Pretty output: time, story, kind, tags, fields.
	mustPost(t, base, "tl", "pretty", `{"kind":"metric","tags":{"host":"a"},"v":1.5}`)
	pr := tail("tl", "--after", "0", "--story", "pretty", "-o", "pretty")
	testutil.Eventually(t, 30*time.Second, func() bool { return strings.Contains(pr.Stdout(), "\n") }, "pretty line")
	if line := pr.Stdout(); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT[\d:.]+Z pretty metric host=a \| v=1.5\n`).MatchString(line) {
		t.Errorf("pretty line %q", line)
	}
}
