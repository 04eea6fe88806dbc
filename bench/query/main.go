// Command query compares InfluxQL query latency of chronostream and InfluxDB
// 1.6 on the same data, in one run on this machine: TSBS cpu-only, 100
// hosts × 1 day at 10 s (864,000 lines × 10 fields), loaded into both over
// line protocol, then the TSBS query types single-groupby-1-1-1,
// single-groupby-5-8-1, cpu-max-all-8, double-groupby-1, lastpoint and
// high-cpu-1 (the InfluxQL TSBS generates for influx), the same random
// instances for both, each answer checked against InfluxDB's.
//
//	go build -o /tmp/chronostream ./cmd/chronostream
//	go run ./bench/query -chronostream /tmp/chronostream [-queries 50]
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronostream/chronostream/bench/internal/cpuonly"
	"github.com/chronostream/chronostream/bench/internal/peers"
	"github.com/chronostream/chronostream/internal/testutil/jsondiff"
)

type config struct {
	hosts     int
	span      time.Duration
	interval  time.Duration
	queries   int
	warmup    int
	workers   int
	seed      uint64
	dir       string
	keep      bool
	readyWait time.Duration
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("query: ")
	var c config
	bin := flag.String("chronostream", "", "chronostream binary to start (go build -o /tmp/chronostream ./cmd/chronostream)")
	flag.IntVar(&c.hosts, "hosts", 100, "hosts (TSBS scale)")
	flag.DurationVar(&c.span, "span", 24*time.Hour, "time the data covers")
	flag.DurationVar(&c.interval, "interval", 10*time.Second, "time between two lines of one host")
	flag.IntVar(&c.queries, "queries", 50, "measured random instances of each query type")
	flag.IntVar(&c.warmup, "warmup", 5, "instances of each type run first and not measured")
	flag.IntVar(&c.workers, "workers", 4, "concurrent writers while loading")
	flag.Uint64Var(&c.seed, "seed", 123, "seed of the data and of the query instances")
	flag.StringVar(&c.dir, "dir", "", "directory for the servers' data, on local disk (default: a new one under $TMPDIR)")
	flag.BoolVar(&c.keep, "keep", false, "keep the servers' data directories and logs")
	flag.DurationVar(&c.readyWait, "ready-wait", 10*time.Minute, "how long to wait for a server to count every loaded line")
	flag.Parse()
	if c.hosts <= 0 || c.span < time.Hour || c.interval <= 0 || c.queries <= 0 {
		log.Fatal("-hosts, -interval and -queries must be positive, -span at least 1h")
	}
	root := c.dir
	if root == "" {
		var err error
		if root, err = os.MkdirTemp("", "bench-query-"); err != nil {
			log.Fatal(err)
		}
	}
	if !c.keep {
		defer os.RemoveAll(root)
	}

	// The data ends at the last full hour, so every window lies in the past.
	end := time.Now().UTC().Truncate(time.Hour)
	ticks := int(c.span / c.interval)
	ticksPerBatch := max(1, 6000/c.hosts)
	w := cpuonly.NewWorkload(c.hosts, c.hosts*ticksPerBatch, c.interval, end.Add(-time.Duration(ticks)*c.interval), c.seed)
	pool := cpuonly.NewPool(w)
	nBatches := (ticks + ticksPerBatch - 1) / ticksPerBatch
	log.Printf("generating %d lines (%d hosts × %v at %v)", nBatches*w.BatchSize, c.hosts, c.span, c.interval)
	pool.Ensure(nBatches)
	batches := pool.Batches()[:nBatches]
	lines := 0
	for _, b := range batches {
		lines += b.Lines
	}

	systems := []*peers.System{peers.InfluxDB(), peers.Chronostream(*bin)}
	runs := make([]*run, len(systems))
	for i, sys := range systems {
		runs[i] = load(sys, batches, lines, c, root)
		if runs[i].proc == nil {
			log.Fatalf("%s: %s", sys.Label, runs[i].failed)
		}
		if runs[i].failed != "" { // still queried: its errors and answers are reported
			log.Printf("%s: %s", sys.Label, runs[i].failed)
		}
	}
	defer func() {
		for _, r := range runs {
			r.stop()
		}
	}()

	gen := newGenerator(w, end, c.seed)
	var results []typeResult
	for _, qt := range queryTypes {
		results = append(results, measure(qt, gen, runs, c))
	}
	for _, r := range runs {
		r.peakRSS = r.proc.PeakRSS()
		r.stop()
		r.disk = peers.DiskBytes(r.proc.DataDir)
	}
	report(os.Stdout, c, lines, runs, results)
}

// run is one system: started, loaded, then queried.
type run struct {
	sys       *peers.System
	proc      *peers.Proc
	failed    string
	loadTime  time.Duration // until every write was acknowledged
	readyTime time.Duration // until a count over the data saw every line
	peakRSS   int64
	disk      int64
	stopped   bool
}

func (r *run) stop() {
	if r.proc != nil && !r.stopped {
		r.stopped = true
		if err := r.proc.Stop(); err != nil {
			log.Printf("%s: %v", r.sys.Label, err)
		}
	}
}

