// Command ndjson benchmarks durable NDJSON ingest: it starts a chronostream
// binary (or uses a running server), drives concurrent POST / requests of
// 200–400-byte JSON events, and prints events/s, the p50/p99 latency of an
// acknowledgement (the response, sent only once the batch is fsynced), the
// server's peak RSS and its bytes on disk.
//
//	go build -o /tmp/chronostream ./cmd/chronostream
//	go run ./bench/ndjson -bin /tmp/chronostream -duration 20s
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronostream/chronostream/bench/internal/peers"
)

func main() {
	bin := flag.String("bin", "", "chronostream binary to start (with a temporary data dir)")
	url := flag.String("url", "", "base URL of a running server instead of -bin")
	conc := flag.Int("c", 8, "concurrent producers")
	batch := flag.Int("batch", 1000, "events per request")
	dur := flag.Duration("duration", 15*time.Second, "how long to send")
	stories := flag.Int("stories", 4, "stories written to (producer i writes story i mod stories)")
	chronicle := flag.String("chronicle", "bench", "chronicle written to (e.g. one created with {\"replicas\":3} on a cluster)")
	extra := flag.String("args", "", "extra serve arguments, space separated")
	flag.Parse()

	var srv *server
	if *url == "" {
		if *bin == "" {
			log.Fatal("give -bin or -url")
		}
		var err error
		srv, err = start(*bin, strings.Fields(*extra))
		if err != nil {
			log.Fatal(err)
		}
		defer srv.stop()
		*url = "http://" + srv.addr
	}

	bodies := make([][]byte, 16)
	var evBytes int
	for i := range bodies {
		bodies[i], evBytes = makeBody(i, *batch)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conc}}
	var events atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	var failures atomic.Int64
	begin := time.Now()
	for p := 0; p < *conc; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			target := fmt.Sprintf("%s/?chronicle=%s&story=s%d", *url, *chronicle, p%*stories)
			var mine []time.Duration
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				resp, err := client.Post(target, "application/x-ndjson", bytes.NewReader(bodies[(p+i)%len(bodies)]))
				if err != nil {
					if ctx.Err() == nil {
						failures.Add(1)
					}
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				n, err := strconv.Atoi(strings.TrimSpace(string(b)))
				if resp.StatusCode != 200 || err != nil || n != *batch {
					failures.Add(1)
					continue
				}
				mine = append(mine, time.Since(t0))
				events.Add(int64(n))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(begin)
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))]
	}
	fmt.Printf("| system | producers | batch | event bytes | events/s | MB/s | ack p50 | ack p99 | peak RSS | disk | failures |\n")
	fmt.Printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	rss, disk := "n/a", "n/a"
	if srv != nil {
		rss = fmt.Sprintf("%.0f MiB", float64(peers.PeakRSS(srv.cmd.Process.Pid))/(1<<20))
		disk = fmt.Sprintf("%.0f MiB", float64(dirSize(srv.dir))/(1<<20))
	}
	rate := float64(events.Load()) / elapsed.Seconds()
	fmt.Printf("| chronostream | %d | %d | %d | %.0f | %.1f | %v | %v | %s | %s | %d |\n",
		*conc, *batch, evBytes, rate, rate*float64(evBytes)/1e6,
		pct(0.50).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), rss, disk, failures.Load())
}

// makeBody returns a batch of realistic JSON log events and their mean size.
func makeBody(seed, n int) ([]byte, int) {
	r := rand.New(rand.NewPCG(uint64(seed), 7))
	paths := []string{"/api/v1/orders", "/api/v1/users/me", "/healthz", "/api/v1/cart/items", "/static/app.js"}
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `{"time":"%s","level":"%s","msg":"request served","service":"checkout","method":"GET","path":"%s/%d","status":%d,"duration_ms":%.3f,"bytes":%d,"user_agent":"Mozilla/5.0 (X11; Linux x86_64; rv:128.0)","trace_id":"%016x%016x","span_id":"%016x"}`+"\n",
			time.Now().Add(time.Duration(i)*time.Millisecond).UTC().Format(time.RFC3339Nano),
			[]string{"INFO", "INFO", "INFO", "WARN", "ERROR"}[r.IntN(5)], paths[r.IntN(len(paths))], r.IntN(100000),
			[]int{200, 200, 200, 404, 500}[r.IntN(5)], r.Float64()*250, r.IntN(50000), r.Uint64(), r.Uint64(), r.Uint64())
	}
	return b.Bytes(), b.Len() / n
}

type server struct {
	cmd  *exec.Cmd
	dir  string
	addr string
}

var readyRE = regexp.MustCompile(`http=([0-9.:\[\]a-f]+)`)

func start(bin string, extra []string) (*server, error) {
	dir, err := os.MkdirTemp("", "chronostream-bench-")
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve", "--http", "127.0.0.1:0", "--graphite", "", "--forward", "", "--data", dir}, extra...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, dir: dir}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := readyRE.FindStringSubmatch(sc.Text()); m != nil && strings.Contains(sc.Text(), "ready") {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case s.addr = <-found:
		return s, nil
	case <-time.After(30 * time.Second):
		s.stop()
		return nil, fmt.Errorf("%s did not log its address within 30s", bin)
	}
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
	}
	_ = os.RemoveAll(s.dir)
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
