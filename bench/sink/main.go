// Command sink benchmarks the InfluxDB sink against a real InfluxDB 1.6: it
// starts influxd and a chronostream binary whose config file has one
// influxdb sink, then measures
//
//  1. backlog catch-up: with the sink paused, -backlog events are ingested;
//     the sink is resumed and timed until InfluxDB holds every point;
//
//  2. end-to-end latency at a steady -rate: batches of -batch events are
//     written every batch/rate seconds for -duration; a poller asks InfluxDB
//     every -poll for the highest event number visible (the sink delivers in
//     log order, so every batch up to it is visible) and each batch's latency
//     is the first poll that saw it minus its send time (so it includes up to
//     one poll interval and one query of error).
//
//     go build -o /tmp/chronostream ./cmd/chronostream
//     go run ./bench/sink -chronostream /tmp/chronostream
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chronostream/chronostream/bench/internal/peers"
)

func main() {
	bin := flag.String("chronostream", "", "chronostream binary")
	backlog := flag.Int("backlog", 300_000, "events ingested while the sink is paused, then caught up")
	rate := flag.Int("rate", 10_000, "events per second in the latency phase")
	batch := flag.Int("batch", 100, "events per write request in the latency phase")
	dur := flag.Duration("duration", 20*time.Second, "length of the latency phase")
	poll := flag.Duration("poll", 20*time.Millisecond, "how often InfluxDB is asked what it holds")
	batchAge := flag.String("batch-age", "200ms", "the sink's batch_age")
	batchEvents := flag.Int("batch-events", 5000, "the sink's batch_events")
	gzipOn := flag.Bool("gzip", true, "the sink's gzip")
	keep := flag.Bool("keep", false, "keep the data directories")
	flag.Parse()

	root, err := os.MkdirTemp("", "bench-sink-")
	if err != nil {
		log.Fatal(err)
	}
	if !*keep {
		defer os.RemoveAll(root)
	}
	influx, err := peers.Start(peers.InfluxDB(), root)
	if err != nil {
		log.Fatal(err)
	}
	defer influx.Stop()
	conf := filepath.Join(root, "chronostream.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`sinks:
  - name: bench
    type: influxdb
    chronicle: bench
    batch_age: %s
    batch_events: %d
    settings: {url: %q, gzip: %t}
`, *batchAge, *batchEvents, influx.Base+"/write?db="+peers.DB, *gzipOn)), 0o644); err != nil {
		log.Fatal(err)
	}
	cs, err := peers.Start(&peers.System{Name: "chronostream", Label: "chronostream", Ready: "/ready",
		Command: func(dir string, port int) (*exec.Cmd, error) {
			return exec.Command(*bin, "serve", "--http", fmt.Sprintf("127.0.0.1:%d", port), "--graphite", "", "--forward", "",
				"--data", dir, "--log-level", "warn", "--config", conf), nil
		}}, root)
	if err != nil {
		log.Fatal(err)
	}
	defer cs.Stop()

	// 1. Backlog catch-up.
	must(peers.HTTPDo("POST", cs.Base+"/api/v1/sinks/bench/pause", nil))
	const chunk = 5000
	t0 := time.Now().UnixNano()
	for i := 0; i < *backlog; i += chunk {
		var b strings.Builder
		for j := i; j < min(i+chunk, *backlog); j++ {
			fmt.Fprintf(&b, "backlog,host=h%d usage=%d.5,n=%di %d\n", j%100, j%97, j, t0+int64(j))
		}
		must(peers.HTTPDo("POST", cs.Base+"/write?db=bench", strings.NewReader(b.String())))
	}
	log.Printf("backlog of %d events ingested; resuming the sink", *backlog)
	start := time.Now()
	must(peers.HTTPDo("POST", cs.Base+"/api/v1/sinks/bench/resume", nil))
	// The sink's own count, not a query: counting in InfluxDB every few
	// milliseconds would slow down the writes being measured.
	for delivered(cs.Base) < int64(*backlog) {
		time.Sleep(10 * time.Millisecond)
	}
	catchUp := time.Since(start)
	if n := count(influx.Base, "SELECT count(n) FROM backlog"); n != int64(*backlog) {
		log.Fatalf("InfluxDB holds %d backlog points, want %d", n, *backlog)
	}

	// 2. Latency at a steady rate.
	var (
		mu   sync.Mutex
		sent = map[int64]time.Time{} // batch's last event number → send time
		lat  []time.Duration
	)
	stop := make(chan struct{})
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		for {
			select {
			case <-stop:
				return
			case <-time.After(*poll):
			}
			m := maxN(influx.Base)
			now := time.Now()
			mu.Lock()
			for k, at := range sent {
				if k <= m {
					lat = append(lat, now.Sub(at))
					delete(sent, k)
				}
			}
			mu.Unlock()
		}
	}()
	interval := time.Duration(float64(time.Second) * float64(*batch) / float64(*rate))
	next := time.Now()
	end := next.Add(*dur)
	n := int64(0)
	behind := 0
	for time.Now().Before(end) {
		var b strings.Builder
		now := time.Now().UnixNano()
		for j := 0; j < *batch; j++ {
			fmt.Fprintf(&b, "live,host=h%d usage=%d.5,n=%di %d\n", n%100, n%97, n, now+int64(j))
			n++
		}
		sendAt := time.Now()
		must(peers.HTTPDo("POST", cs.Base+"/write?db=bench", strings.NewReader(b.String())))
		mu.Lock()
		sent[n-1] = sendAt
		mu.Unlock()
		next = next.Add(interval)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		} else {
			behind++
		}
	}
	elapsed := time.Since(end.Add(-*dur))
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		left := len(sent)
		mu.Unlock()
		if left == 0 {
			break
		}
	}
	close(stop)
	<-pollDone
	liveCount := count(influx.Base, "SELECT count(n) FROM live")
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	status, _ := peers.HTTPDo("GET", cs.Base+"/api/v1/sinks/bench", nil)
	fmt.Printf("| measure | value |\n|---|---|\n")
	fmt.Printf("| backlog catch-up | %d events in %.2f s = **%.0f events/s** |\n", *backlog, catchUp.Seconds(), float64(*backlog)/catchUp.Seconds())
	fmt.Printf("| live ingest rate achieved | %.0f events/s (%d events in %.1f s, %d sends late) |\n", float64(n)/elapsed.Seconds(), n, elapsed.Seconds(), behind)
	fmt.Printf("| ingest → visible in InfluxDB | p50 %v, p99 %v, max %v (%d batches; poll every %v) |\n",
		pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), pct(1).Round(time.Millisecond), len(lat), *poll)
	fmt.Printf("| points in InfluxDB / events sent | %d / %d |\n", liveCount, n)
	fmt.Printf("| sink settings | batch_age %s, batch_events %d, gzip %t |\n", *batchAge, *batchEvents, *gzipOn)
	fmt.Fprintf(os.Stderr, "sink status: %s\n", status)
}

func must(_ []byte, err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func query(base, q string) [][]json.RawMessage {
	v := url.Values{"db": {peers.DB}, "q": {q}}
	b, err := peers.HTTPDo("GET", base+"/query?"+v.Encode(), nil)
	if err != nil {
		log.Fatal(err)
	}
	var r struct {
		Results []struct {
			Error  string
			Series []struct{ Values [][]json.RawMessage }
		}
	}
	if err := json.Unmarshal(b, &r); err != nil || len(r.Results) == 0 {
		log.Fatalf("query %q: %v: %.200s", q, err, b)
	}
	if r.Results[0].Error != "" {
		log.Fatalf("query %q: %s", q, r.Results[0].Error)
	}
	if len(r.Results[0].Series) == 0 {
		return nil
	}
	return r.Results[0].Series[0].Values
}

func count(base, q string) int64 {
	v := query(base, q)
	if len(v) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(string(v[0][1]), 10, 64)
	return n
}

// delivered is the sink's count of events InfluxDB accepted.
func delivered(base string) int64 {
	b, err := peers.HTTPDo("GET", base+"/api/v1/sinks/bench", nil)
	if err != nil {
		log.Fatal(err)
	}
	var st struct{ Delivered int64 }
	if err := json.Unmarshal(b, &st); err != nil {
		log.Fatal(err)
	}
	return st.Delivered
}

// maxN is the highest event number InfluxDB holds in the live phase.
func maxN(base string) int64 {
	v := query(base, "SELECT max(n) FROM live WHERE time > now() - 1m")
	if len(v) == 0 {
		return -1
	}
	n, _ := strconv.ParseInt(string(v[0][1]), 10, 64)
	return n
}
