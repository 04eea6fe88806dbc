// Package peers starts the systems the benchmarks under bench/ compare --
// InfluxDB 1.6, VictoriaMetrics and chronostream -- on free loopback ports with
// their data in fresh directories, and measures their processes (RSS, CPU,
// bytes on disk).
package peers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chronostream/chronostream/bench/internal/cpuonly"
	"github.com/chronostream/chronostream/internal/peerconf"
)

// The database (InfluxDB), db label (VictoriaMetrics) or chronicle
// (chronostream) every system is written to.
const DB = "benchmark"

// A system is one server under test: how to start it on loopback with its
// data under a directory, how to tell it is up, and how to count what it stored.
type System struct {
	Name  string // as -only names it
	Label string // as the table names it
	Acks  string // what its answer to a write means
	// command builds the server's command line; dir is empty and the
	// server's own; port is free on 127.0.0.1.
	Command func(dir string, port int) (*exec.Cmd, error)
	Ready   string                                                           // path answering 2xx once the server takes writes
	Setup   func(base string) error                                          // run once it is ready (nil: nothing)
	Count   func(base string, w *cpuonly.Workload, lines int) (int64, error) // lines stored
}

func InfluxDB() *System {
	return &System{
		Name:  "influxdb",
		Label: "InfluxDB " + DebVersion("influxdb"),
		Acks:  "WAL fsynced per request (wal-fsync-delay = 0s, the default)",
		Command: func(dir string, port int) (*exec.Cmd, error) {
			rpc, err := FreePort()
			if err != nil {
				return nil, err
			}
			conf := peerconf.InfluxDB(dir, port, rpc)
			cfg := filepath.Join(filepath.Dir(dir), "influxdb.conf")
			if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
				return nil, err
			}
			return exec.Command(lookBin("influxd"), "run", "-config", cfg), nil
		},
		Ready: "/ping",
		Setup: func(base string) error {
			_, err := HTTPDo("POST", base+"/query?q="+url.QueryEscape("CREATE DATABASE "+DB), nil)
			return err
		},
		Count: func(base string, _ *cpuonly.Workload, _ int) (int64, error) {
			q := url.Values{"db": {DB}, "q": {"SELECT count(usage_user) FROM cpu"}}
			b, err := HTTPDo("GET", base+"/query?"+q.Encode(), nil)
			if err != nil {
				return 0, err
			}
			var r struct {
				Results []struct {
					Error  string
					Series []struct{ Values [][]json.RawMessage }
				}
			}
			if err := json.Unmarshal(b, &r); err != nil {
				return 0, fmt.Errorf("count: %w: %.200s", err, b)
			}
			if len(r.Results) == 0 {
				return 0, fmt.Errorf("count: no result: %.200s", b)
			}
			if r.Results[0].Error != "" {
				return 0, fmt.Errorf("count: %s", r.Results[0].Error)
			}
			if len(r.Results[0].Series) == 0 || len(r.Results[0].Series[0].Values) == 0 ||
				len(r.Results[0].Series[0].Values[0]) < 2 {
				return 0, nil // no series: nothing stored
			}
			// values: [["1970-01-01T00:00:00Z", 690000]]
			return strconv.ParseInt(string(r.Results[0].Series[0].Values[0][1]), 10, 64)
		},
	}
}

func VictoriaMetrics() *System {
	return &System{
		Name:  "victoriametrics",
		Label: "VictoriaMetrics " + DebVersion("victoria-metrics"),
		Acks:  "parsed into in-memory buffers; written to disk in the background about every second (acknowledged before it is on disk)",
		Command: func(dir string, port int) (*exec.Cmd, error) {
			return exec.Command(lookBin("victoria-metrics"),
				"-httpListenAddr", fmt.Sprintf("127.0.0.1:%d", port),
				"-storageDataPath", dir,
				"-retentionPeriod", "10y", // the data is days old; keep it whatever the run's size
				"-search.disableCache", // count what is stored, not a cached answer
				"-loggerLevel", "WARN",
			), nil
		},
		Ready: "/health",
		Count: func(base string, w *cpuonly.Workload, lines int) (int64, error) {
			// Make what is buffered in memory searchable, then count every
			// sample of one field over the whole span of the stream.
			if _, err := HTTPDo("GET", base+"/internal/force_flush", nil); err != nil {
				return 0, err
			}
			end := w.LineTime(lines).Add(w.Interval)
			window := end.Sub(w.Start) + w.Interval
			q := url.Values{
				"query": {fmt.Sprintf(`sum(count_over_time(cpu_usage_user{db=%q}[%ds]))`, DB, int64(window.Seconds()))},
				"time":  {strconv.FormatInt(end.Unix(), 10)},
			}
			b, err := HTTPDo("GET", base+"/api/v1/query?"+q.Encode(), nil)
			if err != nil {
				return 0, err
			}
			var r struct {
				Status string
				Error  string
				Data   struct {
					Result []struct{ Value []json.RawMessage }
				}
			}
			if err := json.Unmarshal(b, &r); err != nil {
				return 0, fmt.Errorf("count: %w: %.200s", err, b)
			}
			if r.Status != "success" {
				return 0, fmt.Errorf("count: %s", r.Error)
			}
			if len(r.Data.Result) == 0 || len(r.Data.Result[0].Value) < 2 {
				return 0, nil
			}
			var s string
			if err := json.Unmarshal(r.Data.Result[0].Value[1], &s); err != nil {
				return 0, err
			}
			return strconv.ParseInt(s, 10, 64)
		},
	}
}

