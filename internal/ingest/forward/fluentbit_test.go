package forward_test

import (
	"fmt"
	"testing"

	"github.com/tinylib/msgp/msgp"

	"github.com/chronostream/chronostream/internal/ingest/forward"
	"github.com/chronostream/chronostream/internal/server"
)

// Golden messages in the shapes Fluent Bit's forward output documents.

// metaEntry is an event with metadata, as Fluent Bit sends it with
// Retain_metadata_in_forward_mode: [[time, {metadata}], record].
func metaEntry(b []byte, sec uint32, meta map[string]string, msg string) []byte {
	b = msgp.AppendArrayHeader(b, 2)
	b = msgp.AppendArrayHeader(b, 2)
	b = append(b, 0xd7, 0x00, byte(sec>>24), byte(sec>>16), byte(sec>>8), byte(sec), 0, 0, 0, 5) // EventTime
	b = msgp.AppendMapHeader(b, uint32(len(meta)))
	for k, v := range meta {
		b = msgp.AppendString(b, k)
		b = msgp.AppendString(b, v)
	}
	b = msgp.AppendMapHeader(b, 1)
	b = msgp.AppendString(b, "log")
	return msgp.AppendString(b, msg)
}

func TestDecodeEventMetadata(t *testing.T) {
	var packed []byte
	packed = metaEntry(packed, 1720000000, map[string]string{"otlp": "x"}, "one")
	packed = metaEntry(packed, 1720000001, map[string]string{}, "two")
	b := msgp.AppendArrayHeader(nil, 3)
	b = msgp.AppendString(b, "fb.meta")
	b = msgp.AppendBytes(b, packed)
	b = msgp.AppendMapHeader(b, 2)
	b = msgp.AppendString(b, "size")
	b = msgp.AppendInt(b, 2)
	b = msgp.AppendString(b, "chunk")
	b = msgp.AppendString(b, "p1")
	var m forward.Message
	if err := forward.NewDecoder(forward.Limits{}).Decode(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Entries) != 2 {
		t.Fatalf("%d entries", len(m.Entries))
	}
	if got, want := string(m.Entries[0].Record), `{"log":"one","_metadata":{"otlp":"x"}}`; got != want {
		t.Errorf("record %s, want %s", got, want)
	}
	if got, want := string(m.Entries[1].Record), `{"log":"two"}`; got != want {
		t.Errorf("record %s, want %s", got, want)
	}
	if m.Entries[0].Time != 1720000000_000000005 {
		t.Errorf("time %d", m.Entries[0].Time)
	}
}

// TestMetadataAndSignals: Fluent Bit's forward output with metadata is
// stored and acknowledged; a metrics chunk (fluent_signal 1) is
// acknowledged and dropped, never left for the client to resend forever.
func TestMetadataAndSignals(t *testing.T) {
	s := runServer(t, server.Options{})
	c := dial(t, s.ForwardAddr())

	// Forward mode, entries with metadata.
	b := msgp.AppendArrayHeader(nil, 3)
	b = msgp.AppendString(b, "fb.fwd")
	b = msgp.AppendArrayHeader(b, 3)
	for i := range 3 {
		b = metaEntry(b, 1720000000, map[string]string{"i": fmt.Sprint(i)}, "m")
	}
	b = msgp.AppendMapHeader(b, 2)
	b = msgp.AppendString(b, "chunk")
	b = msgp.AppendString(b, "f1")
	b = msgp.AppendString(b, "fluent_signal")
	b = msgp.AppendInt(b, 0)
	c.send(b)
	c.expectAck("f1")
	evs := read(t, s, "logs", "fb.fwd")
	if len(evs) != 3 || string(evs[2].Body) != `{"log":"m","_metadata":{"i":"2"}}` {
		t.Fatalf("%d events %+v", len(evs), evs)
	}

	// A metrics chunk: its entries are a cmetrics payload, not records.
	b = msgp.AppendArrayHeader(nil, 3)
	b = msgp.AppendString(b, "fb.metrics")
	b = msgp.AppendBytes(b, []byte{0x85, 0xa4, 'm', 'e', 't', 'a'}) // not [time, record] pairs
	b = msgp.AppendMapHeader(b, 2)
	b = msgp.AppendString(b, "chunk")
	b = msgp.AppendString(b, "m1")
	b = msgp.AppendString(b, "fluent_signal")
	b = msgp.AppendInt(b, 1)
	c.send(b)
	c.expectAck("m1")
	if evs := read(t, s, "logs", "fb.metrics"); len(evs) != 0 {
		t.Fatalf("%d events stored of a metrics chunk", len(evs))
	}
	// The connection goes on.
	c.send(messageMode("fb.after", "a1"))
	c.expectAck("a1")
}
