package tsdb

import (
	"encoding/binary"
	"math"
	"slices"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/query/fn"
)

// clean is a column's dirtyFrom when its rollups are up to date.
const clean = math.MaxInt64

// Column holds one field of one series: timestamps and typed values in the
// order the log delivered them (append order), plus the block each point
// came from. Append order is log order, so retention, which removes the
// oldest blocks, always removes a prefix. Points usually arrive in time
// order; when they do not (or a time repeats), a time-ordered view is
// derived lazily by Prepare.
type Column struct {
	Type  event.FieldType
	times times
	f     chunks[float64] // TypeFloat
	n     chunks[int64]   // TypeInt, TypeUint (bits), TypeBool (0/1)
	s     chunks[string]  // TypeString
	// strBytes is the length of the strings held (bounded by the index's
	// MaxStringBytes).
	strBytes int64

	// Blocks: the first point's block, then one uvarint delta per later
	// point (blocks never decrease in append order), about a byte a point.
	blkFirst, blkLast uint64
	blk               []byte

	// inOrder: append order is strictly increasing time order.
	inOrder bool
	// order is the time-ordered view when !inOrder: indexes into the
	// slices, one per distinct time (the last written of equal times, as
	// in InfluxDB); nil when Prepare must rebuild it.
	order []int32

	rollups   []Rollup
	dirtyFrom int64 // rollup buckets from this time's on must be recomputed
}

func newColumn(t event.FieldType, widths []int64) *Column {
	c := &Column{Type: t, inOrder: true, dirtyFrom: clean}
	for _, w := range widths {
		c.rollups = append(c.rollups, Rollup{width: w})
	}
	return c
}

// Stored is the number of stored points (duplicates included).
func (c *Column) Stored() int { return c.times.len() }

// add appends a point of block blk (>= every block added before).
func (c *Column) add(t int64, v event.Value, blk uint64) {
	n := c.times.len()
	last := int64(0)
	if n > 0 {
		last = c.times.at(n - 1)
	}
	c.times.append(t)
	switch c.Type {
	case event.TypeFloat:
		c.f.append(v.FloatValue())
	case event.TypeString:
		c.s.append(v.StringValue())
		c.strBytes += int64(len(v.StringValue()))
	default:
		c.n.append(numBits(v))
	}
	if n == 0 {
		c.blkFirst = blk
	} else {
		c.blk = binary.AppendUvarint(c.blk, blk-c.blkLast)
	}
	c.blkLast = blk
	if n > 0 && t <= last {
		c.inOrder = false
	}
	if !c.inOrder {
		c.order = nil
		c.dirtyFrom = min(c.dirtyFrom, t)
		return
	}
	if c.dirtyFrom == clean {
		for i := range c.rollups {
			c.rollups[i].add(t, c.value(n))
		}
	} else {
		c.dirtyFrom = min(c.dirtyFrom, t)
	}
}

func numBits(v event.Value) int64 {
	switch v.Type() {
	case event.TypeInt:
		return v.IntValue()
	case event.TypeUint:
		return int64(v.UintValue())
	case event.TypeBool:
		if v.BoolValue() {
			return 1
		}
	}
	return 0
}

// value returns stored point i as float64, int64, uint64, string or bool.
func (c *Column) value(i int) any {
	switch c.Type {
	case event.TypeFloat:
		return c.f.at(i)
	case event.TypeInt:
		return c.n.at(i)
	case event.TypeUint:
		return uint64(c.n.at(i))
	case event.TypeBool:
		return c.n.at(i) != 0
	case event.TypeString:
		return c.s.at(i)
	}
	return nil
}

