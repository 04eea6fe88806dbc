package client

import (
	"testing"
	"time"
)

// TestBackoffNoOverflow: however many attempts failed, the delay stays
// within [min/2, max] (lo<<attempt overflowed past ~29 attempts of 30s and
// rand.N panicked on a negative bound).
func TestBackoffNoOverflow(t *testing.T) {
	for _, b := range [][2]time.Duration{{30 * time.Second, 5 * time.Minute}, {100 * time.Millisecond, 10 * time.Second}, {time.Nanosecond, time.Hour}} {
		for attempt := range 200 {
			d := backoff(b[0], b[1], attempt)
			if d < b[0]/2 || d > b[1] {
				t.Fatalf("backoff(%v, %v, %d) = %v", b[0], b[1], attempt, d)
			}
		}
	}
}
