// Package cpuonly generates the TSBS cpu-only data set as InfluxDB line
// protocol, deterministically from a seed, for the benchmarks under bench/.
package cpuonly

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// The TSBS cpu-only data set: one measurement, ten tags per host, ten float
// fields per line, one line per host every interval.

// FieldNames are the fields of TSBS's cpu measurement, in its order.
var FieldNames = [...]string{
	"usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait",
	"usage_irq", "usage_softirq", "usage_steal", "usage_guest", "usage_guest_nice",
}

// regions and their datacenters, as TSBS's devops generator has them.
var regions = []struct {
	name string
	dcs  []string
}{
	{"us-east-1", []string{"us-east-1a", "us-east-1b", "us-east-1c", "us-east-1e"}},
	{"us-west-1", []string{"us-west-1a", "us-west-1b"}},
	{"us-west-2", []string{"us-west-2a", "us-west-2b", "us-west-2c"}},
	{"eu-west-1", []string{"eu-west-1a", "eu-west-1b", "eu-west-1c"}},
	{"eu-central-1", []string{"eu-central-1a", "eu-central-1b"}},
	{"ap-southeast-1", []string{"ap-southeast-1a", "ap-southeast-1b"}},
	{"ap-southeast-2", []string{"ap-southeast-2a", "ap-southeast-2b"}},
	{"ap-northeast-1", []string{"ap-northeast-1a", "ap-northeast-1c"}},
	{"sa-east-1", []string{"sa-east-1a", "sa-east-1b", "sa-east-1c"}},
}

var (
	oses     = []string{"Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"}
	arches   = []string{"x64", "x86"}
	teams    = []string{"SF", "NYC", "LON", "CHI"}
	services = 20
	versions = 2
	envs     = []string{"production", "staging", "test"}
)

// ticksPerSegment is how many intervals one generation unit covers. Segments
// are generated in parallel: each starts every host's random walk afresh from
// a level derived from (seed, host, segment), so the data is the same whatever
// the number of workers or the size of the pool.
const ticksPerSegment = 320

// Workload describes the data: which hosts, from when, how often, how batched.
type Workload struct {
	Hosts     int           // series groups; one line per host per tick
	Interval  time.Duration // between two lines of one host
	BatchSize int           // lines per request; a multiple of Hosts keeps ticks whole
	Start     time.Time     // timestamp of tick 0
	Seed      uint64

	prefixes [][]byte // "cpu,hostname=...,service_environment=... " per host
}

// NewWorkload fixes every host's tags from the seed.
func NewWorkload(hosts, batchSize int, interval time.Duration, start time.Time, seed uint64) *Workload {
	w := &Workload{Hosts: hosts, Interval: interval, BatchSize: batchSize, Start: start, Seed: seed}
	r := rand.New(rand.NewPCG(seed, 0x7473627321))
	w.prefixes = make([][]byte, hosts)
	for h := range hosts {
		reg := regions[r.IntN(len(regions))]
		b := []byte("cpu,hostname=host_")
		b = strconv.AppendInt(b, int64(h), 10)
		b = append(b, ",region="...)
		b = append(b, reg.name...)
		b = append(b, ",datacenter="...)
		b = append(b, reg.dcs[r.IntN(len(reg.dcs))]...)
		b = append(b, ",rack="...)
		b = strconv.AppendInt(b, int64(r.IntN(100)), 10)
		b = append(b, ",os="...)
		b = append(b, oses[r.IntN(len(oses))]...)
		b = append(b, ",arch="...)
		b = append(b, arches[r.IntN(len(arches))]...)
		b = append(b, ",team="...)
		b = append(b, teams[r.IntN(len(teams))]...)
		b = append(b, ",service="...)
		b = strconv.AppendInt(b, int64(r.IntN(services)), 10)
		b = append(b, ",service_version="...)
		b = strconv.AppendInt(b, int64(r.IntN(versions)), 10)
		b = append(b, ",service_environment="...)
		b = append(b, envs[r.IntN(len(envs))]...)
		b = append(b, ' ')
		w.prefixes[h] = b
	}
	return w
}

// Batch is one request body and the number of lines in it.
type Batch struct {
	Body  []byte
	Lines int
}

// linesPerSegment is the number of lines one segment produces.
func (w *Workload) linesPerSegment() int { return ticksPerSegment * w.Hosts }

