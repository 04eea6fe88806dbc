package testutil

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/peerconf"
)

var influxdPaths = []string{"/usr/bin/influxd", "/usr/local/bin/influxd"}

// InfluxDBBinary returns the path of Debian's influxd (InfluxDB 1.6). When it
// is missing the test is skipped on a developer's machine and fails in CI,
// where tests against real peers must run (.ci/run installs it).
func InfluxDBBinary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("influxd"); err == nil {
		return p
	}
	for _, p := range influxdPaths {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	if os.Getenv("CI") == "" {
		t.Skip("influxd is not installed (apt-get install influxdb); skipping outside CI")
	}
	t.Fatal("influxd is not installed, and CI is set: .ci/run must install it")
	return ""
}

// InfluxDB is a real influxd process on a loopback port with its data in a
// temporary directory. Stop and Start keep the port and the data, so a test
// can take it down for an outage and bring it back.
type InfluxDB struct {
	t    testing.TB
	bin  string
	conf string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *LockedBuffer
}

// StartInfluxDB starts influxd (auth disabled, no reporting, WAL fsynced per
// write, its defaults otherwise) and waits until /ping answers. It is
// stopped when the test ends.
func StartInfluxDB(t testing.TB) *InfluxDB {
	t.Helper()
	db := &InfluxDB{t: t, bin: InfluxDBBinary(t)}
	dir := t.TempDir()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		db.port = FreePort(t)
		rpc := FreePort(t)
		conf := peerconf.InfluxDB(dir, db.port, rpc)
		db.conf = filepath.Join(dir, "influxdb.conf")
		if err := os.WriteFile(db.conf, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		if lastErr = db.start(); lastErr == nil {
			t.Cleanup(db.Stop)
			return db
		}
	}
	t.Fatalf("testutil: influxd did not start: %v", lastErr)
	return nil
}

// URL is the base URL of its HTTP API, e.g. http://127.0.0.1:38123.
func (db *InfluxDB) URL() string { return "http://127.0.0.1:" + strconv.Itoa(db.port) }

// Start starts a stopped influxd again on the same port and data.
func (db *InfluxDB) Start() {
	db.t.Helper()
	if err := db.start(); err != nil {
		db.t.Fatalf("testutil: restart influxd: %v", err)
	}
}

func (db *InfluxDB) start() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.cmd != nil {
		return fmt.Errorf("influxd is already running")
	}
	out := &LockedBuffer{}
	cmd := exec.Command(db.bin, "run", "-config", db.conf)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := influxClient.Get(db.URL() + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				break
			}
		}
		select {
		case <-done:
			return fmt.Errorf("influxd exited:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("influxd not ready after 1m:\n%s", out.String())
		}
	}
	db.cmd, db.done, db.out = cmd, done, out
	return nil
}

// Stop stops influxd (SIGTERM, then SIGKILL after 30 s); Start brings it back.
func (db *InfluxDB) Stop() {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.cmd == nil {
		return
	}
	_ = db.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-db.done:
	case <-time.After(30 * time.Second):
		_ = db.cmd.Process.Kill()
		<-db.done
	}
	if db.t.Failed() {
		db.t.Logf("influxd output:\n%s", db.out.String())
	}
	db.cmd = nil
}

// InfluxResult is one statement's result in InfluxDB 1.x's /query JSON.
type InfluxResult struct {
	StatementID int    `json:"statement_id"`
	Error       string `json:"error,omitempty"`
	Series      []struct {
		Name    string            `json:"name"`
		Tags    map[string]string `json:"tags,omitempty"`
		Columns []string          `json:"columns"`
		Values  [][]any           `json:"values"`
	} `json:"series,omitempty"`
}

// influxClient bounds every request to influxd: a test polling a stuck
// influxd (inside Eventually, say) fails instead of hanging the run.
var influxClient = &http.Client{Timeout: 30 * time.Second}

// Query runs q against database db (epoch=ns, numbers as json.Number) and
// returns the results; a statement's error is in its result, not returned.
func (db *InfluxDB) Query(q, database string) ([]InfluxResult, error) {
	v := url.Values{"q": {q}, "epoch": {"ns"}}
	if database != "" {
		v.Set("db", database)
	}
	resp, err := influxClient.PostForm(db.URL()+"/query", v)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var r struct {
		Results []InfluxResult `json:"results"`
		Error   string         `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("influxdb /query: %w: %.300s", err, b)
	}
	if r.Error != "" {
		return nil, fmt.Errorf("influxdb /query: %s", r.Error)
	}
	return r.Results, nil
}

// MustQuery is Query that fails the test on a transport or statement error.
func (db *InfluxDB) MustQuery(q, database string) []InfluxResult {
	db.t.Helper()
	rs, err := db.Query(q, database)
	if err != nil {
		db.t.Fatal(err)
	}
	for _, r := range rs {
		if r.Error != "" {
			db.t.Fatalf("influxdb: %s: %s", q, r.Error)
		}
	}
	return rs
}
