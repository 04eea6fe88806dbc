package forward

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/tinylib/msgp/msgp"
)

// seeds are one message of each mode and of the handshake, built as the
// protocol's examples show them.
func seeds() [][]byte {
	rec := func(b []byte) []byte {
		b = msgp.AppendMapHeader(b, 3)
		b = msgp.AppendString(b, "message")
		b = msgp.AppendString(b, "hello \"world\"\n")
		b = msgp.AppendString(b, "bin")
		b = msgp.AppendBytes(b, []byte{0xff, 0xfe})
		b = msgp.AppendInt(b, 42) // a key that is not a string
		return msgp.AppendMapStrStr(b, map[string]string{"k": "v"})
	}
	et := func(b []byte) []byte { return append(b, 0xd7, 0, 0x65, 0x5c, 0xc0, 0x00, 0x00, 0x00, 0x01, 0x00) }
	entry := func(b []byte) []byte { return rec(et(msgp.AppendArrayHeader(b, 2))) }
	opts := func(b []byte, compressed string) []byte {
		b = msgp.AppendMapHeader(b, 2)
		b = msgp.AppendString(b, "chunk")
		b = msgp.AppendString(b, "p8n9gmxTQVC8/nh2wlKKeQ==")
		if compressed == "" {
			b = msgp.AppendString(b, "size")
			return msgp.AppendInt(b, 2)
		}
		b = msgp.AppendString(b, "compressed")
		return msgp.AppendString(b, compressed)
	}
	var out [][]byte
	// Message: ["tag.name", 1441588984, {"message": "bar"}]
	m := msgp.AppendArrayHeader(nil, 3)
	m = msgp.AppendString(m, "tag.name")
	m = msgp.AppendInt64(m, 1441588984)
	out = append(out, rec(m))
	// Message with EventTime and options.
	m = msgp.AppendArrayHeader(nil, 4)
	m = msgp.AppendString(m, "tag.name")
	out = append(out, opts(rec(et(m)), "text"))
	// Forward: ["tag.name", [[time, record], ...], option]
	f := msgp.AppendArrayHeader(nil, 3)
	f = msgp.AppendString(f, "tag.name")
	f = msgp.AppendArrayHeader(f, 2)
	out = append(out, opts(entry(entry(f)), ""))
	// PackedForward.
	stream := entry(entry(nil))
	p := msgp.AppendArrayHeader(nil, 3)
	p = msgp.AppendString(p, "tag.name")
	p = msgp.AppendBytes(p, stream)
	out = append(out, opts(p, ""))
	// CompressedPackedForward.
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(stream)
	zw.Close()
	c := msgp.AppendArrayHeader(nil, 3)
	c = msgp.AppendString(c, "tag.name")
	c = msgp.AppendBytes(c, z.Bytes())
	out = append(out, opts(c, "gzip"))
	// PING and a heartbeat.
	ping := msgp.AppendArrayHeader(nil, 6)
	for _, s := range []string{"PING", "host", "salt", "digest", "user", "pwdigest"} {
		ping = msgp.AppendString(ping, s)
	}
	out = append(out, ping, []byte{0xc0})
	return out
}

func FuzzDecode(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s)
	}
	lim := Limits{MaxMessageBytes: 1 << 20, MaxRecords: 1000, MaxRecordBytes: 64 << 10}
	d := NewDecoder(lim)
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := Frame(b)
		if err != nil {
			var fe *Error
			if !errors.Is(err, ErrShort) && !errors.As(err, &fe) {
				t.Fatalf("Frame: unexpected error type %T", err)
			}
			return
		}
		var m Message
		if err := d.Decode(b[:n], &m); err != nil {
			var fe *Error
			if !errors.As(err, &fe) || fe.Reason == "" {
				t.Fatalf("Decode: error %v not an *Error with a reason", err)
			}
			if len(m.Entries) != 0 {
				t.Fatal("entries returned with an error")
			}
			return
		}
		if len(m.Entries)+m.Dropped > lim.MaxRecords {
			t.Fatalf("%d entries, limit %d", len(m.Entries), lim.MaxRecords)
		}
		for _, e := range m.Entries {
			if !json.Valid(e.Record) || e.Record[0] != '{' {
				t.Fatalf("record is not a JSON object: %q", e.Record)
			}
			if len(e.Record) > lim.MaxRecordBytes {
				t.Fatalf("record of %d bytes", len(e.Record))
			}
			if e.Time < 0 {
				t.Fatalf("time %d", e.Time)
			}
		}
	})
}
