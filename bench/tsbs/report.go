package main

import (
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report prints the markdown table, chronostream's ratios and the notes.
func report(out io.Writer, results []*result, c config, lineBytes int) {
	mode := fmt.Sprintf("%v each", c.duration)
	if c.lines > 0 {
		mode = fmt.Sprintf("%s lines each", group(int64(c.lines)))
	}
	fmt.Fprintf(out, "\nTSBS cpu-only over InfluxDB line protocol: %d hosts, 10 tags, 10 float fields, %v interval, "+
		"%d lines a request (~%d bytes a line), %d concurrent writers, %s after %s warm-up lines.\n\n",
		c.hosts, c.interval, c.batch, lineBytes, c.writers, mode, group(int64(c.warmupLines)))
	fmt.Fprintln(out, "| system | lines/s | values/s | p50 write | p99 write | peak RSS | disk after | errors | stored / acknowledged | timed | cores: server / writers / other |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range results {
		if r.run.lines == 0 && r.warm.lines == 0 {
			fmt.Fprintf(out, "| %s | – | – | – | – | %s | %s | %s | %s | – | – |\n",
				r.sys.Label, mib(r.peakRSS), mib(r.disk), errorsCell(r), storedCell(r))
			continue
		}
		fmt.Fprintf(out, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.sys.Label, group(int64(r.run.rate())), group(int64(r.run.rate()*10)),
			ms(r.run.pct(0.50)), ms(r.run.pct(0.99)), mib(r.peakRSS), mib(r.disk),
			errorsCell(r), storedCell(r), timedCell(r), cpuCell(r))
	}

	var cs *result
	for _, r := range results {
		if r.sys.Name == "chronostream" {
			cs = r
		}
	}
	if cs != nil {
		fmt.Fprintln(out)
		for _, r := range results {
			if r == cs {
				continue
			}
			switch {
			case r.run.rate() == 0:
				fmt.Fprintf(out, "- chronostream ÷ %s: n/a (%s has no measurement)\n", r.sys.Label, r.sys.Label)
			case cs.run.rate() == 0:
				fmt.Fprintf(out, "- chronostream ÷ %s: n/a (chronostream has no measurement)\n", r.sys.Label)
			default:
				fmt.Fprintf(out, "- chronostream ÷ %s: **%.2f×** lines/s\n", r.sys.Label, cs.run.rate()/r.run.rate())
			}
		}
	}

	fmt.Fprintln(out, "\nWhat an answer to a write means:")
	for _, r := range results {
		fmt.Fprintf(out, "- %s: %s\n", r.sys.Label, r.sys.Acks)
	}
	var notes []string
	for _, r := range results {
		if r.failed != "" {
			notes = append(notes, fmt.Sprintf("%s: not measured: %s", r.sys.Label, oneLine(r.failed)))
			if r.sys.Name == "chronostream" && strings.Contains(r.failed, "HTTP 404") {
				notes = append(notes, "chronostream: POST /write answers 404: the InfluxDB line protocol endpoint is not in this binary yet")
			}
		} else if r.run.errors > 0 {
			notes = append(notes, fmt.Sprintf("%s: first error: %s", r.sys.Label, oneLine(r.run.firstErr)))
		}
		if r.run.ranOut {
			notes = append(notes, fmt.Sprintf("%s: the generated batches ran out after %v, before %v: its rate is over that time (raise -max-gen-mem or -headroom)",
				r.sys.Label, r.run.elapsed.Round(100*time.Millisecond), c.duration))
		}
		if s := r.run.elapsed.Seconds(); s > 0 && r.otherCPU.Seconds()/s > 0.25 {
			notes = append(notes, fmt.Sprintf("%s: other processes used %.2f of the machine's %d cores while it was timed: "+
				"its numbers are depressed and not comparable with the others'", r.sys.Label, r.otherCPU.Seconds()/s, runtime.NumCPU()))
		}
		if r.countErr != nil {
			notes = append(notes, fmt.Sprintf("%s: counting what it stored failed: %s", r.sys.Label, oneLine(r.countErr.Error())))
		}
		if r.stopErr != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", r.sys.Label, r.stopErr))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(out, "\nNotes:")
		for _, n := range notes {
			fmt.Fprintf(out, "- %s\n", n)
		}
	}
	fmt.Fprintln(out, "\nlines/s and latencies are over the timed part; errors, stored and acknowledged include the warm-up. "+
		"values/s = lines/s × 10. Peak RSS is the server's VmHWM; disk is its data directory after a clean stop. "+
		"Cores are the CPU used on average while timed by the server, by this program's writers, and by every other process "+
		"on the machine (other load skews the comparison: run it on a quiet machine).")
}

// cpuCell is the cores the server and this program used on average while timed.
func cpuCell(r *result) string {
	s := r.run.elapsed.Seconds()
	if s <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f / %.2f / %.2f", r.serverCPU.Seconds()/s, r.clientCPU.Seconds()/s, r.otherCPU.Seconds()/s)
}

func errorsCell(r *result) string {
	n := r.warm.errors + r.run.errors
	if n == 0 {
		return "0"
	}
	kinds := map[string]int64{}
	for k, v := range r.warm.errKinds {
		kinds[k] += v
	}
	for k, v := range r.run.errKinds {
		kinds[k] += v
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		parts = append(parts, fmt.Sprintf("%s × %s", group(kinds[k]), k))
	}
	return strings.Join(parts, ", ")
}

func storedCell(r *result) string {
	if r.countErr != nil {
		return "? / " + group(r.acked())
	}
	mark := "✓"
	if r.stored != r.acked() {
		mark = "✗"
	}
	return fmt.Sprintf("%s / %s %s", group(r.stored), group(r.acked()), mark)
}

func timedCell(r *result) string {
	return fmt.Sprintf("%s lines in %.1f s", group(r.run.lines), r.run.elapsed.Seconds())
}

// group writes n with thousands separators: 1234567 → 1,234,567.
func group(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func mib(n int64) string {
	if n == 0 {
		return "–"
	}
	return fmt.Sprintf("%s MiB", group(n>>20))
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
