package tsdb

// chunkLen is the number of points of a full chunk. Columns grow by chunks
// rather than by doubling one slice, so that a column's unused capacity is
// at most its last, growing chunk; retention drops whole chunks.
const chunkLen = 1024

// chunks is an append-only sequence stored in chunks of chunkLen, with an
// index-preserving prefix drop.
type chunks[T any] struct {
	list [][]T
	off  int // dropped elements of list[0]
	n    int
}

func (s *chunks[T]) len() int { return s.n }

func (s *chunks[T]) at(i int) T {
	i += s.off
	return s.list[i/chunkLen][i%chunkLen]
}

func (s *chunks[T]) append(v T) {
	if len(s.list) == 0 || len(s.list[len(s.list)-1]) == chunkLen {
		s.list = append(s.list, make([]T, 0, 8))
	}
	last := &s.list[len(s.list)-1]
	if len(*last) == cap(*last) {
		// Grow the open chunk by doubling, but never past chunkLen.
		grown := make([]T, len(*last), min(chunkLen, 2*cap(*last)))
		copy(grown, *last)
		*last = grown
	}
	*last = append(*last, v)
	s.n++
}

// dropPrefix removes the first k elements (zeroing them, so that what they
// reference can be collected).
func (s *chunks[T]) dropPrefix(k int) {
	var zero T
	for range k {
		s.list[0][s.off] = zero
		s.off++
		s.n--
		if s.off == chunkLen || s.n == 0 && s.off == len(s.list[0]) {
			s.list[0] = nil
			s.list = s.list[1:]
			s.off = 0
		}
	}
	if s.n == 0 {
		*s = chunks[T]{}
	}
}

// times holds a column's timestamps: full chunks whose offsets from their
// first time are multiples of a power of ten below 2^32 (seconds,
// milliseconds… as metrics are usually stamped) take 4 bytes a point,
// others 8.
type times struct {
	closed []timeChunk
	open   []int64
	off    int // dropped points of the first chunk (closed[0], or open)
	n      int
}

type timeChunk struct {
	base, scale int64
	offs        []uint32 // when scale > 0
	raw         []int64  // otherwise
}

func (c *timeChunk) at(i int) int64 {
	if c.scale > 0 {
		return c.base + int64(c.offs[i])*c.scale
	}
	return c.raw[i]
}

func (s *times) len() int { return s.n }

func (s *times) at(i int) int64 {
	i += s.off
	if c := i / chunkLen; c < len(s.closed) {
		return s.closed[c].at(i % chunkLen)
	}
	return s.open[i-len(s.closed)*chunkLen]
}

func (s *times) append(t int64) {
	s.open = append(s.open, t)
	s.n++
	if len(s.open) == chunkLen {
		s.closed = append(s.closed, compressTimes(s.open))
		s.open = nil
	}
}

// compressTimes packs a full chunk.
func compressTimes(ts []int64) timeChunk {
	base := ts[0]
	for _, scale := range []int64{1e9, 1e6, 1e3, 1} {
		ok := true
		for _, t := range ts {
			d := t - base
			if d < 0 || d%scale != 0 || d/scale > 1<<32-1 {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		offs := make([]uint32, len(ts))
		for i, t := range ts {
			offs[i] = uint32((t - base) / scale)
		}
		return timeChunk{base: base, scale: scale, offs: offs}
	}
	return timeChunk{raw: append([]int64(nil), ts...)}
}

func (s *times) dropPrefix(k int) {
	s.off += k
	s.n -= k
	for len(s.closed) > 0 && s.off >= chunkLen {
		s.closed = s.closed[1:]
		s.off -= chunkLen
	}
	if len(s.closed) == 0 && s.off > 0 {
		s.open = append([]int64(nil), s.open[s.off:]...)
		s.off = 0
	}
	if s.n == 0 {
		*s = times{}
	}
}
