package tsdb

import (
	"github.com/chronostream/chronostream/internal/query/fn"
)

// Rollup summarizes a column in buckets of a fixed width (aligned on the
// Unix epoch, as InfluxDB aligns GROUP BY time windows): count, sum, min,
// max, first, last… per bucket (fn.Summary), so that a long range merges a
// few buckets instead of reading every raw point.
type Rollup struct {
	width  int64
	starts []int64 // bucket start times, increasing
	sums   []fn.Summary
}

// Width is the bucket width in ns.
func (r *Rollup) Width() int64 { return r.width }

// truncate returns the start of the bucket holding t.
func (r *Rollup) truncate(t int64) int64 {
	m := t % r.width
	if m < 0 {
		m += r.width
	}
	return t - m
}

// add adds a point at or after every point added before.
func (r *Rollup) add(t int64, v any) {
	b := r.truncate(t)
	if n := len(r.starts); n > 0 && r.starts[n-1] == b {
		r.sums[n-1].Add(fn.Point{Time: t, Value: v})
		return
	}
	r.starts = append(r.starts, b)
	r.sums = append(r.sums, fn.Summary{})
	r.sums[len(r.sums)-1].Add(fn.Point{Time: t, Value: v})
}

func (r *Rollup) reset() { r.starts, r.sums = nil, nil }

// search returns the index of the first bucket starting at or after t.
func (r *Rollup) search(t int64) int {
	lo, hi := 0, len(r.starts)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r.starts[m] < t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// dropFrom removes the buckets starting at or after b.
func (r *Rollup) dropFrom(b int64) {
	i := r.search(b)
	r.starts, r.sums = r.starts[:i], r.sums[:i]
}

// dropBefore removes the buckets starting before b.
func (r *Rollup) dropBefore(b int64) {
	i := r.search(b)
	r.starts, r.sums = shrink(r.starts, i), shrink(r.sums, i)
}

// Merge merges into s the buckets that start in [from, to) (to exclusive);
// it reports whether any bucket was merged.
func (r *Rollup) Merge(s *fn.Summary, from, to int64) bool {
	any := false
	for i := r.search(from); i < len(r.starts) && r.starts[i] < to; i++ {
		s.Merge(&r.sums[i])
		any = true
	}
	return any
}

// Buckets is the number of buckets held.
func (r *Rollup) Buckets() int { return len(r.starts) }
