// Command tsbs runs the TSBS cpu-only ingest workload against chronostream,
// InfluxDB 1.6 and VictoriaMetrics side by side, in one run on this machine,
// and prints a markdown table with chronostream's ratio to each peer.
//
// Each system is started by this program on loopback with its data in a
// fresh directory on local disk, warmed up with the first batches of the
// stream (which also creates its 10,000 series), then written to for a fixed
// duration (or a fixed number of lines) by concurrent writers over InfluxDB
// 1.x line protocol (POST /write?db=benchmark&precision=ns), then counted
// and stopped. All the batches are generated in memory before any timing,
// and every system is sent the very same bytes.
//
//	bash bench/tsbs/install.sh                     # influxdb, victoria-metrics
//	go build -o /tmp/chronostream ./cmd/chronostream
//	go run ./bench/tsbs -chronostream /tmp/chronostream [-duration 20s] [-only influxdb,victoriametrics,chronostream]
package main

import (
	"flag"
	"fmt"
	"github.com/chronostream/chronostream/bench/internal/cpuonly"
	"github.com/chronostream/chronostream/bench/internal/peers"
	"log"
	"os"
	"strconv"
	"strings"
	"time"
)

type config struct {
	hosts, batch, writers int
	interval              time.Duration
	duration              time.Duration
	lines                 int // fixed number of timed lines (0: run for duration)
	warmupLines           int
	headroom              float64
	maxGenBytes           int64
	dir                   string
	keep                  bool
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("tsbs: ")
	var c config
	bin := flag.String("chronostream", "", "chronostream binary to start (go build -o /tmp/chronostream ./cmd/chronostream)")
	only := flag.String("only", "influxdb,victoriametrics,chronostream", "systems to run, comma-separated, in this order")
	flag.DurationVar(&c.duration, "duration", 20*time.Second, "how long each system is written to (after the warm-up)")
	flag.IntVar(&c.lines, "lines", 0, "write this many lines to each system instead of running for -duration")
	flag.IntVar(&c.hosts, "hosts", 1000, "hosts (10 series each: one per field)")
	flag.DurationVar(&c.interval, "interval", 10*time.Second, "time between two lines of one host")
	flag.IntVar(&c.batch, "batch", 5000, "lines per request")
	flag.IntVar(&c.writers, "workers", 4, "concurrent writers, one connection each")
	flag.IntVar(&c.warmupLines, "warmup-lines", 500_000, "lines written to each system before timing (the first of the stream)")
	flag.Float64Var(&c.headroom, "headroom", 3, "batches generated for a -duration run: warm-up rate × duration × this")
	maxGen := flag.String("max-gen-mem", "", "most memory for generated batches, e.g. 6GiB (default 40% of MemAvailable)")
	seed := flag.Uint64("seed", 123, "seed of the generated data")
	flag.StringVar(&c.dir, "dir", "", "directory for the servers' data, on local disk (default: a new one under $TMPDIR)")
	flag.BoolVar(&c.keep, "keep", false, "keep the servers' data directories and logs")
	flag.Parse()

	if c.hosts <= 0 || c.batch <= 0 || c.writers <= 0 || c.interval <= 0 || c.warmupLines < 0 || c.lines < 0 {
		log.Fatal("-hosts, -batch, -workers and -interval must be positive")
	}
	if c.lines == 0 && c.duration <= 0 {
		log.Fatal("give a positive -duration or -lines")
	}
	c.maxGenBytes = memAvailable() * 4 / 10
	if *maxGen != "" {
		n, err := parseSize(*maxGen)
		if err != nil {
			log.Fatalf("-max-gen-mem: %v", err)
		}
		c.maxGenBytes = n
	}

	all := map[string]*peers.System{
		"influxdb":        peers.InfluxDB(),
		"victoriametrics": peers.VictoriaMetrics(),
		"chronostream":    peers.Chronostream(*bin),
	}
	var systems []*peers.System
	for _, name := range strings.Split(*only, ",") {
		s, ok := all[strings.TrimSpace(name)]
		if !ok {
			log.Fatalf("-only: unknown system %q (influxdb, victoriametrics, chronostream)", name)
		}
		systems = append(systems, s)
	}

	root := c.dir
	if root == "" {
		var err error
		if root, err = os.MkdirTemp("", "chronostream-tsbs-"); err != nil {
			log.Fatal(err)
		}
		if !c.keep {
			defer os.RemoveAll(root)
		}
	}

	// The stream starts far enough in the past that its last possible line
	// (the memory cap's worth) is still before now.
	pool := cpuonly.NewPool(cpuonly.NewWorkload(c.hosts, c.batch, c.interval, time.Time{}, *seed))
	lineBytes := pool.MeanLineBytes()
	maxBatches := max(1, int(c.maxGenBytes/int64(lineBytes*c.batch)))
	warmBatches := ceilDiv(c.warmupLines, c.batch)
	if c.lines > 0 {
		maxBatches = warmBatches + ceilDiv(c.lines, c.batch)
	}
	if maxBatches <= warmBatches {
		log.Fatalf("-max-gen-mem %d bytes holds only %d batches: fewer than the warm-up's %d", c.maxGenBytes, maxBatches, warmBatches)
	}
	span := time.Duration(maxBatches*c.batch/c.hosts+1) * c.interval
	start := time.Now().Add(-span - time.Hour).Truncate(time.Hour)
	pool = cpuonly.NewPool(cpuonly.NewWorkload(c.hosts, c.batch, c.interval, start, *seed))

	log.Printf("%d hosts × 10 fields every %v, %d lines a request, %d writers; ~%d bytes a line; data from %s; up to %d batches (%.1f GiB) in memory",
		c.hosts, c.interval, c.batch, c.writers, lineBytes, start.UTC().Format(time.RFC3339), maxBatches,
		float64(maxBatches)*float64(lineBytes*c.batch)/(1<<30))
	t0 := time.Now()
	pool.Ensure(warmBatches)
	log.Printf("generated %d warm-up batches in %v", warmBatches, time.Since(t0).Round(time.Millisecond))

	var results []*result
	for _, s := range systems {
		r := benchmark(s, pool, c, warmBatches, maxBatches, root)
		results = append(results, r)
	}
	report(os.Stdout, results, c, lineBytes)
}

