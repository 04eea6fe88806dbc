package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/jsonev"
	"github.com/chronostream/chronostream/internal/store"
)

// awkwardEvents exercise every body encoding and the characters the formats
// must escape.
func awkwardEvents() []event.Event {
	t := base.UnixNano()
	return []event.Event{
		{Time: t + 1, Kind: event.KindLog, Format: event.FormatJSON, Body: []byte("{\n  \"msg\": \"pretty\\nprinted\",\r\n  \"n\": 1.5e300, \"tags\": {\"a,b\": \"x\\\"y\"}\n}")},
		{Time: t + 2, Body: []byte("plain text, with \"quotes\"\nand a newline")},
		{Time: t + 3, Body: []byte{0xff, 0x00, 0xfe, '\n', ','}},
		{Time: t + 4, Body: []byte("windows\r\nline")},
		{Time: t + 5, Body: []byte("base64:looks encoded")},
		{Time: t + 6, Body: nil},
		{Time: t + 7, Kind: event.KindTrace, Body: []byte(" leading space, ünïcødé \u2028 \t tab"),
			Tags: map[string]string{"k=1": "v,\"2\"\n", "": "empty key"},
			Fields: map[string]event.Value{"f": event.Float(-0.25), "nan": event.Float(math.NaN()), "inf": event.Float(math.Inf(1)),
				"u": event.Uint(math.MaxUint64), "i": event.Int(math.MinInt64), "b": event.Bool(true), "s": event.String("a\x01b")}},
		{Time: t + 8, Kind: event.KindAnnotation, Format: event.FormatJSON, Body: []byte(`"just a string"`), Source: "src-1"},
		{Time: t + 9, Kind: event.KindMetric, Format: event.FormatJSON, Body: []byte(`[1,2,{"x":null}]`)},
	}
}

// stored reads the chronicle back from the store itself, expanded as the API does.
func stored(t *testing.T, e *env, chronicle string) []event.Event {
	t.Helper()
	var p fastjson.Parser
	var out []event.Event
	_, err := e.store.Read(context.Background(), store.Query{Chronicle: chronicle}, func(ev *event.Event) error {
		jsonev.Expand(&p, ev)
		out = append(out, *ev)
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compact(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("%v: %q", err, b)
	}
	return buf.String()
}

// checkFields compares decoded fields with the stored values' text forms.
func checkFields(t *testing.T, seq uint64, got map[string]any, want map[string]event.Value) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("event %d fields %v, want %v", seq, got, want)
	}
	for k, v := range want {
		var s string
		switch g := got[k].(type) {
		case json.Number:
			s = g.String()
		case string:
			s = g
		case bool:
			s = strconv.FormatBool(g)
		default:
			t.Fatalf("event %d field %q: %T", seq, k, g)
		}
		if s != v.Text() {
			t.Fatalf("event %d field %q = %s, want %s", seq, k, s, v.Text())
		}
	}
}

func checkTags(t *testing.T, seq uint64, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("event %d tags %v, want %v", seq, got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("event %d tag %q = %q, want %q", seq, k, got[k], v)
		}
	}
}

