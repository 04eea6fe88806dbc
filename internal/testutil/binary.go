package testutil

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// BuildBinary builds cmd/chronostream once per test process and returns the
// path of the binary. When the tests run with -race, so does the binary:
// the end-to-end tests then hunt races in the real server too, and the
// build reuses the packages the test binary already compiled.
func BuildBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "chronostream-bin-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "chronostream")
		args := []string{"build", "-o", buildBin}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "github.com/chronostream/chronostream/cmd/chronostream")
		cmd := exec.Command("go", args...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("testutil.BuildBinary: %v", buildErr)
	}
	return buildBin
}

// Main runs the tests of a package that uses BuildBinary and removes the
// binary afterwards. Use it as: func TestMain(m *testing.M) { testutil.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// ProcOptions say how to start a binary.
type ProcOptions struct {
	// Args follow the binary's name, e.g. {"serve", "--http", "127.0.0.1:0"}.
	Args []string
	// Env is added to the test's environment, from which CHRONOSTREAM_*
	// variables are removed so that tests are hermetic.
	Env []string
	// Dir is the working directory; a fresh temporary directory by default,
	// so the default ./data never lands in the source tree.
	Dir string
	// NoWaitReady returns as soon as the process has started, instead of
	// waiting for its "chronostream ready" log line.
	NoWaitReady bool
}

// Proc is a running chronostream process.
type Proc struct {
	t    testing.TB
	cmd  *exec.Cmd
	addr string
	// ReadyLine is the "chronostream ready" log line (empty with NoWaitReady).
	ReadyLine string

	mu     sync.Mutex
	stderr strings.Builder
	stdout LockedBuffer
	done   chan struct{} // closed when the process has exited and stderr is drained
	err    error         // cmd.Wait's result
}

// readyTimeout bounds the wait for startup. It guards against hangs; a
// JetStream recovering a large store under -race can take a while.
const readyTimeout = 2 * time.Minute

// StartBinary starts `bin serve --http 127.0.0.1:0 args...` and waits until it
// is ready. Later flags win, so args may override --http.
func StartBinary(t testing.TB, bin string, args ...string) *Proc {
	t.Helper()
	return StartProc(t, bin, ProcOptions{Args: append([]string{"serve", "--http", "127.0.0.1:0"}, args...)})
}

// StartProc starts bin as described by o. Unless o.NoWaitReady, it waits
// for the "chronostream ready" log line and fails the test if the process
// exits first. The process is killed when the test ends, if still running.
func StartProc(t testing.TB, bin string, o ProcOptions) *Proc {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	cmd := exec.Command(bin, o.Args...)
	cmd.Dir = o.Dir
	cmd.Env = append(hermeticEnv(), o.Env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &Proc{t: t, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout = &p.stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("testutil: start %s: %v", bin, err)
	}
	ready := make(chan string, 1)
	go p.readStderr(stderr, ready)
	t.Cleanup(func() {
		p.Kill9()
		if t.Failed() {
			t.Logf("stderr of %s %s:\n%s", filepath.Base(bin), strings.Join(o.Args, " "), p.Stderr())
		}
	})
	if o.NoWaitReady {
		return p
	}
	select {
	case line := <-ready:
		p.ReadyLine = line
		p.addr = readyAddr(line)
		if p.addr == "" {
			t.Fatalf("testutil: no http address in the ready line %q", line)
		}
	case <-p.done:
		t.Fatalf("testutil: %s %s exited before it was ready (%v); stderr:\n%s",
			filepath.Base(bin), strings.Join(o.Args, " "), p.err, p.Stderr())
	case <-time.After(readyTimeout):
		t.Fatalf("testutil: %s not ready after %v; stderr:\n%s", filepath.Base(bin), readyTimeout, p.Stderr())
	}
	return p
}

// hermeticEnv is the test's environment without CHRONOSTREAM_* variables,
// and with the Graphite and Forward listeners off: their default ports
// (2003, 24224) would collide between tests running in parallel. Tests that
// want one pass --graphite 127.0.0.1:0 or --forward 127.0.0.1:0 (a flag
// beats the environment) and read GraphiteAddr or ForwardAddr.
func hermeticEnv() []string {
	env := []string{"CHRONOSTREAM_GRAPHITE=", "CHRONOSTREAM_FORWARD=",
		// The Vivo exporter's default port (2025) too: pass --vivo-listen
		// 127.0.0.1:0 and read VivoAddr to use it.
		"CHRONOSTREAM_VIVO_LISTEN="}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHRONOSTREAM_") {
			env = append(env, kv)
		}
	}
	return env
}

