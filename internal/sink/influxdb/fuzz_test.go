package influxdb

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest/lineproto"
	"github.com/chronostream/chronostream/internal/sink"
)

// encodeLine renders one event as the sink does.
func encodeLine(x *encoder, chronicle string, e *event.Event, rank int) ([]byte, error) {
	line, err := x.series(nil, chronicle, e)
	if err != nil {
		return nil, err
	}
	return x.point(line, e, rank)
}

// FuzzEncodeRoundTrip: whatever the encoder writes, a line-protocol parser
// (ingest's, the grammar chronostream accepts) reads back to the same
// measurement, tags, typed fields and time; what it cannot write, it
// refuses as unrepresentable rather than writing something else.
func FuzzEncodeRoundTrip(f *testing.F) {
	f.Add("cpu usage", "host", "a b,c=d", "v", `say "hi" \ there`, 1.5, int64(-7), uint64(42), true, int64(1700000000000000001), false)
	f.Add("m,=x", "k=", "v\\", "f=1", "line\nbreak", math.Inf(1), int64(math.MinInt64), uint64(math.MaxUint64), false, int64(-1), true)
	f.Add("", "", "", "", "", 0.0, int64(0), uint64(0), false, int64(0), false)
	f.Add("#comment", "t", "v", "f", "s", 1.0, int64(1), uint64(1), true, int64(1), true)
	f.Add("é/日本", "t a", "\\x", "f\\ ", "\\", -0.0, int64(1), uint64(1), true, int64(5), true)
	f.Fuzz(func(t *testing.T, story, tk, tv, fk, sv string, fv float64, iv int64, uv uint64, bv bool, ts int64, v1 bool) {
		if event.ValidateStory(story) != nil {
			return
		}
		e := event.Event{Story: story, Time: ts, Tags: map[string]string{tk: tv}, Fields: map[string]event.Value{
			fk + "_s": event.String(sv), fk + "_f": event.Float(fv), fk + "_i": event.Int(iv), fk + "_u": event.Uint(uv), fk + "_b": event.Bool(bv)}}
		x := &encoder{v1: v1, seqTag: "_seq"}
		line, err := encodeLine(x, "chron", &e, 0)
		if err == nil && strings.HasPrefix(story, "#") {
			t.Fatalf("encoded %q: InfluxDB reads a line starting with # as a comment", line)
		}
		if err != nil {
			if !errors.Is(err, errUnrepresentable) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		m, tsBack, err := lineproto.Parse(line[:len(line)-1], lineproto.Nanosecond, 0)
		if err != nil {
			t.Fatalf("encoded %q does not parse: %v", line, err)
		}
		if string(m) != story || tsBack != ts {
			t.Fatalf("measurement %q time %d, want %q %d (line %q)", m, tsBack, story, ts, line)
		}
		back := event.Event{Format: event.FormatLine, Body: line[:len(line)-1], Time: ts}
		if err := lineproto.Expand(&back); err != nil {
			t.Fatalf("expand %q: %v", line, err)
		}
		wantTags := map[string]string{"chronicle": "chron", "story": story}
		if tk != "" && tv != "" && tk != "chronicle" && tk != "story" && tk != "_seq" {
			wantTags[tk] = tv
		}
		if len(back.Tags) != len(wantTags) {
			t.Fatalf("tags %q, want %q (line %q)", back.Tags, wantTags, line)
		}
		for k, v := range wantTags {
			if back.Tags[k] != v {
				t.Fatalf("tag %q = %q, want %q (line %q)", k, back.Tags[k], v, line)
			}
		}
		for k, v := range e.Fields {
			got, ok := back.Fields[k]
			if !ok {
				t.Fatalf("field %q missing from %q", k, line)
			}
			want := v
			if v.Type() == event.TypeUint && v1 {
				want = event.Int(int64(v.UintValue()))
			}
			if got.Type() != want.Type() || got.Text() != want.Text() {
				t.Fatalf("field %q = %v (%v), want %v (%v); line %q", k, got.Text(), got.Type(), want.Text(), want.Type(), line)
			}
		}
	})
}

// Events that share a series and a timestamp get ranks in the sequence
// tag, the same ones when delivered again.
func TestRanksAreStableAcrossRedelivery(t *testing.T) {
	s, err := NewSink(Config{URL: "http://127.0.0.1:1/write?db=x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := func(seq uint64, ts int64) event.Event {
		return event.Event{Seq: seq, Story: "m", Time: ts, Fields: map[string]event.Value{"v": event.Int(int64(seq))}}
	}
	first := []event.Event{ev(1, 10), ev(2, 10), ev(3, 11)}
	body, err := s.encode(sinkBatch(first))
	if err != nil {
		t.Fatal(err)
	}
	want := "m,chronicle=c,story=m v=1i 10\nm,chronicle=c,story=m,_seq=1 v=2i 10\nm,chronicle=c,story=m v=3i 11\n"
	if string(body) != want {
		t.Fatalf("first batch:\n%s\nwant\n%s", body, want)
	}
	// The next batch continues the group; a redelivered event keeps its rank.
	body, _ = s.encode(sinkBatch([]event.Event{ev(2, 10), ev(4, 10)}))
	want = "m,chronicle=c,story=m,_seq=1 v=2i 10\nm,chronicle=c,story=m,_seq=2 v=4i 10\n"
	if string(body) != want {
		t.Fatalf("second batch:\n%s\nwant\n%s", body, want)
	}
}

func sinkBatch(evs []event.Event) sink.Batch { return sink.Batch{Chronicle: "c", Events: evs} }

// FuzzSettings: any settings document is refused with an error or builds
// a sink writing to /write or /api/v2/write in ns precision; a password in
// the URL never shows in an error or in the URL the sink logs.
func FuzzSettings(f *testing.F) {
	f.Add([]byte(`{"url":"http://127.0.0.1:8086/write?db=x&rp=r&precision=s"}`))
	f.Add([]byte(`{"url":"https://u:pw-secret@h:8086/write?db=x"}`))
	f.Add([]byte(`{"url":"http://h/api/v2/write?org=o&bucket=b","token":"t","timeout":"2s","gzip":false,"sequence_tag":"n"}`))
	f.Add([]byte(`{"url":"http://h/api/v2/write?org=o","username":"u"}`))
	f.Add([]byte(`{"url":"ftp://h/write?db=x","bogus":1}`))
	f.Add([]byte(`{"url":"http://u:pw-secret@h/query?db=x"}`))
	f.Fuzz(func(t *testing.T, settings []byte) {
		s, err := New(settings, nil)
		if err != nil {
			if strings.Contains(err.Error(), ":pw-secret@") {
				t.Fatalf("error shows the password: %v", err)
			}
			return
		}
		is := s.(*Sink)
		if strings.Contains(is.url, ":pw-secret@") || !strings.Contains(is.url, "precision=ns") ||
			!strings.Contains(is.url, "/write?") {
			t.Fatalf("sink url %q", is.url)
		}
	})
}
