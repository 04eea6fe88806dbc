package tsdb

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/query/fn"
)

var widths = []int64{int64(time.Minute), int64(time.Hour)}

// view returns a prepared column's points in time order.
func view(c *Column) (ts []int64, vs []float64) {
	c.Prepare()
	for k := 0; k < c.Len(); k++ {
		ts = append(ts, c.Time(k))
		vs = append(vs, c.Float(k))
	}
	return ts, vs
}

func TestColumnOutOfOrderAndDuplicates(t *testing.T) {
	c := newColumn(event.TypeFloat, widths)
	c.add(30, event.Float(3), 1)
	c.add(10, event.Float(1), 1)
	c.add(20, event.Float(2), 2)
	c.add(10, event.Float(9), 3) // rewrites time 10: the last write wins
	c.add(40, event.Float(4), 3)
	ts, vs := view(c)
	if !slices.Equal(ts, []int64{10, 20, 30, 40}) || !slices.Equal(vs, []float64{9, 2, 3, 4}) {
		t.Fatalf("got %v %v", ts, vs)
	}
	if k := c.Search(25); k != 2 {
		t.Errorf("Search(25) = %d, want 2", k)
	}
	var sum fn.Summary
	c.Rollup(int64(time.Minute)).Merge(&sum, 0, int64(time.Minute))
	if p, ok, _ := fn.FromSummary("sum", &sum); !ok || p.Value != 18.0 {
		t.Errorf("rollup sum after a rewrite = %v, want 18", p.Value)
	}
}

func TestColumnEvictsPrefixOfBlocks(t *testing.T) {
	c := newColumn(event.TypeInt, widths)
	for i := range 100 {
		c.add(int64(i)*int64(time.Second), event.Int(int64(i)), uint64(1+i/10)) // ten points a block
	}
	if n, _ := c.evict(4); n != 30 {
		t.Fatalf("evicted %d points, want 30 (blocks 1-3)", n)
	}
	c.Prepare()
	if c.Len() != 70 || c.Time(0) != 30*int64(time.Second) {
		t.Fatalf("after eviction: %d points from %d", c.Len(), c.Time(0))
	}
	// The rollups equal those of a column that only ever held the rest.
	fresh := newColumn(event.TypeInt, widths)
	for i := 30; i < 100; i++ {
		fresh.add(int64(i)*int64(time.Second), event.Int(int64(i)), 9)
	}
	for _, w := range widths {
		for _, name := range []string{"count", "sum", "min", "first"} {
			var a, b fn.Summary
			c.Rollup(w).Merge(&a, 0, 1<<62)
			fresh.Rollup(w).Merge(&b, 0, 1<<62)
			pa, _, _ := fn.FromSummary(name, &a)
			pb, _, _ := fn.FromSummary(name, &b)
			if pa != pb {
				t.Errorf("width %v %s: %v, want %v", time.Duration(w), name, pa, pb)
			}
		}
	}
	if n, _ := c.evict(100); n != 70 || c.Stored() != 0 {
		t.Errorf("evicting every block left %d of %d", c.Stored(), n)
	}
}

// The time-ordered view of random out-of-order writes with duplicates is
// sorted, has one point per time and keeps the last write of each.
func TestColumnRandomOrderProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		c := newColumn(event.TypeFloat, widths)
		want := map[int64]float64{}
		var blk uint64 = 1
		for i := range 200 {
			ts := r.Int64N(3000) * int64(time.Second)
			v := float64(i)
			c.add(ts, event.Float(v), blk)
			want[ts] = v
			if r.IntN(5) == 0 {
				blk++
			}
		}
		ts, vs := view(c)
		if len(ts) != len(want) || !slices.IsSorted(ts) {
			t.Fatalf("%d points (want %d), sorted %v", len(ts), len(want), slices.IsSorted(ts))
		}
		for i := range ts {
			if want[ts[i]] != vs[i] {
				t.Fatalf("time %d: %v, want the last write %v", ts[i], vs[i], want[ts[i]])
			}
		}
	}
}

