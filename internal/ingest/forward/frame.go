package forward

import (
	"encoding/binary"
	"errors"

	"github.com/tinylib/msgp/msgp"
)

// maxFrameDepth bounds the nesting the framer follows (the decoder refuses
// records nested deeper than maxDepth anyway).
const maxFrameDepth = maxDepth + 8

// Framer cuts a stream into messages the way Frame does, but incrementally:
// a message that arrives in pieces is scanned once, not from its start on
// every read. It remembers how far into the message at the start of the
// buffer it has checked, and the elements left in each open array and map;
// Need says how many bytes the buffer must hold before another call can
// make progress (the end of a long string or binary is known from its
// header), so a 14 MB PackedForward message sent in 16 KiB writes is
// framed in a few calls.
type Framer struct {
	pos     int      // bytes of the current message checked
	left    []uint64 // elements left in each open container, innermost last
	started bool
	need    int // bytes the buffer must hold for the next call to progress
}

// Need is the least length of the buffer with which Next can progress.
func (f *Framer) Need() int { return f.need }

// Reset forgets the message in progress.
func (f *Framer) Reset() { f.pos, f.left, f.started, f.need = 0, f.left[:0], false, 0 }

// Next returns the length of the whole msgpack value at the start of b, or
// ErrShort when b ends inside it. Between calls that return ErrShort, b
// must hold the same bytes, possibly more at its end; after a message is
// returned (or an error), the framer starts afresh.
func (f *Framer) Next(b []byte) (int, error) {
	for {
		for len(f.left) > 0 && f.left[len(f.left)-1] == 0 {
			f.left = f.left[:len(f.left)-1]
		}
		if f.started && len(f.left) == 0 {
			n := f.pos
			f.Reset()
			return n, nil
		}
		rest := b[f.pos:]
		var size int
		var elems uint64
		container := false
		switch msgp.NextType(rest) {
		case msgp.ArrayType:
			n, r, err := msgp.ReadArrayHeaderBytes(rest)
			if err != nil {
				return f.short(err, len(b), 0)
			}
			size, elems, container = len(rest)-len(r), uint64(n), true
		case msgp.MapType:
			n, r, err := msgp.ReadMapHeaderBytes(rest)
			if err != nil {
				return f.short(err, len(b), 0)
			}
			size, elems, container = len(rest)-len(r), 2*uint64(n), true
		default:
			r, err := msgp.Skip(rest)
			if err != nil {
				return f.short(err, len(b), blobEnd(rest))
			}
			size = len(rest) - len(r)
		}
		if len(f.left) > 0 {
			f.left[len(f.left)-1]--
		}
		f.started = true
		f.pos += size
		if container {
			if len(f.left) >= maxFrameDepth {
				f.Reset()
				return 0, fail(ReasonMalformed, "a message nested more than %d levels deep", maxFrameDepth)
			}
			f.left = append(f.left, elems)
		}
	}
}

// short turns an error of the element at f.pos into ErrShort (with the
// length needed to go on: its end when known, else one more byte) or a
// malformed message.
func (f *Framer) short(err error, have, end int) (int, error) {
	if errors.Is(err, msgp.ErrShortBytes) {
		f.need = max(have+1, f.pos+end)
		return 0, ErrShort
	}
	f.Reset()
	return 0, fail(ReasonMalformed, "not msgpack: %v", err)
}

// blobEnd returns the length of the str or bin at the start of b, header
// included, when its header is whole (0 otherwise).
func blobEnd(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	var hdr, n int
	switch c := b[0]; {
	case c >= 0xa0 && c <= 0xbf:
		hdr, n = 1, int(c&0x1f)
	case c == 0xd9 || c == 0xc4:
		if len(b) < 2 {
			return 0
		}
		hdr, n = 2, int(b[1])
	case c == 0xda || c == 0xc5:
		if len(b) < 3 {
			return 0
		}
		hdr, n = 3, int(binary.BigEndian.Uint16(b[1:]))
	case c == 0xdb || c == 0xc6:
		if len(b) < 5 {
			return 0
		}
		hdr, n = 5, int(binary.BigEndian.Uint32(b[1:]))
	default:
		return 0
	}
	return hdr + n
}
