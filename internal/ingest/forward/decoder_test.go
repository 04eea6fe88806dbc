package forward

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/tinylib/msgp/msgp"
)

func TestSeedsDecode(t *testing.T) {
	want := []struct {
		kind Kind
		mode Mode
		n    int
	}{
		{KindEvents, ModeMessage, 1}, {KindEvents, ModeMessage, 1}, {KindEvents, ModeForward, 2},
		{KindEvents, ModePackedForward, 2}, {KindEvents, ModeCompressedPackedForward, 2}, {KindPing, 0, 0}, {KindHeartbeat, 0, 0},
	}
	d := NewDecoder(Limits{})
	for i, s := range seeds() {
		n, err := Frame(s)
		if err != nil || n != len(s) {
			t.Fatalf("seed %d: Frame %d, %v", i, n, err)
		}
		if _, err := Frame(s[:len(s)-1]); !errors.Is(err, ErrShort) {
			t.Fatalf("seed %d cut short: %v", i, err)
		}
		var m Message
		if err := d.Decode(s, &m); err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		if m.Kind != want[i].kind || m.Mode != want[i].mode || len(m.Entries) != want[i].n {
			t.Fatalf("seed %d: kind %v mode %v entries %d", i, m.Kind, m.Mode, len(m.Entries))
		}
		if m.Kind == KindEvents {
			wantRec := `{"message":"hello \"world\"\n","bin":"//4=","42":{"k":"v"}}`
			if got := string(m.Entries[0].Record); got != wantRec {
				t.Errorf("seed %d: record %s, want %s", i, got, wantRec)
			}
			if i > 0 && m.Entries[0].Time != 1700577280*1e9+256 {
				t.Errorf("seed %d: time %d", i, m.Entries[0].Time)
			}
		}
		if i == 1 && m.Options.Chunk != "p8n9gmxTQVC8/nh2wlKKeQ==" {
			t.Errorf("chunk %q", m.Options.Chunk)
		}
	}
}

func TestValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		val  func([]byte) []byte
		want string
	}{
		{"nil", msgp.AppendNil, "null"},
		{"neg", func(b []byte) []byte { return msgp.AppendInt64(b, -5) }, "-5"},
		{"uint", func(b []byte) []byte { return msgp.AppendUint64(b, math.MaxUint64) }, "18446744073709551615"},
		{"float", func(b []byte) []byte { return msgp.AppendFloat64(b, 0.1) }, "0.1"},
		{"float32", func(b []byte) []byte { return msgp.AppendFloat32(b, 0.1) }, "0.1"},
		{"big", func(b []byte) []byte { return msgp.AppendFloat64(b, 1e300) }, "1e+300"},
		{"nan", func(b []byte) []byte { return msgp.AppendFloat64(b, math.NaN()) }, "null"},
		{"inf", func(b []byte) []byte { return msgp.AppendFloat64(b, math.Inf(-1)) }, "null"},
		{"bad utf8 str", func(b []byte) []byte { return msgp.AppendStringFromBytes(b, []byte("a\xffb")) }, `"a\ufffdb"`},
		{"control", func(b []byte) []byte { return msgp.AppendString(b, "\x01\t") }, `"\u0001\t"`},
		{"utf8 bin", func(b []byte) []byte { return msgp.AppendBytes(b, []byte("héllo")) }, `"héllo"`},
		{"binary bin", func(b []byte) []byte { return msgp.AppendBytes(b, []byte{0, 0xff}) }, `"AP8="`},
		{"event time", func(b []byte) []byte { return append(b, 0xd7, 0, 0, 0, 0, 1, 0, 0, 0, 2) }, `"1970-01-01T00:00:01.000000002Z"`},
		{"other ext", func(b []byte) []byte { return append(b, 0xd4, 7, 9) }, `{"ext":7,"data":"CQ=="}`},
		{"array", func(b []byte) []byte { return msgp.AppendBool(msgp.AppendArrayHeader(b, 1), true) }, "[true]"},
	} {
		var d Decoder
		out, rest, err := d.value(nil, tc.val(nil), 0, 1<<20)
		if err != nil || len(rest) != 0 || string(out) != tc.want {
			t.Errorf("%s: %s (%v, %d left), want %s", tc.name, out, err, len(rest), tc.want)
		}
	}
}

func TestLimits(t *testing.T) {
	entry := func(b []byte, size int) []byte {
		b = msgp.AppendArrayHeader(b, 2)
		b = msgp.AppendInt64(b, 1)
		b = msgp.AppendMapHeader(b, 1)
		b = msgp.AppendString(b, "m")
		return msgp.AppendString(b, string(bytes.Repeat([]byte("x"), size)))
	}
	packed := func(stream []byte, gz bool) []byte {
		b := msgp.AppendArrayHeader(nil, 3)
		b = msgp.AppendString(b, "t")
		if gz {
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			zw.Write(stream)
			zw.Close()
			stream = z.Bytes()
		}
		b = msgp.AppendBytes(b, stream)
		b = msgp.AppendMapHeader(b, 1)
		b = msgp.AppendString(b, "compressed")
		if gz {
			return msgp.AppendString(b, "gzip")
		}
		return msgp.AppendString(b, "text")
	}
	d := NewDecoder(Limits{MaxMessageBytes: 64 << 10, MaxRecords: 10, MaxRecordBytes: 1000})
	var m Message
	// A record over the record limit is dropped, the rest kept.
	if err := d.Decode(packed(entry(entry(nil, 10), 2000), false), &m); err != nil || len(m.Entries) != 1 || m.Dropped != 1 {
		t.Fatalf("record limit: %v, %d entries, %d dropped", err, len(m.Entries), m.Dropped)
	}
	var many []byte
	for range 11 {
		many = entry(many, 1)
	}
	var fe *Error
	if err := d.Decode(packed(many, false), &m); !errors.As(err, &fe) || fe.Reason != ReasonTooManyRecords {
		t.Fatalf("record count: %v", err)
	}
	// A gzip bomb: small compressed, over the limit decompressed.
	var bomb []byte
	for range 9 {
		bomb = entry(bomb, 900)
	}
	bomb = append(bomb, make([]byte, 100<<10)...)
	if err := d.Decode(packed(bomb, true), &m); !errors.As(err, &fe) || fe.Reason != ReasonTooLarge {
		t.Fatalf("decompressed size: %v", err)
	}
	// Too deep.
	deep := msgp.AppendArrayHeader(nil, 3)
	deep = msgp.AppendString(deep, "t")
	deep = msgp.AppendInt64(deep, 1)
	deep = msgp.AppendMapHeader(deep, 1)
	deep = msgp.AppendString(deep, "k")
	for range 100 {
		deep = msgp.AppendArrayHeader(deep, 1)
	}
	deep = msgp.AppendNil(deep)
	if err := d.Decode(deep, &m); !errors.As(err, &fe) || fe.Reason != ReasonMalformed {
		t.Fatalf("depth: %v", err)
	}
	// Negative times are refused.
	neg := msgp.AppendArrayHeader(nil, 3)
	neg = msgp.AppendString(neg, "t")
	neg = msgp.AppendInt64(neg, -1)
	neg = msgp.AppendMapHeader(neg, 0)
	if err := d.Decode(neg, &m); !errors.As(err, &fe) || fe.Reason != ReasonBadTime {
		t.Fatalf("negative time: %v", err)
	}
}
