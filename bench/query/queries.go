package main

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/chronostream/chronostream/bench/internal/cpuonly"
)

// The InfluxQL TSBS's query generator emits for influx, cpu-only use case
// (cmd/tsbs_generate_queries/databases/influx/devops.go): the same text,
// random hosts and random windows inside the data.

type queryType struct {
	name string
	gen  func(g *generator, r *rand.Rand) string
}

var queryTypes = []queryType{
	{"single-groupby-1-1-1", func(g *generator, r *rand.Rand) string { return g.groupByTime(r, 1, 1, time.Hour) }},
	{"single-groupby-5-8-1", func(g *generator, r *rand.Rand) string { return g.groupByTime(r, 8, 5, time.Hour) }},
	{"cpu-max-all-8", func(g *generator, r *rand.Rand) string { return g.maxAllCPU(r, 8) }},
	{"double-groupby-1", func(g *generator, r *rand.Rand) string { return g.groupByTimeAndPrimaryTag(r, 1) }},
	{"lastpoint", func(g *generator, r *rand.Rand) string {
		return `SELECT * from cpu group by "hostname" order by time desc limit 1`
	}},
	{"high-cpu-1", func(g *generator, r *rand.Rand) string { return g.highCPUForHosts(r, 1) }},
}

// generator draws TSBS query instances over the workload's data.
type generator struct {
	hosts      int
	start, end time.Time
	seed       uint64
}

func newGenerator(w *cpuonly.Workload, end time.Time, seed uint64) *generator {
	return &generator{hosts: w.Hosts, start: w.Start, end: end, seed: seed}
}

// rng is the query type's own random source: the same instances whatever
// the other types, for every system.
func (g *generator) rng(name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(g.seed, h.Sum64()))
}

// window is a random [start, start+d) inside the data, at a whole second.
func (g *generator) window(r *rand.Rand, d time.Duration) (string, string) {
	span := g.end.Sub(g.start) - d
	from := g.start
	if span > 0 {
		from = from.Add(time.Duration(r.Int64N(int64(span/time.Second))) * time.Second)
	}
	return from.UTC().Format(time.RFC3339), from.Add(d).UTC().Format(time.RFC3339)
}

func (g *generator) hostWhere(r *rand.Rand, n int) string {
	clauses := make([]string, 0, n)
	for _, h := range r.Perm(g.hosts)[:min(n, g.hosts)] {
		clauses = append(clauses, fmt.Sprintf("hostname = 'host_%d'", h))
	}
	return "(" + strings.Join(clauses, " or ") + ")"
}

func aggs(agg string, n int) []string {
	out := make([]string, n)
	for i := range n {
		out[i] = fmt.Sprintf("%s(%s)", agg, cpuonly.FieldNames[i])
	}
	return out
}

// single-groupby-M-H-1: max of M metrics for H hosts, per minute, over an hour.
func (g *generator) groupByTime(r *rand.Rand, hosts, metrics int, d time.Duration) string {
	from, to := g.window(r, d)
	return fmt.Sprintf("SELECT %s from cpu where %s and time >= '%s' and time < '%s' group by time(1m)",
		strings.Join(aggs("max", metrics), ", "), g.hostWhere(r, hosts), from, to)
}

// cpu-max-all-H: max of every metric for H hosts, per minute, over 8 hours.
func (g *generator) maxAllCPU(r *rand.Rand, hosts int) string {
	from, to := g.window(r, 8*time.Hour)
	return fmt.Sprintf("SELECT %s from cpu where %s and time >= '%s' and time < '%s' group by time(1m)",
		strings.Join(aggs("max", len(cpuonly.FieldNames)), ","), g.hostWhere(r, hosts), from, to)
}

// double-groupby-M: mean of M metrics per host and hour over 12 hours.
func (g *generator) groupByTimeAndPrimaryTag(r *rand.Rand, metrics int) string {
	from, to := g.window(r, 12*time.Hour)
	return fmt.Sprintf("SELECT %s from cpu where time >= '%s' and time < '%s' group by time(1h),hostname",
		strings.Join(aggs("mean", metrics), ", "), from, to)
}

// high-cpu-H: every row of H hosts whose usage_user is above 90 over 12 hours.
func (g *generator) highCPUForHosts(r *rand.Rand, hosts int) string {
	from, to := g.window(r, 12*time.Hour)
	where := ""
	if hosts > 0 {
		where = "and " + g.hostWhere(r, hosts)
	}
	return fmt.Sprintf("SELECT * from cpu where usage_user > 90.0 %s and time >= '%s' and time < '%s'", where, from, to)
}