// segment returns the lines of ticks [seg*ticksPerSegment, (seg+1)*ticksPerSegment),
// host by host within a tick, in one buffer, with the offset where each line ends.
func (w *Workload) segment(seg int, sizeHint int) (buf []byte, ends []int) {
	r := rand.New(rand.NewPCG(w.Seed, uint64(seg)+1))
	// Every host's ten values start at a level fixed by (seed, host, segment)
	// and walk by normally distributed steps, clamped to [0, 100].
	level := make([]float64, w.Hosts*len(FieldNames))
	for i := range level {
		level[i] = r.Float64() * 100
	}
	buf = make([]byte, 0, sizeHint)
	ends = make([]int, 0, w.linesPerSegment())
	for t := 0; t < ticksPerSegment; t++ {
		tick := seg*ticksPerSegment + t
		ts := w.Start.Add(time.Duration(tick) * w.Interval).UnixNano()
		for h := 0; h < w.Hosts; h++ {
			buf = append(buf, w.prefixes[h]...)
			for f := range FieldNames {
				v := &level[h*len(FieldNames)+f]
				*v = min(100, max(0, *v+r.NormFloat64()))
				if f > 0 {
					buf = append(buf, ',')
				}
				buf = append(buf, FieldNames[f]...)
				buf = append(buf, '=')
				buf = appendCenti(buf, int(math.Round(*v*100)))
			}
			buf = append(buf, ' ')
			buf = strconv.AppendInt(buf, ts, 10)
			buf = append(buf, '\n')
			ends = append(ends, len(buf))
		}
	}
	return buf, ends
}

// appendCenti appends c/100 with two decimals (5810 → "58.10"), for 0 ≤ c.
func appendCenti(b []byte, c int) []byte {
	b = strconv.AppendInt(b, int64(c/100), 10)
	return append(b, '.', byte('0'+c%100/10), byte('0'+c%10))
}

// Pool holds pre-generated batches, the first ones first: batch i always
// holds the same lines, so every system is sent the very same bytes.
type Pool struct {
	w       *Workload
	mu      sync.Mutex
	batches []Batch
	segs    int // segments generated so far
	carry   []byte
	carryN  int
	bytes   int64
	lineLen int // mean line length seen in the first segment
}

func NewPool(w *Workload) *Pool { return &Pool{w: w} }

// Batches returns the batches generated so far.
func (p *Pool) Batches() []Batch {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.batches
}

// Bytes is the size of the batches generated so far.
func (p *Pool) Bytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bytes
}

// MeanLineBytes estimates a line's size (from a probe if nothing is generated yet).
func (p *Pool) MeanLineBytes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lineLen == 0 {
		buf, ends := p.w.segment(0, 0)
		p.lineLen = len(buf) / len(ends)
	}
	return p.lineLen
}

// Ensure generates batches until the pool holds at least n, using every core.
// Segments are cut into batches in order; a batch never spans two requests'
// worth of lines, and a segment's leftover lines start the next batch.
func (p *Pool) Ensure(n int) {
	lineLen := p.MeanLineBytes()
	p.mu.Lock()
	defer p.mu.Unlock()
	segLines := p.w.linesPerSegment()
	for len(p.batches) < n {
		missing := (n-len(p.batches))*p.w.BatchSize - p.carryN
		segs := max(1, (missing+segLines-1)/segLines)
		workers := min(segs, runtime.GOMAXPROCS(0))
		type out struct {
			buf  []byte
			ends []int
		}
		outs := make([]out, segs)
		var wg sync.WaitGroup
		next := make(chan int)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					buf, ends := p.w.segment(p.segs+i, segLines*(lineLen+8))
					outs[i] = out{buf, ends}
				}
			}()
		}
		for i := range segs {
			next <- i
		}
		close(next)
		wg.Wait()
		for _, o := range outs {
			p.cut(o.buf, o.ends)
		}
		p.segs += segs
	}
}

// cut appends whole batches of the segment's lines, keeping the rest as carry.
func (p *Pool) cut(buf []byte, ends []int) {
	from := 0 // byte offset in buf of the first line not yet in a batch
	i := 0    // index in ends of the first line not yet in a batch
	if p.carryN > 0 {
		need := p.w.BatchSize - p.carryN
		if need > len(ends) {
			p.carry = append(p.carry, buf...)
			p.carryN += len(ends)
			return
		}
		body := append(p.carry, buf[:ends[need-1]]...)
		p.add(Batch{Body: body, Lines: p.w.BatchSize})
		from, i = ends[need-1], need
		p.carry, p.carryN = nil, 0
	}
	for ; i+p.w.BatchSize <= len(ends); i += p.w.BatchSize {
		end := ends[i+p.w.BatchSize-1]
		// A batch shares the segment's buffer (and keeps it alive, as the
		// segment's other batches do anyway).
		p.add(Batch{Body: buf[from:end:end], Lines: p.w.BatchSize})
		from = end
	}
	if i < len(ends) {
		p.carry = append([]byte(nil), buf[from:]...)
		p.carryN = len(ends) - i
	}
}

func (p *Pool) add(b Batch) {
	p.batches = append(p.batches, b)
	p.bytes += int64(len(b.Body))
}

// LineTime returns the timestamp of line i of the stream (the same in every pool).
func (w *Workload) LineTime(i int) time.Time {
	return w.Start.Add(time.Duration(i/w.Hosts) * w.Interval)
}

// Workload is the workload the pool's batches come from.
func (p *Pool) Workload() *Workload { return p.w }