func Chronostream(bin string) *System {
	return &System{
		Name:  "chronostream",
		Label: "chronostream",
		Acks:  "in the log and fsynced (--sync always, the default)",
		Command: func(dir string, port int) (*exec.Cmd, error) {
			if bin == "" {
				return nil, errors.New("no binary: give -chronostream /path/to/chronostream (go build -o /tmp/chronostream ./cmd/chronostream)")
			}
			return exec.Command(bin, "serve",
				"--http", fmt.Sprintf("127.0.0.1:%d", port),
				"--graphite", "", "--forward", "",
				"--data", dir,
				"--log-level", "warn",
			), nil
		},
		Ready: "/ready",
		Count: func(base string, _ *cpuonly.Workload, _ int) (int64, error) {
			b, err := HTTPDo("GET", base+"/api/v1/chronicles/"+DB, nil)
			var he *HTTPError
			if errors.As(err, &he) && he.status == http.StatusNotFound {
				return 0, nil // no such chronicle: nothing stored
			}
			if err != nil {
				return 0, err
			}
			var r struct{ Events int64 }
			if err := json.Unmarshal(b, &r); err != nil {
				return 0, fmt.Errorf("count: %w: %.200s", err, b)
			}
			return r.Events, nil
		},
	}
}

// proc is a started server.
type Proc struct {
	Sys     *System
	cmd     *exec.Cmd
	Base    string // http://127.0.0.1:port
	DataDir string
	LogPath string
	done    chan struct{} // closed when the process has exited
	waitErr error
}

// start launches the system with its data in root/<name>/data, its output in
// root/<name>/server.log, and waits until it answers on its ready path.
func Start(sys *System, root string) (*Proc, error) {
	dir := filepath.Join(root, sys.Name)
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	cmd, err := sys.Command(data, port)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "server.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", sys.Name, err)
	}
	p := &Proc{Sys: sys, cmd: cmd, Base: fmt.Sprintf("http://127.0.0.1:%d", port),
		DataDir: data, LogPath: logPath, done: make(chan struct{})}
	go func() { p.waitErr = cmd.Wait(); logf.Close(); close(p.done) }()

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited before it was ready (%v):\n%s", sys.Name, p.waitErr, p.LogTail())
		default:
		}
		if _, err := HTTPDo("GET", p.Base+sys.Ready, nil); err == nil {
			break
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("%s not ready on %s within 60s:\n%s", sys.Name, p.Base, p.LogTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if sys.Setup != nil {
		if err := sys.Setup(p.Base); err != nil {
			p.Stop()
			return nil, fmt.Errorf("%s setup: %w", sys.Name, err)
		}
	}
	return p, nil
}

// PeakRSS is VmHWM, the high-water mark of the process's resident memory.
func (p *Proc) PeakRSS() int64 { return PeakRSS(p.cmd.Process.Pid) }

// PeakRSS is VmHWM, the high-water mark of a process's resident memory
// (0 when /proc does not tell it).
func PeakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// stop asks the server to shut down (SIGTERM) and kills it after a minute.
func (p *Proc) Stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s ignored SIGTERM for 60s; killed", p.Sys.Name)
	}
}

func (p *Proc) LogTail() string {
	b, _ := os.ReadFile(p.LogPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// diskBytes is the space the files under dir take on disk (allocated blocks,
// as du counts them, so preallocated or sparse files count what they use).
func DiskBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			} else {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

type HTTPError struct {
	status int
	body   string
}

func (e *HTTPError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.body) }

var ctlClient = &http.Client{Timeout: 60 * time.Second}

// httpDo sends one control request (not a measured write) and returns the
// body of a 2xx answer, or an *HTTPError.
func HTTPDo(method, u string, body io.Reader) ([]byte, error) {
	req, err := http.NewRequestWithContext(context.Background(), method, u, body)
	if err != nil {
		return nil, err
	}
	resp, err := ctlClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return nil, &HTTPError{resp.StatusCode, strings.TrimSpace(string(b))}
	}
	return b, nil
}

func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lookBin finds a peer's binary on PATH, or where Debian puts it.
func lookBin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return "/usr/bin/" + name
}

// debVersion is the upstream version of an installed Debian package
// (1.6.7~rc0 of 1.6.7~rc0-1+b13), or "" if unknown.
func DebVersion(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", pkg).Output()
	if err != nil {
		return ""
	}
	v := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(v, '-'); i > 0 {
		v = v[:i]
	}
	return strings.TrimSuffix(v, "+ds1")
}

// cpuTime is the CPU time (user + system, all threads) the process has used.
func (p *Proc) CPUTime() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces:
	// utime and stime are the 14th and 15th fields of the line, in clock ticks.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * time.Second / clockTicks
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// machineCPUTime is the CPU time every process on the machine has used
// (the busy time in /proc/stat, summed over cores).
func MachineCPUTime() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTicks
}

// selfCPUTime is the CPU time this benchmark process has used.
func SelfCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