func TestDBIndexesEventsAndEvicts(t *testing.T) {
	db := newDB("d", widths, &stats{})
	ev := func(story string, host string, t int64, v float64) event.Event {
		return event.Event{Story: story, Time: t, Tags: map[string]string{"host": host, "empty": ""},
			Fields: map[string]event.Value{"v": event.Float(v)}}
	}
	db.apply(1, []event.Event{ev("cpu", "a", 1, 1), ev("cpu", "b", 1, 2)})
	db.apply(2, []event.Event{ev("cpu", "a", 2, 3), {Story: "cpu", Time: 3, Fields: map[string]event.Value{"v": event.Int(1)}}})
	db.apply(3, []event.Event{ev("mem", "a", 3, 4), {Story: "logs"}}) // no field: not a point
	if got := db.Measurements(); !slices.Equal(got, []string{"cpu", "mem"}) {
		t.Fatalf("measurements %v", got)
	}
	m := db.Measurement("cpu")
	if keys := m.TagKeys(); !slices.Equal(keys, []string{"host"}) {
		t.Errorf("tag keys %v: an empty tag value is no tag", keys)
	}
	if db.Points() != 4 || db.SeriesCount() != 3 || db.stats.conflicts.Load() != 1 {
		t.Errorf("points %d series %d conflicts %d", db.Points(), db.SeriesCount(), db.stats.conflicts.Load())
	}
	db.evict(3)
	if got := db.Measurements(); !slices.Equal(got, []string{"mem"}) || db.Points() != 1 || db.SeriesCount() != 1 {
		t.Errorf("after evicting blocks 1-2: %v, %d points, %d series", got, db.Points(), db.SeriesCount())
	}
}

// Chunked storage keeps indexes through appends across chunk boundaries
// and prefix drops; regular timestamps are packed, irregular ones kept.
func TestChunkedStorage(t *testing.T) {
	for _, step := range []int64{int64(10 * time.Second), 7, -3} {
		var ts times
		var fs chunks[float64]
		var want []int64
		next := int64(1e18)
		for i := range 5000 {
			ts.append(next)
			fs.append(float64(i))
			want = append(want, next)
			next += step
			if i%1000 == 999 {
				k := 300 + i/10
				ts.dropPrefix(k)
				fs.dropPrefix(k)
				want = want[k:]
			}
			if ts.len() != len(want) || fs.len() != len(want) {
				t.Fatalf("step %d: len %d %d, want %d", step, ts.len(), fs.len(), len(want))
			}
		}
		for i := range want {
			if ts.at(i) != want[i] || int64(fs.at(i))-int64(fs.at(0)) != int64(i) {
				t.Fatalf("step %d: at(%d) = %d, want %d", step, i, ts.at(i), want[i])
			}
		}
		if step == int64(10*time.Second) && (len(ts.closed) == 0 || ts.closed[0].scale != 1e9) {
			t.Errorf("regular times were not packed: %+v", ts.closed)
		}
	}
}

// String values are counted in bytes as they come and go.
func TestDBCountsStringBytes(t *testing.T) {
	db := newDB("d", widths, &stats{})
	for b := uint64(1); b <= 3; b++ {
		db.apply(b, []event.Event{{Story: "logs", Time: int64(b), Fields: map[string]event.Value{"msg": event.String("hello"), "n": event.Int(1)}}})
	}
	if db.strBytes != 15 || db.stats.strBytes.Load() != 15 {
		t.Fatalf("string bytes %d, %d; want 15", db.strBytes, db.stats.strBytes.Load())
	}
	db.evict(3)
	if db.strBytes != 5 || db.stats.strBytes.Load() != 5 || db.Points() != 2 {
		t.Errorf("after evicting two blocks: %d string bytes, %d points", db.strBytes, db.Points())
	}
	db.clear()
	if db.stats.strBytes.Load() != 0 || db.stats.points.Load() != 0 {
		t.Errorf("after clear: %d, %d", db.stats.strBytes.Load(), db.stats.points.Load())
	}
}
