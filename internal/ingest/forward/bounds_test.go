package forward_test

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/chronostream/chronostream/internal/ingest/forward"
	"github.com/chronostream/chronostream/internal/server"
)

// TestOversizedRecordBoundedAlloc: a record over the limit is dropped
// without being encoded whole. A 30 MiB string of NULs escapes to 180 MiB
// of JSON; the decoder must stop at the limit (1 MiB) and skip the rest.
func TestOversizedRecordBoundedAlloc(t *testing.T) {
	b := msgp.AppendArrayHeader(nil, 3)
	b = msgp.AppendString(b, "big")
	b = msgp.AppendInt64(b, 1)
	b = msgp.AppendMapHeader(b, 2)
	b = msgp.AppendString(b, "nul")
	b = msgp.AppendStringFromBytes(b, make([]byte, 30<<20))
	b = msgp.AppendString(b, "arr") // a large array of small strings: checked per element
	b = msgp.AppendArrayHeader(b, 1<<20)
	for range 1 << 20 {
		b = msgp.AppendString(b, "\x00\x00\x00\x00")
	}
	d := forward.NewDecoder(forward.Limits{MaxMessageBytes: 64 << 20, MaxRecordBytes: 1 << 20})
	var m forward.Message
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err := d.Decode(b, &m)
	runtime.ReadMemStats(&after)
	if err != nil || len(m.Entries) != 0 || m.Dropped != 1 {
		t.Fatalf("Decode: %v, %d entries, %d dropped; want the record dropped", err, len(m.Entries), m.Dropped)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Fatalf("decoding a record over the 1 MiB limit allocated %d MiB", alloc>>20)
	}
}

// TestUnauthenticatedBigMessage: with a shared key, a client that sends
// events instead of a PING is cut off after a few KiB, its message neither
// buffered whole nor decoded.
func TestUnauthenticatedBigMessage(t *testing.T) {
	var decodes atomic.Int64
	forward.SetTestHookDecode(func() { decodes.Add(1) })
	defer forward.SetTestHookDecode(nil)
	s := runServer(t, server.Options{ForwardSharedKey: "k"})
	c := dial(t, s.ForwardAddr())
	c.helo()
	msg := packedMode("anon.big", "x", 20000) // about 1 MB
	if len(msg) < 512<<10 {
		t.Fatalf("message of %d bytes", len(msg))
	}
	_ = c.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, _ = c.c.Write(msg) // fails once the server closes
	c.expectClosed()
	if n := decodes.Load(); n != 0 {
		t.Errorf("%d messages decoded before the handshake, want none", n)
	}
	if evs := read(t, s, "logs", "anon.big"); len(evs) != 0 {
		t.Fatalf("%d events stored", len(evs))
	}
}

// TestFramingLargeMessageInPieces: a 14 MB message that arrives in
// 16 KiB writes is not re-scanned on every read: the framing attempts are
// O(log n), not O(n / 16 KiB) (about 900).
func TestFramingLargeMessageInPieces(t *testing.T) {
	var frames atomic.Int64
	forward.SetTestHookFrame(func() { frames.Add(1) })
	defer forward.SetTestHookFrame(nil)
	s := runServer(t, server.Options{})
	c := dial(t, s.ForwardAddr())
	msg := packedMode("frame.big", "big", 360000)
	if len(msg) < 12<<20 {
		t.Fatalf("message of %d bytes", len(msg))
	}
	for rest := msg; len(rest) > 0; {
		n := min(len(rest), 16<<10)
		c.send(rest[:n])
		rest = rest[n:]
	}
	c.expectAck("big")
	if n := frames.Load(); n > 16 {
		t.Fatalf("%d framing attempts for a %d-byte message in 16 KiB writes", n, len(msg))
	}
	t.Logf("%d framing attempts for %d bytes", frames.Load(), len(msg))

	// Forward mode (an array of small entries) is scanned once too: each
	// attempt goes on from where the last stopped.
	frames.Store(0)
	fmsg := forwardMode("frame.fwd", "fwd", 100000)
	for rest := fmsg; len(rest) > 0; {
		n := min(len(rest), 16<<10)
		c.send(rest[:n])
		rest = rest[n:]
	}
	c.expectAck("fwd")
	if frames.Load() > int64(len(fmsg)/(16<<10))+64 {
		t.Fatalf("%d framing attempts", frames.Load())
	}
}

// TestFramerMatchesFrame: fed a stream in pieces, the incremental framer
// cuts it where Frame does.
func TestFramerMatchesFrame(t *testing.T) {
	var stream []byte
	for _, m := range [][]byte{messageMode("a", "1"), forwardMode("b", "2", 7), {0xc0}, packedMode("c", "3", 9), compressedMode("d", "4", 20)} {
		stream = append(stream, m...)
	}
	for _, step := range []int{1, 3, 17, 1000} {
		var f forward.Framer
		start, end := 0, 0
		for start < len(stream) {
			n, err := f.Next(stream[start:end])
			if err == forward.ErrShort {
				if end == len(stream) {
					t.Fatalf("step %d: short at the end", step)
				}
				end = min(len(stream), max(end+step, start+f.Need()))
				continue
			}
			want, werr := forward.Frame(stream[start:])
			if err != nil || werr != nil || n != want {
				t.Fatalf("step %d at %d: %d %v, Frame says %d %v", step, start, n, err, want, werr)
			}
			start += n
		}
	}
}
