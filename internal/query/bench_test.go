package query

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/query/tsdb"
)

// The TSBS cpu-only data set: 100 hosts with 10 tags, 10 fields every 10 s,
// over one day, held in the index as the server holds it.
const (
	tsbsHosts = 100
	tsbsStart = int64(1_700_000_000) * int64(time.Second)
	tsbsEnd   = tsbsStart + int64(24*time.Hour)
)

var tsbsFields = []string{"usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait",
	"usage_irq", "usage_softirq", "usage_steal", "usage_guest", "usage_guest_nice"}

var (
	tsbsOnce  sync.Once
	tsbsDB    *tsdb.DB
	tsbsBytes float64 // heap bytes per point of the index
)

func tsbsData(b *testing.B) *tsdb.DB {
	tsbsOnce.Do(func() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r := rand.New(rand.NewPCG(1, 1))
		db := tsdb.NewDB("benchmark", tsdb.DefaultRollups)
		db.Lock()
		tags := make([]map[string]string, tsbsHosts)
		for h := range tags {
			tags[h] = map[string]string{"hostname": fmt.Sprintf("host_%d", h), "region": fmt.Sprintf("r%d", h%3),
				"datacenter": fmt.Sprintf("dc%d", h%7), "rack": fmt.Sprint(h % 10), "os": "Ubuntu16.04", "arch": "x64",
				"team": "SF", "service": fmt.Sprint(h % 19), "service_version": "1", "service_environment": "production"}
		}
		vals := make([]float64, tsbsHosts*len(tsbsFields))
		for t := tsbsStart; t < tsbsEnd; t += int64(10 * time.Second) {
			for h := range tsbsHosts {
				fields := make(map[string]event.Value, len(tsbsFields))
				for i, f := range tsbsFields {
					v := &vals[h*len(tsbsFields)+i]
					*v = min(100, max(0, *v+r.Float64()*10-5))
					fields[f] = event.Float(*v)
				}
				db.Insert("cpu", tags[h], t, fields)
			}
		}
		for _, s := range db.Measurement("cpu").Series() {
			for _, f := range tsbsFields {
				s.Column(f).Prepare()
			}
		}
		db.Unlock()
		runtime.GC()
		runtime.ReadMemStats(&after)
		tsbsBytes = float64(after.HeapAlloc-before.HeapAlloc) / float64(db.Points())
		tsbsDB = db
	})
	return tsbsDB
}

func hosts(r *rand.Rand, n int) string {
	var parts []string
	for _, h := range r.Perm(tsbsHosts)[:n] {
		parts = append(parts, fmt.Sprintf("hostname = 'host_%d'", h))
	}
	return "(" + strings.Join(parts, " OR ") + ")"
}

// span picks a random range of length d inside the day.
func span(r *rand.Rand, d time.Duration) string {
	lo := tsbsStart + r.Int64N(tsbsEnd-tsbsStart-int64(d))
	return fmt.Sprintf("time >= %d AND time < %d", lo, lo+int64(d))
}

// BenchmarkTSBS runs the TSBS InfluxQL query types over the index (no
// HTTP, no JSON); bench/ compares the whole server with InfluxDB.
func BenchmarkTSBS(b *testing.B) {
	db := tsbsData(b)
	e := &Engine{Index: memSource{"benchmark": db}, Catalog: memCatalog{}}
	queries := map[string]func(r *rand.Rand) string{
		"single-groupby-1-1-1": func(r *rand.Rand) string {
			return fmt.Sprintf("SELECT max(usage_user) FROM cpu WHERE %s AND %s GROUP BY time(1m)", hosts(r, 1), span(r, time.Hour))
		},
		"single-groupby-5-8-1": func(r *rand.Rand) string {
			return fmt.Sprintf("SELECT max(usage_user), max(usage_system), max(usage_idle), max(usage_nice), max(usage_iowait) FROM cpu WHERE %s AND %s GROUP BY time(1m)", hosts(r, 8), span(r, time.Hour))
		},
		"cpu-max-all-8": func(r *rand.Rand) string {
			var calls []string
			for _, f := range tsbsFields {
				calls = append(calls, "max("+f+")")
			}
			return fmt.Sprintf("SELECT %s FROM cpu WHERE %s AND %s GROUP BY time(1h)", strings.Join(calls, ", "), hosts(r, 8), span(r, 8*time.Hour))
		},
		"double-groupby-1": func(r *rand.Rand) string {
			return fmt.Sprintf("SELECT mean(usage_user) FROM cpu WHERE %s GROUP BY time(1h), hostname", span(r, 12*time.Hour))
		},
		"lastpoint": func(*rand.Rand) string {
			return `SELECT * FROM cpu GROUP BY "hostname" ORDER BY time DESC LIMIT 1`
		},
		"high-cpu-1": func(r *rand.Rand) string {
			return fmt.Sprintf("SELECT * FROM cpu WHERE usage_user > 90.0 AND %s AND %s", span(r, 12*time.Hour), hosts(r, 1))
		},
	}
	for _, name := range []string{"single-groupby-1-1-1", "single-groupby-5-8-1", "cpu-max-all-8", "double-groupby-1", "lastpoint", "high-cpu-1"} {
		b.Run(name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(2, 2))
			qs := make([]string, 64)
			for i := range qs {
				qs[i] = queries[name](r)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				res, err := e.Execute(context.Background(), qs[i%len(qs)], "benchmark")
				if err != nil || res[0].Err != nil {
					b.Fatalf("%s: %v %v", qs[i%len(qs)], err, res)
				}
			}
			b.ReportMetric(tsbsBytes, "index-B/point")
		})
	}
}
