package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/klauspost/compress/s2"

	"github.com/chronostream/chronostream/event"
)

// A block is the payload of one JetStream message: a batch of events of one
// story, encoded compactly. Layout (all integers varints unless noted):
//
//	byte   format version (1)
//	uvarint number of sources, then each source id as a string
//	uvarint number of events, then each event:
//	  varint  time (Unix ns)
//	  byte    kind
//	  byte    body format (event.Format)
//	  uvarint source index (into the source table)
//	  uvarint number of tags, then key and value strings
//	  uvarint number of fields, then key string, type byte and value
//	          (float: 8 bytes little-endian; int: varint; uint: uvarint;
//	          string: string; bool: one byte)
//	  string  body
//
// A string is a uvarint length followed by its bytes.
//
// Format version 2 is version 1's bytes after the version byte, compressed
// with S2 (block format). Blocks are compressed once, in memory, by the
// writer: JSON and line protocol shrink about threefold, and so does
// everything that copies the block (NATS, the file store, readers).
//
// Format version 3 carries client stream indexes (event.Event.Index): it is
// version 1 except that an event's source index is written as
// uvarint(index<<1 | indexed), followed by uvarint(Index) when indexed is 1,
// so events without one cost no byte more. Version 4 is version 3
// compressed as version 2 is. A block none of whose events is indexed is
// still written as version 1 (or 2), so that older binaries read it.
const (
	blockVersion      = 1
	blockVersionS2    = 2
	blockVersionIdx   = 3
	blockVersionIdxS2 = 4
	maxDecodedBlock   = 64 << 20 // far above any block; bounds a corrupt length
)

var errCorrupt = errors.New("store: corrupt block")

// encodeBlock appends the block encoding of evs to dst.
func encodeBlock(dst []byte, evs []event.Event) []byte {
	version := byte(blockVersion)
	for i := range evs {
		if evs[i].Indexed {
			version = blockVersionIdx
			break
		}
	}
	dst = append(dst, version)
	// Source table: most blocks carry one or a few sources.
	var srcs []string
	srcIndex := func(s string) int {
		for i, v := range srcs {
			if v == s {
				return i
			}
		}
		srcs = append(srcs, s)
		return len(srcs) - 1
	}
	idx := make([]int, len(evs))
	for i := range evs {
		idx[i] = srcIndex(evs[i].Source)
	}
	dst = binary.AppendUvarint(dst, uint64(len(srcs)))
	for _, s := range srcs {
		dst = appendString(dst, s)
	}
	dst = binary.AppendUvarint(dst, uint64(len(evs)))
	for i := range evs {
		e := &evs[i]
		dst = binary.AppendVarint(dst, e.Time)
		dst = append(dst, byte(e.Kind), byte(e.Format))
		switch {
		case version == blockVersion:
			dst = binary.AppendUvarint(dst, uint64(idx[i]))
		case e.Indexed:
			dst = binary.AppendUvarint(dst, uint64(idx[i])<<1|1)
			dst = binary.AppendUvarint(dst, e.Index)
		default:
			dst = binary.AppendUvarint(dst, uint64(idx[i])<<1)
		}
		dst = binary.AppendUvarint(dst, uint64(len(e.Tags)))
		for _, k := range sortedKeys(e.Tags) {
			dst = appendString(dst, k)
			dst = appendString(dst, e.Tags[k])
		}
		dst = binary.AppendUvarint(dst, uint64(len(e.Fields)))
		for _, k := range sortedKeys(e.Fields) {
			v := e.Fields[k]
			dst = appendString(dst, k)
			dst = append(dst, byte(v.Type()))
			switch v.Type() {
			case event.TypeFloat:
				dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v.FloatValue()))
			case event.TypeInt:
				dst = binary.AppendVarint(dst, v.IntValue())
			case event.TypeUint:
				dst = binary.AppendUvarint(dst, v.UintValue())
			case event.TypeString:
				dst = appendString(dst, v.StringValue())
			case event.TypeBool:
				b := byte(0)
				if v.BoolValue() {
					b = 1
				}
				dst = append(dst, b)
			}
		}
		dst = binary.AppendUvarint(dst, uint64(len(e.Body)))
		dst = append(dst, e.Body...)
	}
	return dst
}

// encodedSize returns an upper bound of the bytes one event adds to a block.
func encodedSize(e *event.Event) int {
	n := 3*binary.MaxVarintLen64 + 2 + len(e.Body) + len(e.Source)
	for k, v := range e.Tags {
		n += 2*binary.MaxVarintLen64 + len(k) + len(v)
	}
	for k, v := range e.Fields {
		n += 2*binary.MaxVarintLen64 + 9 + len(k) + len(v.StringValue())
	}
	return n
}