// load starts the system and writes every batch over /write with
// c.workers writers, then waits until SELECT count(usage_user) FROM cpu
// counts every line: a server that indexes behind its log is measured from
// when its answers are complete.
func load(sys *peers.System, batches []cpuonly.Batch, lines int, c config, root string) *run {
	r := &run{sys: sys}
	log.Printf("%s: starting", sys.Label)
	p, err := peers.Start(sys, root)
	if err != nil {
		r.failed = err.Error()
		return r
	}
	r.proc = p
	writeURL := p.Base + "/write?db=" + peers.DB + "&precision=ns"
	var next atomic.Int64
	var errs atomic.Int64
	var firstErr atomic.Value
	began := time.Now()
	var wg sync.WaitGroup
	for range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(batches) {
					return
				}
				if _, err := peers.HTTPDo("POST", writeURL, strings.NewReader(string(batches[i].Body))); err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	wg.Wait()
	r.loadTime = time.Since(began)
	if n := errs.Load(); n > 0 {
		r.failed = fmt.Sprintf("%d of %d writes failed; first: %v", n, len(batches), firstErr.Load())
		return r
	}
	log.Printf("%s: loaded %d lines in %v", sys.Label, lines, r.loadTime.Round(time.Millisecond))
	deadline := time.Now().Add(c.readyWait)
	for {
		n, err := countLines(p.Base)
		if err == nil && n == lines {
			break
		}
		if err != nil && strings.Contains(err.Error(), "HTTP 404") {
			r.failed = "no InfluxQL /query: " + err.Error()
			return r
		}
		if time.Now().After(deadline) {
			r.failed = fmt.Sprintf("counts %d of %d lines after %v (%v)", n, lines, c.readyWait, err)
			return r
		}
		time.Sleep(200 * time.Millisecond)
	}
	r.readyTime = time.Since(began)
	return r
}

func countLines(base string) (int, error) {
	body, _, err := query(base, "SELECT count(usage_user) FROM cpu")
	if err != nil {
		return 0, err
	}
	docs, err := jsondiff.Decode(body)
	if err != nil || len(docs) != 1 {
		return 0, fmt.Errorf("count: %v: %.200s", err, body)
	}
	var n int
	_, err = fmt.Sscan(fmt.Sprint(dig(docs[0], "results", 0, "series", 0, "values", 0, 1)), &n)
	return n, err
}

// dig walks decoded JSON by keys and indexes, nil when absent.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

var queryClient = &http.Client{Timeout: 5 * time.Minute}

// query sends q as TSBS does (GET /query?db=benchmark&q=…) and returns the
// body and the time to the last byte of the answer.
func query(base, q string) ([]byte, time.Duration, error) {
	u := base + "/query?" + url.Values{"db": {peers.DB}, "q": {q}}.Encode()
	began := time.Now()
	resp, err := queryClient.Get(u)
	if err != nil {
		return nil, 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(began)
	if err != nil {
		return nil, took, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, took, fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, body)
	}
	return body, took, nil
}

// typeResult is one query type's measurements, per system (runs' order).
type typeResult struct {
	name       string
	latencies  [][]time.Duration
	errors     []int
	firstErr   []string
	mismatches int
	firstDiff  string
	rows       int // InfluxDB's rows over the measured instances
}

// measure runs c.warmup then c.queries instances of the type on every
// system, alternating which goes first, and checks each answer against the
// first system's (InfluxDB's).
func measure(qt queryType, gen *generator, runs []*run, c config) typeResult {
	res := typeResult{name: qt.name, latencies: make([][]time.Duration, len(runs)),
		errors: make([]int, len(runs)), firstErr: make([]string, len(runs))}
	rng := gen.rng(qt.name)
	for i := range c.warmup + c.queries {
		q := qt.gen(gen, rng)
		bodies := make([][]byte, len(runs))
		for k := range runs {
			j := (k + i) % len(runs) // alternate the order
			body, took, err := query(runs[j].proc.Base, q)
			if i < c.warmup {
				continue
			}
			if err != nil {
				res.errors[j]++
				if res.firstErr[j] == "" {
					res.firstErr[j] = err.Error()
				}
				continue
			}
			res.latencies[j] = append(res.latencies[j], took)
			bodies[j] = body
		}
		if i < c.warmup || bodies[0] == nil {
			continue
		}
		want, err := jsondiff.Decode(bodies[0])
		if err != nil {
			continue
		}
		res.rows += countRows(want)
		for j := 1; j < len(runs); j++ {
			if bodies[j] == nil {
				continue
			}
			got, err := jsondiff.Decode(bodies[j])
			d := ""
			if err != nil {
				d = err.Error()
			} else if len(got) != len(want) {
				d = fmt.Sprintf("%d JSON documents, want %d", len(got), len(want))
			} else {
				d = jsondiff.Diff("answer", want[0], got[0], 1e-9)
			}
			if d != "" {
				res.mismatches++
				if res.firstDiff == "" {
					res.firstDiff = d + " — query: " + q
				}
			}
		}
	}
	log.Printf("%s: done", qt.name)
	return res
}

func countRows(docs []any) int {
	n := 0
	for _, d := range docs {
		results, _ := dig(d, "results").([]any)
		for _, r := range results {
			series, _ := dig(r, "series").([]any)
			for _, s := range series {
				vals, _ := dig(s, "values").([]any)
				n += len(vals)
			}
		}
	}
	return n
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}
