package store

import (
	"bytes"
	"math"
	"reflect"
	"testing"

	"github.com/chronostream/chronostream/event"
)

func sampleEvents() []event.Event {
	return []event.Event{
		{Time: 1, Kind: event.KindMetric, Source: "a",
			Tags:   map[string]string{"host": "h1", "": "empty key"},
			Fields: map[string]event.Value{"f": event.Float(math.Inf(-1)), "i": event.Int(math.MinInt64), "u": event.Uint(math.MaxUint64), "s": event.String("x\x00y"), "b": event.Bool(true), "nb": event.Bool(false)},
			Body:   []byte("cpu,host=h1 f=-Inf")},
		{Time: -5, Kind: event.KindLog, Source: "b", Format: event.FormatJSON, Body: []byte(`{"msg":"hi"}`)},
		{Time: math.MaxInt64, Kind: event.KindAnnotation, Source: "a", Body: []byte{0xff, 0, 1}},
		{Time: 7, Body: nil},
	}
}

func TestBlockRoundTrip(t *testing.T) {
	in := sampleEvents()
	b := encodeBlock(nil, in)
	out, err := decodeBlock(b, 42, "story")
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("decoded %d events, want %d", len(out), len(in))
	}
	for i := range in {
		want := in[i]
		want.Seq = event.MakeSeq(42, i+1)
		want.Story = "story"
		if want.Body == nil {
			want.Body = []byte{}
		}
		if !reflect.DeepEqual(out[i], want) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, out[i], want)
		}
		if sz := encodedSize(&in[i]); sz < len(encodeBlock(nil, in[i:i+1]))-1 {
			t.Errorf("event %d: encodedSize %d is below the encoding's size", i, sz)
		}
	}
	// Deterministic: map iteration order must not leak into blocks.
	if !bytes.Equal(b, encodeBlock(nil, in)) {
		t.Error("encoding is not deterministic")
	}
}

func TestBlockCorrupt(t *testing.T) {
	b := encodeBlock(nil, sampleEvents())
	for i := 0; i < len(b); i++ {
		if _, err := decodeBlock(b[:i], 1, "s"); err == nil {
			t.Fatalf("truncation at %d of %d decoded without error", i, len(b))
		}
	}
	if _, err := decodeBlock(append(b, 0), 1, "s"); err == nil {
		t.Error("trailing byte decoded without error")
	}
	bad := append([]byte{}, b...)
	bad[0] = 9
	if _, err := decodeBlock(bad, 1, "s"); err == nil {
		t.Error("unknown version decoded without error")
	}
}

// TestCompressedBlock: a compressible block is stored in version 2 form,
// decodes to the same events, and a corrupt one is an error, never a panic
// or an allocation of whatever size it claims.
func TestCompressedBlock(t *testing.T) {
	var evs []event.Event
	for i := 0; i < 200; i++ {
		evs = append(evs, event.Event{Time: int64(i), Format: event.FormatJSON, Source: "s",
			Body: []byte(`{"level":"info","msg":"request served","path":"/api/v1/orders","status":200}`)})
	}
	raw := encodeBlock(nil, evs)
	c := compressBlock(nil, raw)
	if c[0] != blockVersionS2 || len(c) > len(raw)/3 {
		t.Fatalf("compressed %d bytes to %d (version %d)", len(raw), len(c), c[0])
	}
	got, err := decodeBlock(c, 7, "st")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := decodeBlock(raw, 7, "st")
	if !reflect.DeepEqual(got, want) {
		t.Fatal("the compressed block decodes differently")
	}
	// Incompressible blocks stay in version 1 form.
	small := encodeBlock(nil, []event.Event{{Body: []byte{1, 2, 3}}})
	if c := compressBlock(nil, small); !bytes.Equal(c, small) {
		t.Errorf("an incompressible block was changed: %v -> %v", small, c)
	}
	for i := 1; i < len(c); i += max(1, len(c)/50) {
		if _, err := decodeBlock(c[:i], 1, "s"); err == nil {
			t.Fatalf("compressed block cut at %d decoded", i)
		}
	}
	huge := append([]byte{blockVersionS2}, 0xff, 0xff, 0xff, 0xff, 0x7f) // claims ~34 GB
	if _, err := decodeBlock(huge, 1, "s"); err == nil {
		t.Error("a block claiming a huge decoded size was accepted")
	}
}