// compressBlock appends to dst the compressed form of raw (version 2 of a
// version 1 block, 4 of a 3), or raw itself when compression does not make
// it smaller.
func compressBlock(dst, raw []byte) []byte {
	if need := 1 + s2.MaxEncodedLen(len(raw)-1); cap(dst)-len(dst) < need {
		dst = slices.Grow(dst, need)
	}
	enc := s2.Encode(dst[len(dst)+1:cap(dst)], raw[1:])
	if 1+len(enc) >= len(raw) {
		return append(dst, raw...)
	}
	dst = append(dst, raw[0]+1) // blockVersionS2 or blockVersionIdxS2
	return dst[:len(dst)+len(enc)]
}

// decodeBlock decodes a block. Events get Story, and Seq numbered from
// event.MakeSeq(block, 1). Strings share no memory with b.
func decodeBlock(b []byte, block uint64, story string) ([]event.Event, error) {
	if len(b) > 0 && (b[0] == blockVersionS2 || b[0] == blockVersionIdxS2) {
		n, err := s2.DecodedLen(b[1:])
		if err != nil || n > maxDecodedBlock {
			return nil, fmt.Errorf("%w: compressed block claims %d bytes (%v)", errCorrupt, n, err)
		}
		raw := make([]byte, 1, 1+n)
		raw[0] = b[0] - 1
		dec, err := s2.Decode(raw[1:1+n], b[1:])
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errCorrupt, err)
		}
		b = raw[:1+len(dec)]
	}
	d := decoder{b: b}
	version := d.byte()
	if version != blockVersion && version != blockVersionIdx {
		if d.err != nil {
			return nil, d.err
		}
		return nil, fmt.Errorf("%w: unknown format version %d", errCorrupt, version)
	}
	nsrc := d.count()
	srcs := make([]string, 0, min(nsrc, 16))
	for i := 0; i < nsrc && d.err == nil; i++ {
		srcs = append(srcs, d.string())
	}
	n := d.count()
	if n > event.MaxBlockEvents {
		return nil, fmt.Errorf("%w: %d events", errCorrupt, n)
	}
	evs := make([]event.Event, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		e := event.Event{Seq: event.MakeSeq(block, i+1), Story: story}
		e.Time = d.varint()
		e.Kind = event.Kind(d.byte())
		if e.Format = event.Format(d.byte()); e.Format > event.MaxFormat && d.err == nil {
			d.err = fmt.Errorf("%w: body format %d", errCorrupt, e.Format)
		}
		var si int
		if version == blockVersion {
			si = d.count()
		} else {
			v := d.uvarint()
			si = int(min(v>>1, uint64(len(srcs))))
			if v&1 != 0 {
				e.Index, e.Indexed = d.uvarint(), true
			}
		}
		if si < len(srcs) {
			e.Source = srcs[si]
		} else if d.err == nil {
			d.err = fmt.Errorf("%w: source index %d out of range", errCorrupt, si)
		}
		if nt := d.count(); nt > 0 {
			e.Tags = make(map[string]string, min(nt, 64))
			for j := 0; j < nt && d.err == nil; j++ {
				k := d.string()
				e.Tags[k] = d.string()
			}
		}
		if nf := d.count(); nf > 0 {
			e.Fields = make(map[string]event.Value, min(nf, 64))
			for j := 0; j < nf && d.err == nil; j++ {
				k := d.string()
				switch t := event.FieldType(d.byte()); t {
				case event.TypeFloat:
					e.Fields[k] = event.Float(math.Float64frombits(d.uint64le()))
				case event.TypeInt:
					e.Fields[k] = event.Int(d.varint())
				case event.TypeUint:
					e.Fields[k] = event.Uint(d.uvarint())
				case event.TypeString:
					e.Fields[k] = event.String(d.string())
				case event.TypeBool:
					e.Fields[k] = event.Bool(d.byte() != 0)
				default:
					if d.err == nil {
						d.err = fmt.Errorf("%w: field type %d", errCorrupt, t)
					}
				}
			}
		}
		e.Body = []byte(d.string())
		evs = append(evs, e)
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(d.b))
	}
	return evs, nil
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// decoder reads a block; the first error sticks and later reads return zero.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated", errCorrupt)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uint64le() uint64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// count reads a length or count and checks it against the bytes left, so a
// corrupt count can never make the decoder allocate more than the input.
func (d *decoder) count() int {
	v := d.uvarint()
	if v > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *decoder) string() string {
	n := d.count()
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
