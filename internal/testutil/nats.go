package testutil

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// natsServerPaths are tried after PATH: Debian installs nats-server in
// /usr/sbin, which is not on a non-root user's PATH.
var natsServerPaths = []string{"/usr/sbin/nats-server", "/usr/local/bin/nats-server", "/usr/local/sbin/nats-server"}

// NATSServerBinary returns the path of the nats-server executable. When it
// is missing, the test is skipped on a developer's machine but fails in CI
// (CI set), where tests against real peers must run.
func NATSServerBinary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	for _, p := range natsServerPaths {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	if os.Getenv("CI") == "" {
		t.Skip("nats-server is not installed (apt-get install nats-server); skipping outside CI")
	}
	t.Fatal("nats-server is not installed, and CI is set: .ci/run must install it")
	return ""
}

// StartNATSServer starts a separate nats-server process with JetStream on a
// free loopback port and storage in a temporary directory, and returns its
// URL. The server is stopped when the test ends.
func StartNATSServer(t testing.TB) string {
	t.Helper()
	bin := NATSServerBinary(t)
	dir := t.TempDir()
	var lastErr string
	// FreePort can race with another process taking the port: retry.
	for attempt := 0; attempt < 5; attempt++ {
		port := FreePort(t)
		url, ok, out := startNATS(t, bin, port, dir)
		if ok {
			return url
		}
		lastErr = out
	}
	t.Fatalf("testutil: nats-server did not start; its last output:\n%s", lastErr)
	return ""
}

func startNATS(t testing.TB, bin string, port int, dir string, extra ...string) (url string, ok bool, output string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-js", "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-sd", dir}, extra...)...)
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testutil: start nats-server: %v", err)
	}
	var (
		mu  sync.Mutex
		log strings.Builder
	)
	ready := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if strings.Contains(sc.Text(), "Server is ready") {
				once.Do(func() { close(ready) })
			}
		}
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case <-ready:
	case <-exited:
		mu.Lock()
		defer mu.Unlock()
		return "", false, log.String()
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		<-exited
		mu.Lock()
		defer mu.Unlock()
		return "", false, "not ready after 1m:\n" + log.String()
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			mu.Lock()
			t.Logf("nats-server output:\n%s", log.String())
			mu.Unlock()
		}
	})
	return fmt.Sprintf("nats://127.0.0.1:%d", port), true, ""
}