func (p *Proc) readStderr(r io.Reader, ready chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		p.stderr.WriteString(line)
		p.stderr.WriteByte('\n')
		p.mu.Unlock()
		if !sent && strings.Contains(line, "chronostream ready") {
			ready <- line
			sent = true
		}
	}
	_, _ = io.Copy(io.Discard, r) // an overlong line must not block the child
	p.err = p.cmd.Wait()
	close(p.done)
}

var textHTTPAttr = regexp.MustCompile(`(?:^|\s)http=(\S+)`)

// readyAddr takes the listen address from the ready line, in either log format.
func readyAddr(line string) string {
	if strings.HasPrefix(line, "{") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			s, _ := m["http"].(string)
			return s
		}
		return ""
	}
	if m := textHTTPAttr.FindStringSubmatch(line); m != nil {
		return strings.Trim(m[1], `"`)
	}
	return ""
}

var textGraphiteAttr = regexp.MustCompile(`(?:^|\s)graphite=(\S+)`)

var textForwardAttr = regexp.MustCompile(`(?:^|\s)forward=(\S+)`)

// ForwardAddr is the Fluent Forward listener's address from the ready
// line, empty when it is disabled.
func (p *Proc) ForwardAddr() string {
	if strings.HasPrefix(p.ReadyLine, "{") {
		var m map[string]any
		_ = json.Unmarshal([]byte(p.ReadyLine), &m)
		s, _ := m["forward"].(string)
		return s
	}
	if m := textForwardAttr.FindStringSubmatch(p.ReadyLine); m != nil {
		return strings.Trim(m[1], `"`)
	}
	return ""
}

// GraphiteAddr is the Graphite listener's address (TCP and UDP) from the
// ready line, empty when it is disabled.
func (p *Proc) GraphiteAddr() string {
	if strings.HasPrefix(p.ReadyLine, "{") {
		var m map[string]any
		_ = json.Unmarshal([]byte(p.ReadyLine), &m)
		s, _ := m["graphite"].(string)
		return s
	}
	if m := textGraphiteAttr.FindStringSubmatch(p.ReadyLine); m != nil {
		return strings.Trim(m[1], `"`)
	}
	return ""
}

var textVivoAttr = regexp.MustCompile(`(?:^|\s)vivo=(\S+)`)

// VivoAddr is the Vivo exporter listener's address from the ready line,
// empty when it is disabled.
func (p *Proc) VivoAddr() string {
	if strings.HasPrefix(p.ReadyLine, "{") {
		var m map[string]any
		_ = json.Unmarshal([]byte(p.ReadyLine), &m)
		s, _ := m["vivo"].(string)
		return s
	}
	if m := textVivoAttr.FindStringSubmatch(p.ReadyLine); m != nil {
		return strings.Trim(m[1], `"`)
	}
	return ""
}

// Addr is the server's HTTP address, host:port.
func (p *Proc) Addr() string { return p.addr }

// PID is the process id, e.g. to read /proc/PID/status.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// URL is the server's base URL, http://host:port.
func (p *Proc) URL() string { return "http://" + p.addr }

// Stderr is everything the process has logged so far.
func (p *Proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// Stdout is everything the process has printed on stdout so far.
func (p *Proc) Stdout() string { return p.stdout.String() }

// Kill9 kills the process with SIGKILL, as a crash or the OOM killer
// would, and waits until it is gone.
func (p *Proc) Kill9() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits for a graceful exit, returning the exit code.
// It fails the test if the process has not exited within the server's own
// shutdown bound plus a margin.
func (p *Proc) Stop() int {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	return p.wait(45 * time.Second)
}

// Wait waits for the process to exit on its own and returns its exit code.
func (p *Proc) Wait() int {
	p.t.Helper()
	return p.wait(readyTimeout)
}

func (p *Proc) wait(bound time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(bound):
		p.Kill9()
		p.t.Fatalf("testutil: process did not exit within %v; stderr:\n%s", bound, p.Stderr())
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		p.t.Fatalf("testutil: wait: %v", p.err)
	}
	return 0
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
