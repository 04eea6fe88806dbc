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

func FuzzDecodeBlock(f *testing.F) {
	f.Add(encodeBlock(nil, sampleEvents()))
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
	})
}