// indexedEvents mixes events of client streams (indexed) with others.
func indexedEvents() []event.Event {
	evs := sampleEvents()
	evs[0].Index, evs[0].Indexed = 0, true
	evs[1].Index, evs[1].Indexed = math.MaxUint64, true
	evs = append(evs, event.Event{Time: 8, Source: "stream-1", Index: 300, Indexed: true, Body: []byte(`{}`)})
	return evs
}

// TestIndexedBlock: client stream indexes survive the round trip, raw and
// compressed, and blocks without them keep the version 1 bytes that older
// binaries read.
func TestIndexedBlock(t *testing.T) {
	in := indexedEvents()
	raw := encodeBlock(nil, in)
	if raw[0] != blockVersionIdx {
		t.Fatalf("a block with indexed events has version %d", raw[0])
	}
	if plain := encodeBlock(nil, sampleEvents()); plain[0] != blockVersion {
		t.Fatalf("a block without indexed events has version %d", plain[0])
	}
	var many []event.Event
	for i := 0; i < 200; i++ {
		many = append(many, event.Event{Time: int64(i), Format: event.FormatJSON, Source: "cli", Index: uint64(i), Indexed: true,
			Body: []byte(`{"level":"info","msg":"request served","path":"/api/v1/orders","status":200}`)})
	}
	comp := compressBlock(nil, encodeBlock(nil, many))
	if comp[0] != blockVersionIdxS2 {
		t.Fatalf("compressed indexed block has version %d", comp[0])
	}
	for _, tc := range []struct {
		b    []byte
		want []event.Event
	}{{raw, in}, {comp, many}} {
		out, err := decodeBlock(tc.b, 3, "st")
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != len(tc.want) {
			t.Fatalf("decoded %d events, want %d", len(out), len(tc.want))
		}
		for i := range out {
			w := tc.want[i]
			if out[i].Indexed != w.Indexed || out[i].Index != w.Index || out[i].Source != w.Source || !bytes.Equal(out[i].Body, w.Body) {
				t.Errorf("event %d: got source %q index %d/%v, want %q %d/%v", i, out[i].Source, out[i].Index, out[i].Indexed, w.Source, w.Index, w.Indexed)
			}
		}
	}
	for i := 0; i < len(raw); i++ {
		if _, err := decodeBlock(raw[:i], 1, "s"); err == nil {
			t.Fatalf("truncation at %d of %d decoded without error", i, len(raw))
		}
	}
	// A source index out of range is corrupt in version 3 too.
	bad := encodeBlock(nil, []event.Event{{Source: "a", Index: 1, Indexed: true}})
	// version, 1 source "a" (3 bytes), 1 event, time, kind, format, then the source index.
	if bad[8] != 1 {
		t.Fatalf("layout changed: % x", bad)
	}
	bad[8] = 2<<1 | 1
	if _, err := decodeBlock(bad, 1, "s"); err == nil {
		t.Error("an out-of-range source index decoded without error")
	}
}

func FuzzDecodeBlock(f *testing.F) {
	f.Add(encodeBlock(nil, sampleEvents()))
	f.Add(encodeBlock(nil, indexedEvents()))
	f.Add(compressBlock(nil, encodeBlock(nil, append(indexedEvents(), indexedEvents()...))))
	f.Add(compressBlock(nil, encodeBlock(nil, append(sampleEvents(), sampleEvents()...))))
	f.Add(encodeBlock(nil, nil))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := decodeBlock(b, 1, "s")
		if err != nil {
			return
		}
		// Whatever decodes must re-encode to a block that decodes the same.
		again, err := decodeBlock(encodeBlock(nil, evs), 1, "s")
		if err != nil {
			t.Fatalf("re-encoded block does not decode: %v", err)
		}
		if len(again) != len(evs) {
			t.Fatalf("round trip changed the event count: %d != %d", len(again), len(evs))
		}
		for i := range evs {
			if again[i].Index != evs[i].Index || again[i].Indexed != evs[i].Indexed || again[i].Source != evs[i].Source {
				t.Fatalf("event %d: round trip changed its stream index", i)
			}
		}
	})
}