// evict drops the points of blocks before first; it returns how many,
// and the bytes of the strings among them.
func (c *Column) evict(first uint64) (int, int64) {
	if c.times.len() == 0 || c.blkFirst >= first {
		return 0, 0
	}
	if c.blkLast < first {
		k, sb := c.times.len(), c.strBytes
		c.strBytes = 0
		c.times, c.f, c.n, c.s = times{}, chunks[float64]{}, chunks[int64]{}, chunks[string]{}
		c.blk, c.order = nil, nil
		c.inOrder, c.dirtyFrom = true, clean
		for i := range c.rollups {
			c.rollups[i].reset()
		}
		return k, sb
	}
	// Find the first point whose block is kept.
	k, blk, off := 0, c.blkFirst, 0
	for blk < first {
		d, m := binary.Uvarint(c.blk[off:])
		off += m
		blk += d
		k++
	}
	var sb int64
	lo := c.times.at(0)
	for i := 1; i < k; i++ {
		lo = min(lo, c.times.at(i))
	}
	c.times.dropPrefix(k)
	switch c.Type {
	case event.TypeFloat:
		c.f.dropPrefix(k)
	case event.TypeString:
		for i := range k {
			sb += int64(len(c.s.at(i)))
		}
		c.strBytes -= sb
		c.s.dropPrefix(k)
	default:
		c.n.dropPrefix(k)
	}
	c.blk = shrink(c.blk, off)
	c.blkFirst = blk
	if !c.inOrder {
		// Buckets the evicted points fell in change: recompute them.
		c.order = nil
		c.inOrder = c.strictlySorted()
		c.dirtyFrom = min(c.dirtyFrom, lo)
		return k, sb
	}
	// In time order, the evicted points precede every kept one: buckets
	// before the first kept point go, and the one holding it is recomputed.
	t0 := c.times.at(0)
	for i := range c.rollups {
		r := &c.rollups[i]
		b := r.truncate(t0)
		r.dropBefore(b)
		if c.dirtyFrom != clean || len(r.starts) == 0 || r.starts[0] != b {
			continue
		}
		var sum fn.Summary
		for j := 0; j < c.times.len() && c.times.at(j) < b+r.width; j++ {
			sum.Add(fn.Point{Time: c.times.at(j), Value: c.value(j)})
		}
		r.sums[0] = sum
	}
	if c.dirtyFrom != clean {
		c.dirtyFrom = min(c.dirtyFrom, t0)
	}
	return k, sb
}

// shrink drops the first k elements, copying when that frees much memory.
func shrink[T any](s []T, k int) []T {
	if k > cap(s)/4 {
		return append(make([]T, 0, len(s)-k+len(s)/8), s[k:]...)
	}
	return s[k:]
}

// strictlySorted says whether append order is strictly increasing time.
func (c *Column) strictlySorted() bool {
	for i := 1; i < c.times.len(); i++ {
		if c.times.at(i) <= c.times.at(i-1) {
			return false
		}
	}
	return true
}

// Prepare makes the time-ordered view and the rollups current. Queries
// call it (under the index's write lock) before reading the column.
func (c *Column) Prepare() {
	if !c.inOrder && c.order == nil {
		idx := make([]int32, c.times.len())
		for i := range idx {
			idx[i] = int32(i)
		}
		// Stable: equal times keep append order, so the last written is last.
		slices.SortStableFunc(idx, func(a, b int32) int {
			ta, tb := c.times.at(int(a)), c.times.at(int(b))
			switch {
			case ta < tb:
				return -1
			case ta > tb:
				return 1
			}
			return 0
		})
		out := idx[:0]
		for i, x := range idx {
			if i+1 < len(idx) && c.times.at(int(idx[i+1])) == c.times.at(int(x)) {
				continue // superseded by a later write of the same time
			}
			out = append(out, x)
		}
		c.order = slices.Clip(out)
	}
	if c.dirtyFrom == clean {
		return
	}
	for i := range c.rollups {
		r := &c.rollups[i]
		from := r.truncate(c.dirtyFrom)
		r.dropFrom(from)
		for k := c.Search(from); k < c.Len(); k++ {
			r.add(c.Time(k), c.Value(k))
		}
	}
	c.dirtyFrom = clean
}

// Ready says whether Prepare has nothing left to do.
func (c *Column) Ready() bool { return (c.inOrder || c.order != nil) && c.dirtyFrom == clean }

// Len is the number of points in the time-ordered view (duplicates removed).
func (c *Column) Len() int {
	if c.inOrder {
		return c.times.len()
	}
	return len(c.order)
}

func (c *Column) at(k int) int {
	if c.inOrder {
		return k
	}
	return int(c.order[k])
}

// Time is the time of the k-th point in time order.
func (c *Column) Time(k int) int64 { return c.times.at(c.at(k)) }

// Value is the value of the k-th point in time order.
func (c *Column) Value(k int) any { return c.value(c.at(k)) }

// Float is the k-th value of a float column, unboxed.
func (c *Column) Float(k int) float64 { return c.f.at(c.at(k)) }

// Search returns the first position in time order with a time >= t.
func (c *Column) Search(t int64) int {
	lo, hi := 0, c.Len()
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if c.Time(m) < t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// Rollup returns the column's rollup of the given width, or nil.
func (c *Column) Rollup(width int64) *Rollup {
	for i := range c.rollups {
		if c.rollups[i].width == width {
			return &c.rollups[i]
		}
	}
	return nil
}
