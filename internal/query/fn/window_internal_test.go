package fn

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSelectionMatchesSorting: the quickselect behind median and
// percentile picks what sorting picks (value, and the time of the tied
// point in arrival order), on random windows with many duplicates and on
// sorted, reversed and constant ones (the partitions quickselect finds
// hardest).
func TestSelectionMatchesSorting(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var windows [][]int64
	for n := 1; n <= 64; n++ {
		for range 5 {
			w := make([]int64, n)
			for i := range w {
				w[i] = r.Int64N(int64(n/3 + 2))
			}
			windows = append(windows, w)
		}
	}
	big := make([]int64, 5000)
	for i := range big {
		big[i] = int64(i)
	}
	windows = append(windows, big, slices.Clone(big), make([]int64, 3000))
	slices.Reverse(windows[len(windows)-2])
	for _, vs := range windows {
		times := make([]int64, len(vs))
		for i := range times {
			times[i] = int64(i)
		}
		// The reference: a stable sort of (value, arrival).
		order := make([]int, len(vs))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(vs[a], vs[b]) })
		step := 1
		if len(vs) > 100 {
			step = 97 // every rank of the small windows, a sample of the large
		}
		for i := 0; i < len(vs); i += step {
			got, _ := nth(vs, slices.Clone(vs), times, i)
			if want := order[i]; got.Value != vs[want] || got.Time != times[want] {
				t.Fatalf("%v: %d-th is %v at %d, want %v at %d", vs, i, got.Value, got.Time, vs[want], times[want])
			}
		}
		if len(vs)%2 == 0 {
			lo, hi := middle(slices.Clone(vs))
			if lo != vs[order[len(vs)/2-1]] || hi != vs[order[len(vs)/2]] {
				t.Fatalf("%v: middle %d, %d", vs, lo, hi)
			}
		}
	}
}