// result is one system's row.
type result struct {
	sys     *peers.System
	failed  string // why it has no measurement
	warm    load
	run     load
	peakRSS int64
	// CPU time used during the timed part by the server, by this program
	// and by every other process on the machine.
	serverCPU, clientCPU, otherCPU time.Duration
	disk                           int64
	stored                         int64
	countErr                       error
	stopErr                        error
}

func (r *result) acked() int64 { return r.warm.lines + r.run.lines }

// benchmark starts one system, warms it up, writes to it, counts, stops it.
func benchmark(s *peers.System, pool *cpuonly.Pool, c config, warmBatches, maxBatches int, root string) *result {
	r := &result{sys: s}
	log.Printf("%s: starting", s.Label)
	p, err := peers.Start(s, root)
	if err != nil {
		r.failed = err.Error()
		log.Printf("%s: %v", s.Label, err)
		return r
	}
	defer func() {
		r.stopErr = p.Stop()
		r.disk = peers.DiskBytes(p.DataDir)
		if !c.keep {
			_ = os.RemoveAll(p.DataDir)
		}
	}()
	writeURL := p.Base + "/write?db=" + peers.DB + "&precision=ns"

	// Warm-up: the first batches of the stream, all sent. They create the
	// series, and their rate sizes the pool for a -duration run.
	r.warm = drive(writeURL, pool.Batches()[:warmBatches], c.writers, 0)
	log.Printf("%s: warm-up: %d lines acknowledged in %v (%.0f lines/s), %d errors",
		s.Label, r.warm.lines, r.warm.elapsed.Round(time.Millisecond), r.warm.rate(), r.warm.errors)
	if r.warm.lines == 0 && r.warm.errors > 0 {
		r.failed = "every warm-up write failed: " + r.warm.firstErr
		r.peakRSS = p.PeakRSS()
		r.stored, r.countErr = s.Count(p.Base, pool.Workload(), warmBatches*c.batch)
		return r
	}

	need := maxBatches
	if c.lines == 0 {
		est := int(r.warm.rate()*c.duration.Seconds()*c.headroom)/c.batch + 1
		need = min(maxBatches, warmBatches+est)
	}
	if have := len(pool.Batches()); have < need {
		t0 := time.Now()
		log.Printf("%s: generating batches %d..%d (not timed)", s.Label, have, need)
		pool.Ensure(need)
		log.Printf("%s: generated in %v; %.1f GiB of batches in memory", s.Label,
			time.Since(t0).Round(time.Millisecond), float64(pool.Bytes())/(1<<30))
	}
	batches := pool.Batches()[warmBatches:need]
	dur := c.duration
	if c.lines > 0 {
		dur = 0
	}
	log.Printf("%s: writing", s.Label)
	serverCPU, clientCPU, machineCPU := p.CPUTime(), peers.SelfCPUTime(), peers.MachineCPUTime()
	r.run = drive(writeURL, batches, c.writers, dur)
	r.serverCPU, r.clientCPU = p.CPUTime()-serverCPU, peers.SelfCPUTime()-clientCPU
	r.otherCPU = max(0, peers.MachineCPUTime()-machineCPU-r.serverCPU-r.clientCPU)
	r.peakRSS = p.PeakRSS()
	log.Printf("%s: %d lines acknowledged in %v (%.0f lines/s), %d errors",
		s.Label, r.run.lines, r.run.elapsed.Round(time.Millisecond), r.run.rate(), r.run.errors)
	if r.run.ranOut {
		log.Printf("%s: the generated batches ran out before %v (raise -max-gen-mem or -headroom)", s.Label, c.duration)
	}

	// Count what the server stored of the lines sent (warm-up included). A
	// server may make writes visible a little after answering them: poll
	// until the count reaches what was acknowledged or stops moving.
	sent := warmBatches*c.batch + int(r.run.requests+r.run.errors)*c.batch
	var last int64 = -1
	for i := 0; i < 30; i++ {
		r.stored, r.countErr = s.Count(p.Base, pool.Workload(), sent)
		if r.countErr != nil || r.stored >= r.acked() || (r.stored == last && i >= 4) {
			break
		}
		last = r.stored
		time.Sleep(500 * time.Millisecond)
	}
	return r
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// memAvailable is MemAvailable from /proc/meminfo (4 GiB if unreadable).
func memAvailable() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemAvailable:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					return kb << 10
				}
			}
		}
	}
	return 4 << 30
}

// parseSize reads 512MiB, 6GiB, 2GB or a plain number of bytes.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return int64(f * float64(mult)), nil
}
