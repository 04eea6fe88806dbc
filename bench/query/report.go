package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// report prints the markdown table: per query type, each system's median
// and p99 latency and chronostream's ratio to InfluxDB (below 1: faster);
// then loading, memory and disk.
func report(out io.Writer, c config, lines int, runs []*run, results []typeResult) {
	fmt.Fprintf(out, "TSBS cpu-only, %d hosts × %v at %v (%d lines, %d values); %d measured instances per query type after %d warm-up ones.\n\n",
		c.hosts, c.span, c.interval, lines, lines*10, c.queries, c.warmup)
	fmt.Fprint(out, "| query type |")
	for _, r := range runs {
		fmt.Fprintf(out, " %s p50 | %s p99 |", r.sys.Label, r.sys.Label)
	}
	fmt.Fprintln(out, " ratio p50 | ratio p99 | rows (InfluxDB) | answers ≠ InfluxDB | errors |")
	fmt.Fprint(out, "|---|")
	fmt.Fprint(out, strings.Repeat("---:|---:|", len(runs)))
	fmt.Fprintln(out, "---:|---:|---:|---:|---:|")
	var notes []string
	for _, res := range results {
		fmt.Fprintf(out, "| %s |", res.name)
		for j := range runs {
			fmt.Fprintf(out, " %s | %s |", ms(percentile(res.latencies[j], 0.5)), ms(percentile(res.latencies[j], 0.99)))
		}
		errs := make([]string, len(runs))
		for j, r := range runs {
			errs[j] = fmt.Sprint(res.errors[j])
			if res.firstErr[j] != "" {
				notes = append(notes, fmt.Sprintf("%s on %s: first error: %s", res.name, r.sys.Label, oneLine(res.firstErr[j])))
			}
		}
		fmt.Fprintf(out, " %s | %s | %d | %d | %s |\n",
			ratio(res.latencies[len(runs)-1], res.latencies[0], 0.5), ratio(res.latencies[len(runs)-1], res.latencies[0], 0.99),
			res.rows, res.mismatches, strings.Join(errs, " / "))
		if res.firstDiff != "" {
			notes = append(notes, fmt.Sprintf("%s: first answer unlike InfluxDB's: %s", res.name, oneLine(res.firstDiff)))
		}
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| system | load (lines/s) | queryable after | peak RSS | disk after |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|")
	for _, r := range runs {
		rate := float64(lines) / r.loadTime.Seconds()
		fmt.Fprintf(out, "| %s | %.0f | %v | %.0f MiB | %.0f MiB |\n", r.sys.Label, rate,
			r.readyTime.Round(100*time.Millisecond), float64(r.peakRSS)/(1<<20), float64(r.disk)/(1<<20))
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Latency is a GET /query to the last byte of the answer, one query at a time, the systems alternating. Ratio = chronostream ÷ InfluxDB (below 1: chronostream is faster). Queryable after = from the first write until SELECT count(usage_user) FROM cpu counts every line.")
	for _, n := range notes {
		fmt.Fprintln(out, "- "+n)
	}
}

func ms(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

func ratio(a, b []time.Duration, p float64) string {
	x, y := percentile(a, p), percentile(b, p)
	if x == 0 || y == 0 {
		return "–"
	}
	return fmt.Sprintf("**%.2f×**", float64(x)/float64(y))
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