func TestExportNDJSON(t *testing.T) {
	e := newEnv(t, Config{})
	e.append("x", "s1", awkwardEvents()...)
	e.append("x", "s 2", awkwardEvents()...)
	want := stored(t, e, "x")
	for _, accept := range []string{"", "application/x-ndjson"} {
		path := "/api/v1/chronicles/x/events?sort=seq"
		if accept == "" {
			path += "&format=ndjson"
		}
		resp := e.do("GET", path, nil, "Accept", accept)
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/x-ndjson" {
			t.Fatalf("status %d, type %q", resp.StatusCode, ct)
		}
		sc := bufio.NewScanner(resp.Body)
		n := 0
		for sc.Scan() {
			if n >= len(want) {
				t.Fatalf("extra line %s", sc.Text())
			}
			w := want[n]
			dec := json.NewDecoder(strings.NewReader(sc.Text()))
			dec.UseNumber()
			var got struct {
				eventOut
				Fields map[string]any `json:"fields"`
			}
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("line %d: %v: %s", n+1, err, sc.Text())
			}
			if got.Seq != w.Seq || got.Time.UnixNano() != w.Time || got.Story != w.Story || got.Kind != w.Kind.String() || got.Source != w.Source {
				t.Fatalf("line %d: %s, want %+v", n+1, sc.Text(), w)
			}
			checkTags(t, w.Seq, got.Tags, w.Tags)
			checkFields(t, w.Seq, got.Fields, w.Fields)
			switch {
			case w.Format == event.FormatJSON:
				if compact(t, got.Body) != compact(t, w.Body) {
					t.Fatalf("line %d body %s, want %s", n+1, got.Body, w.Body)
				}
			case got.BodyBase64 != nil:
				if !bytes.Equal(got.BodyBase64, w.Body) {
					t.Fatalf("line %d base64 body %q", n+1, got.BodyBase64)
				}
			default:
				var s string
				if err := json.Unmarshal(got.Body, &s); err != nil || s != string(w.Body) {
					t.Fatalf("line %d body %s, want %q", n+1, got.Body, w.Body)
				}
			}
			n++
		}
		resp.Body.Close()
		if n != len(want) {
			t.Fatalf("%d lines, want %d", n, len(want))
		}
	}
}

func TestExportCSV(t *testing.T) {
	e := newEnv(t, Config{})
	e.append("x", "s1", awkwardEvents()...)
	e.append("x", "s,2", awkwardEvents()...)
	want := stored(t, e, "x")
	resp := e.do("GET", "/api/v1/chronicles/x/events?sort=seq", nil, "Accept", "text/csv")
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/csv; charset=utf-8" {
		t.Fatalf("status %d, type %q", resp.StatusCode, ct)
	}
	r := csv.NewReader(resp.Body)
	header, err := r.Read()
	if err != nil || strings.Join(header, ",") != "seq,time,story,kind,tags,fields,body" {
		t.Fatalf("header %q: %v", header, err)
	}
	n := 0
	for ; ; n++ {
		row, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		w := want[n]
		tm, err := time.Parse(time.RFC3339Nano, row[1])
		if err != nil || row[0] != strconv.FormatUint(w.Seq, 10) || tm.UnixNano() != w.Time || row[2] != w.Story || row[3] != w.Kind.String() {
			t.Fatalf("row %d %q, want %+v", n, row, w)
		}
		var tags map[string]string
		if err := json.Unmarshal([]byte(row[4]), &tags); err != nil {
			t.Fatal(err)
		}
		checkTags(t, w.Seq, tags, w.Tags)
		dec := json.NewDecoder(strings.NewReader(row[5]))
		dec.UseNumber()
		var fields map[string]any
		if err := dec.Decode(&fields); err != nil {
			t.Fatal(err)
		}
		checkFields(t, w.Seq, fields, w.Fields)
		body := []byte(row[6])
		if b64, ok := strings.CutPrefix(row[6], "base64:"); ok {
			if body, err = base64.StdEncoding.DecodeString(b64); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(body, w.Body) && !(len(body) == 0 && len(w.Body) == 0) {
			t.Fatalf("row %d body %q, want %q", n, body, w.Body)
		}
	}
	if n != len(want) {
		t.Fatalf("%d rows, want %d", n, len(want))
	}
}

// An export larger than one flush streams as several writes and still parses.
func TestExportLarge(t *testing.T) {
	e := newEnv(t, Config{})
	for i := 0; i < 5000; i += 1000 {
		e.append("big", "s", seedEvents(i, 1000)...)
	}
	resp := e.do("GET", "/api/v1/chronicles/big/stories/s/events?format=ndjson&tag.host=h1", nil)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	n := 0
	for sc.Scan() {
		ev := decode[eventOut](t, sc.Text())
		if fieldI(t, ev) != 3*n+1 {
			t.Fatalf("line %d: %s", n, sc.Text())
		}
		n++
	}
	if n != 1667 {
		t.Fatalf("%d lines", n)
	}
	var p page
	e.getJSON("/api/v1/chronicles/big/events?sort=seq&limit=3000", 200, &p)
	if len(p.Events) != 3000 || p.Next != strconv.FormatUint(p.Events[2999].Seq, 10) {
		t.Fatalf("json page of 3000: %d events, next %q", len(p.Events), p.Next)
	}
}
