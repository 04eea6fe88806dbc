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

func FuzzDecodeBlock(f *testing.F) {
	f.Add(encodeBlock(nil, sampleEvents()))
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
