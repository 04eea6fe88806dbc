package vivo_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
	"github.com/chronostream/chronostream/internal/vivo"
)

func storeQuery(chronicle, story string) store.Query {
	return store.Query{Chronicle: chronicle, Story: story}
}

var client = &http.Client{Timeout: time.Minute}

// vivoServer runs a server with the Vivo listener on a free port.
func vivoServer(t testing.TB, mod func(*server.Options)) *server.Server {
	t.Helper()
	o := server.Options{VivoAddr: "127.0.0.1:0", AutoCreate: true}
	if mod != nil {
		mod(&o)
	}
	return servertest.RunServer(t, o)
}

// post sends body to the input and returns the status, the stored count
// header and the body.
func post(t testing.TB, base, path, contentType, body string) (int, int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n, _ := strconv.Atoi(resp.Header.Get("X-Chronostream-Stored"))
	return resp.StatusCode, n, string(b)
}

func mustPost(t testing.TB, base, tag string, body string) {
	t.Helper()
	if status, _, msg := post(t, base, "/vivo/input/"+tag, "application/json", body); status != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", tag, status, msg)
	}
}

// vivoPage is one exporter response.
type vivoPage struct {
	status           int
	header           http.Header
	lines            []json.RawMessage
	start, end, next uint64
	hasStart, hasEnd bool
}

func get(t testing.TB, url string, hdr map[string]string) vivoPage {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := vivoPage{status: resp.StatusCode, header: resp.Header}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 8<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		line := json.RawMessage(append([]byte(nil), sc.Bytes()...))
		if p.status == http.StatusOK && !json.Valid(line) {
			t.Fatalf("GET %s: invalid JSON line %q", url, line)
		}
		p.lines = append(p.lines, line)
	}
	parse := func(h string) (uint64, bool) {
		v := resp.Header.Get(h)
		if v == "" {
			return 0, false
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("GET %s: header %s: %q", url, h, v)
		}
		return n, true
	}
	p.start, p.hasStart = parse("Vivo-Stream-Start-ID")
	p.end, p.hasEnd = parse("Vivo-Stream-End-ID")
	var ok bool
	if p.next, ok = parse("Vivo-Stream-Next-ID"); !ok && p.status == http.StatusOK {
		t.Fatalf("GET %s: no Vivo-Stream-Next-ID", url)
	}
	return p
}

// logRecord decodes a log line [[ts,{"_tag":...}],record].
func logRecord(t testing.TB, line json.RawMessage) (ts int64, tag string, rec map[string]any) {
	t.Helper()
	var outer [2]json.RawMessage
	var meta [2]json.RawMessage
	var m struct {
		Tag string `json:"_tag"`
	}
	if err := json.Unmarshal(line, &outer); err != nil {
		t.Fatalf("log line %s: %v", line, err)
	}
	if err := json.Unmarshal(outer[0], &meta); err != nil {
		t.Fatalf("log line %s: %v", line, err)
	}
	if err := json.Unmarshal(meta[0], &ts); err != nil {
		t.Fatalf("log line %s: timestamp: %v", line, err)
	}
	if err := json.Unmarshal(meta[1], &m); err != nil {
		t.Fatalf("log line %s: metadata: %v", line, err)
	}
	if err := json.Unmarshal(outer[1], &rec); err != nil {
		t.Fatalf("log line %s: record: %v", line, err)
	}
	return ts, m.Tag, rec
}

func TestInputExportRoundTrip(t *testing.T) {
	s := vivoServer(t, nil)
	base := "http://" + s.Addr()
	vivoURL := "http://" + s.VivoAddr()

	// One object (as Vivo's README curl), an array of objects, NDJSON.
	status, n, msg := post(t, base, "/vivo/input/app.web", "application/json", `{"hello": "Calyptia!"}`)
	if status != http.StatusCreated || n != 1 {
		t.Fatalf("object: %d stored %d: %s", status, n, msg)
	}
	if status, n, msg = post(t, base, "/vivo/input/app.web", "application/json", `[{"n":1},{"n":2,"time":"2024-01-02T03:04:05Z"}]`); status != http.StatusCreated || n != 2 {
		t.Fatalf("array: %d stored %d: %s", status, n, msg)
	}
	if status, n, msg = post(t, base, "/vivo/input/app.web", "application/x-ndjson", "{\"n\":3}\n{\"n\":4,\n \"multi\":\"line\"}\n"); status != http.StatusCreated || n != 2 {
		t.Fatalf("ndjson: %d stored %d: %s", status, n, msg)
	}
	// The bare path takes Fluent Bit's default tag.
	if status, n, msg = post(t, base, "/vivo/input", "", `{"bare":true}`); status != http.StatusCreated || n != 1 {
		t.Fatalf("bare: %d stored %d: %s", status, n, msg)
	}

	for _, u := range []string{vivoURL + "/logs", base + "/vivo/logs", vivoURL + "/api/v1/logs", vivoURL + "/chronicles/logs/logs"} {
		p := get(t, u, nil)
		if p.status != http.StatusOK || len(p.lines) != 6 {
			t.Fatalf("GET %s: %d, %d lines: %s", u, p.status, len(p.lines), p.lines)
		}
		if ct := p.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: Content-Type %q", u, ct)
		}
		wantTags := []string{"app.web", "app.web", "app.web", "app.web", "app.web", "http.0"}
		var got []string
		for i, l := range p.lines {
			ts, tag, rec := logRecord(t, l)
			got = append(got, tag)
			if ts <= 0 {
				t.Errorf("line %d: timestamp %d", i, ts)
			}
			if i == 0 && rec["hello"] != "Calyptia!" {
				t.Errorf("line 0: record %v", rec)
			}
			if i == 4 && rec["multi"] != "line" {
				t.Errorf("line 4: record %v", rec)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(wantTags) {
			t.Errorf("GET %s: tags %v, want %v", u, got, wantTags)
		}
		if string(p.lines[0]) != `[[`+strconv.FormatInt(mustTS(t, p.lines[0]), 10)+`,{"_tag":"app.web"}],{"hello": "Calyptia!"}]` {
			t.Errorf("the record is not kept verbatim: %s", p.lines[0])
		}
		if ts, _, _ := logRecord(t, p.lines[2]); ts != time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano() {
			t.Errorf("the record's time is not the event time: %d", ts)
		}
		if !p.hasStart || !p.hasEnd || p.start > p.end || p.next != p.end+1 {
			t.Errorf("GET %s: ids start %d end %d next %d", u, p.start, p.end, p.next)
		}
	}

	// Stored as log events of chronicle "logs", story = tag, with a source.
	var kinds []event.Kind
	var src string
	if _, err := s.Store().Read(context.Background(), storeQuery("logs", "app.web"), func(e *event.Event) error {
		kinds = append(kinds, e.Kind)
		src = e.Source
		return nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	if len(kinds) != 5 || kinds[0] != event.KindLog {
		t.Fatalf("stored kinds %v", kinds)
	}
	// The requests are counted in their client's source, soon after: one
	// client, though they differ in Content-Type (no part of its identity).
	var b []byte
	testutil.Eventually(t, 10*time.Second, func() bool {
		resp, err := client.Get(base + "/api/v1/sources/" + src)
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"count":5,"requests":3`)
	}, "the client's count")
	if !strings.Contains(string(b), `"vivo-http"`) {
		t.Errorf("source %s: %s", src, b)
	}
}

func mustTS(t testing.TB, l json.RawMessage) int64 {
	ts, _, _ := logRecord(t, l)
	return ts
}

func TestInputErrors(t *testing.T) {
	s := vivoServer(t, func(o *server.Options) { o.Limits.MaxBodyBytes = 1 << 10; o.Limits.MaxEventBytes = 512 })
	base := "http://" + s.Addr()
	tests := []struct {
		name, body string
		status     int
		want       string
		stored     int
	}{
		{"bad json", `{"a":}`, 400, "line 1: invalid JSON", 0},
		{"bad json on line 3", "{\"a\":1}\n{\"b\":2}\n{\"c\" 3}", 400, "line 3: invalid JSON", 2},
		{"not an object", `[{"a":1}, 42]`, 400, "line 1: a record must be a JSON object, not a number", 1},
		{"string", `"hello"`, 400, "not a string", 0},
		{"unclosed array", `[{"a":1}`, 400, "the array is not closed", 1},
		{"empty", ``, 400, "holds no record", 0},
		{"record too large", `{"a":"` + strings.Repeat("x", 600) + `"}`, 413, "exceeds the limit", 0},
		{"body too large", strings.Repeat(`{"a":1}`, 200), 413, "exceeds the limit", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, n, msg := post(t, base, "/vivo/input/errs", "application/json", tt.body)
			if status != tt.status || !strings.Contains(msg, tt.want) || n != tt.stored {
				t.Fatalf("got %d stored %d %q; want %d stored %d containing %q", status, n, msg, tt.status, tt.stored, tt.want)
			}
			if !strings.HasPrefix(msg, "error: ") {
				t.Errorf("not in Fluent Bit's error format: %q", msg)
			}
		})
	}
}

func TestInputTagFromPath(t *testing.T) {
	s := vivoServer(t, nil)
	base := "http://" + s.Addr()
	mustPost(t, base, "a/b%20c-d.e", `{"x":1}`)
	// ?chronicle= names another chronicle, as on every compatibility endpoint.
	if status, _, msg := post(t, base, "/vivo/input/other?chronicle=elsewhere", "", `{"x":2}`); status != http.StatusCreated {
		t.Fatalf("%d %s", status, msg)
	}
	p := get(t, "http://"+s.VivoAddr()+"/logs", nil)
	if len(p.lines) != 1 {
		t.Fatalf("lines %s", p.lines)
	}
	if _, tag, _ := logRecord(t, p.lines[0]); tag != "a_b_20c_d.e" {
		t.Errorf("tag %q, want Fluent Bit's sanitized a_b_20c_d.e", tag)
	}
	p = get(t, "http://"+s.VivoAddr()+"/chronicles/elsewhere/logs", nil)
	if len(p.lines) != 1 {
		t.Fatalf("elsewhere: lines %s", p.lines)
	}
}

// TestSingleRecord is Vivo's known bug: one record sent with curl must be
// served from the very first request, by curl and by the UI's first poll
// (from = 0 - 2*limit).
func TestSingleRecord(t *testing.T) {
	s := vivoServer(t, nil)
	vivoURL := "http://" + s.VivoAddr()
	// Before anything is stored: an empty stream, not an error.
	p := get(t, vivoURL+"/logs", nil)
	if p.status != http.StatusOK || len(p.lines) != 0 || p.hasStart || p.hasEnd {
		t.Fatalf("empty: %d %s start %v end %v", p.status, p.lines, p.hasStart, p.hasEnd)
	}
	mustPost(t, "http://"+s.Addr(), "curl", `{"hello": "Calyptia!"}`)
	for _, q := range []string{"", "?from=-200", "?from=0", "?limit=1", "?from=-20&limit=10"} {
		p := get(t, vivoURL+"/logs"+q, nil)
		if len(p.lines) != 1 {
			t.Fatalf("GET /logs%s: %d lines, want the one record", q, len(p.lines))
		}
		if !p.hasStart || !p.hasEnd || p.start != p.end || p.next != p.end+1 {
			t.Errorf("GET /logs%s: start %d end %d next %d", q, p.start, p.end, p.next)
		}
		if _, _, rec := logRecord(t, p.lines[0]); rec["hello"] != "Calyptia!" {
			t.Errorf("record %v", rec)
		}
	}
}

// TestUIPolling polls as the Vivo UI does (useFluentBitStream: from =
// lastId - 2*limit, lastId = the End-ID header or 0) while records keep
// arriving: every poll must show the record sent just before it, however
// many polls went before (calyptia-vivo #206: new logs stop being pulled).
func TestUIPolling(t *testing.T) {
	s := vivoServer(t, nil)
	base, vivoURL := "http://"+s.Addr(), "http://"+s.VivoAddr()
	const limit = 5
	var lastID int64
	for i := range 60 {
		if i%7 != 3 { // some polls see nothing new
			mustPost(t, base, "ui", fmt.Sprintf(`{"i":%d}`, i))
		}
		p := get(t, fmt.Sprintf("%s/logs?from=%d", vivoURL, lastID-2*limit), nil)
		lastID = 0
		if p.hasEnd {
			lastID = int64(p.end)
		}
		if len(p.lines) == 0 {
			t.Fatalf("poll %d: nothing served", i)
		}
		want := i
		if i%7 == 3 {
			want = i - 1
		}
		if _, _, rec := logRecord(t, p.lines[len(p.lines)-1]); rec["i"] != float64(want) {
			t.Fatalf("poll %d: newest record %v, want i=%d", i, rec, want)
		}
	}
}

// TestPagingNextID pages with from=Next-ID while writers append
// concurrently, in many requests and batches: every record is read exactly
// once, in id order.
func TestPagingNextID(t *testing.T) {
	s := vivoServer(t, nil)
	base, vivoURL := "http://"+s.Addr(), "http://"+s.VivoAddr()
	// Events of other kinds in the same chronicle must not show in /logs.
	if _, err := s.Store().Append("logs", "noise", []event.Event{{Kind: event.KindMetric, Format: event.FormatJSON, Body: []byte(`{"m":1}`)}}).Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	const writers, posts, perPost = 4, 15, 7
	total := writers * posts * perPost
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range posts {
				var b strings.Builder
				b.WriteByte('[')
				for r := range perPost {
					if r > 0 {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, `{"w":%d,"p":%d,"r":%d}`, w, p, r)
				}
				b.WriteByte(']')
				if status, _, msg := post(t, base, fmt.Sprintf("/vivo/input/w%d", w%2), "application/json", b.String()); status != http.StatusCreated {
					t.Errorf("post: %d %s", status, msg)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	seen := map[string]bool{}
	var from, prevEnd uint64
	finished := false
	for polls := 0; ; polls++ {
		if polls > 10000 {
			t.Fatal("paging does not converge")
		}
		select {
		case <-done:
			finished = true
		default:
		}
		p := get(t, fmt.Sprintf("%s/logs?from=%d&limit=9", vivoURL, from), nil)
		if len(p.lines) > 9 {
			t.Fatalf("limit 9 served %d", len(p.lines))
		}
		if p.next < from {
			t.Fatalf("Next-ID went back: %d after from=%d", p.next, from)
		}
		if len(p.lines) > 0 {
			if p.start < from || p.start <= prevEnd && prevEnd != 0 {
				t.Fatalf("Start-ID %d with from=%d after End-ID %d", p.start, from, prevEnd)
			}
			prevEnd = p.end
		}
		for _, l := range p.lines {
			_, _, rec := logRecord(t, l)
			if _, ok := rec["m"]; ok {
				t.Fatalf("a metric event in /logs: %s", l)
			}
			k := fmt.Sprint(rec["w"], rec["p"], rec["r"])
			if seen[k] {
				t.Fatalf("record %s served twice", k)
			}
			seen[k] = true
		}
		from = p.next
		if finished && len(p.lines) == 0 {
			break
		}
	}
	if len(seen) != total {
		t.Fatalf("read %d records, want %d", len(seen), total)
	}
}

func TestToAndLimit(t *testing.T) {
	s := vivoServer(t, nil)
	base, vivoURL := "http://"+s.Addr(), "http://"+s.VivoAddr()
	for i := range 10 {
		mustPost(t, base, "t", fmt.Sprintf(`{"i":%d}`, i))
	}
	all := get(t, vivoURL+"/logs?from=0", nil)
	if len(all.lines) != 10 {
		t.Fatalf("%d lines", len(all.lines))
	}
	var ids []uint64
	for range all.lines {
		ids = append(ids, 0)
	}
	// Walk with limit=1 to learn each record's id.
	from := uint64(0)
	for i := range 10 {
		p := get(t, fmt.Sprintf("%s/logs?from=%d&limit=1", vivoURL, from), nil)
		if len(p.lines) != 1 || p.start != p.end {
			t.Fatalf("step %d: %d lines", i, len(p.lines))
		}
		ids[i] = p.start
		from = p.next
	}
	// from..to inclusive, as Vivo's chunk ids.
	p := get(t, fmt.Sprintf("%s/logs?from=%d&to=%d", vivoURL, ids[2], ids[5]), nil)
	if len(p.lines) != 4 || p.start != ids[2] || p.end != ids[5] || p.next != ids[5]+1 {
		t.Fatalf("from..to: %d lines, start %d end %d next %d (ids %v)", len(p.lines), p.start, p.end, p.next, ids)
	}
	// No from: the newest records (Vivo serves what its buffer holds).
	p = get(t, vivoURL+"/logs?limit=3", nil)
	if len(p.lines) != 3 || p.start != ids[7] || p.end != ids[9] {
		t.Fatalf("newest 3: start %d end %d, ids %v", p.start, p.end, ids)
	}
	// to without from: the newest at or before to.
	p = get(t, fmt.Sprintf("%s/logs?limit=2&to=%d", vivoURL, ids[4]), nil)
	if len(p.lines) != 2 || p.start != ids[3] || p.end != ids[4] {
		t.Fatalf("newest 2 to %d: start %d end %d", ids[4], p.start, p.end)
	}
	// Past the end: empty, Next-ID at or before where the next record will
	// be (the end of the log's newest block: no block is read to learn it).
	p = get(t, fmt.Sprintf("%s/logs?from=%d", vivoURL, ids[9]+1), nil)
	if len(p.lines) != 0 || p.hasStart || p.next < ids[9]+1 {
		t.Fatalf("past the end: %d lines next %d", len(p.lines), p.next)
	}
	mustPost(t, base, "t", `{"i":10}`)
	p = get(t, fmt.Sprintf("%s/logs?from=%d", vivoURL, p.next), nil)
	if len(p.lines) != 1 {
		t.Fatalf("the next record: %d lines", len(p.lines))
	}
	for _, q := range []string{"from=x", "limit=-1", "to=-5", "from=1&from=2", "limit=abc"} {
		if p := get(t, vivoURL+"/logs?"+q, nil); p.status != http.StatusBadRequest || !strings.HasPrefix(string(p.lines[0]), "error: ") {
			t.Errorf("?%s: %d %s", q, p.status, p.lines)
		}
	}
}

func TestMetricsAndTraces(t *testing.T) {
	s := vivoServer(t, nil)
	base, vivoURL := "http://"+s.Addr(), "http://"+s.VivoAddr()
	resp, err := client.Post(base+"/write?db=metrics", "text/plain", strings.NewReader("cpu,host=a usage=1.5,n=3i 1700000000000000000\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: %s", resp.Status)
	}
	p := get(t, vivoURL+"/metrics", nil)
	if len(p.lines) != 1 {
		t.Fatalf("metrics: %s", p.lines)
	}
	if want := `{"meta":{"_tag":"cpu"},"timestamp":1700000000000000000,"name":"cpu","labels":{"host":"a"},"values":{"n":3,"usage":1.5}}`; string(p.lines[0]) != want {
		t.Errorf("metric line\n got %s\nwant %s", p.lines[0], want)
	}
	// The main port's /metrics stays the server's own; Vivo's is /vivo/metrics.
	resp, err = client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "# HELP") {
		t.Errorf("main /metrics is not Prometheus text: %.200s", b)
	}
	if p := get(t, base+"/vivo/metrics", nil); len(p.lines) != 1 {
		t.Errorf("/vivo/metrics: %s", p.lines)
	}

	span := `{"trace_id":"0102","span_id":"03","name":"GET /"}`
	if _, err := s.Store().Append("otel", "checkout", []event.Event{{Time: 42, Kind: event.KindTrace, Format: event.FormatJSON, Body: []byte(span)}}).Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	p = get(t, vivoURL+"/traces", nil)
	if want := `{"meta":{"_tag":"checkout"},"timestamp":42,"record":` + span + `}`; len(p.lines) != 1 || string(p.lines[0]) != want {
		t.Errorf("traces: %s, want %s", p.lines, want)
	}
	// OTLP logs live in chronicle otel: readable at /chronicles/otel/logs.
	if p := get(t, vivoURL+"/chronicles/otel/logs", nil); len(p.lines) != 0 {
		t.Errorf("otel logs: %s", p.lines)
	}
	if p := get(t, vivoURL+"/chronicles/otel/traces", nil); len(p.lines) != 1 {
		t.Errorf("otel traces: %s", p.lines)
	}
}

func TestConfiguredChronicles(t *testing.T) {
	s := vivoServer(t, func(o *server.Options) {
		o.VivoChronicles = map[vivo.Signal]string{vivo.Logs: "app"}
	})
	base := "http://" + s.Addr()
	if status, _, msg := post(t, base, "/vivo/input/x?chronicle=app", "", `{"a":1}`); status != http.StatusCreated {
		t.Fatal(status, msg)
	}
	mustPost(t, base, "y", `{"b":1}`) // to "logs"
	p := get(t, "http://"+s.VivoAddr()+"/logs", nil)
	if len(p.lines) != 1 {
		t.Fatalf("%s", p.lines)
	}
	if _, tag, _ := logRecord(t, p.lines[0]); tag != "x" {
		t.Errorf("tag %q", tag)
	}
}

func TestCORS(t *testing.T) {
	const ui = "http://ui.example:8000"
	s := vivoServer(t, func(o *server.Options) { o.VivoCORSOrigins = []string{ui} })
	mustPost(t, "http://"+s.Addr(), "c", `{"a":1}`)
	for _, base := range []string{"http://" + s.VivoAddr(), "http://" + s.Addr() + "/vivo"} {
		p := get(t, base+"/logs", map[string]string{"Origin": ui})
		if p.header.Get("Access-Control-Allow-Origin") != ui || !strings.Contains(p.header.Get("Access-Control-Expose-Headers"), "Vivo-Stream-End-ID") {
			t.Errorf("%s allowed origin: %v", base, p.header)
		}
		if len(p.lines) != 1 {
			t.Errorf("%s: %d lines", base, len(p.lines))
		}
		p = get(t, base+"/logs", map[string]string{"Origin": "http://evil.example"})
		if v := p.header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("%s refused origin got Access-Control-Allow-Origin %q", base, v)
		}
		// Preflights.
		pre := func(origin string) *http.Response {
			req, _ := http.NewRequest(http.MethodOptions, base+"/traces", nil)
			req.Header.Set("Origin", origin)
			req.Header.Set("Access-Control-Request-Method", "GET")
			req.Header.Set("Access-Control-Request-Headers", "content-type")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp
		}
		resp := pre(ui)
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != ui ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "GET") || resp.Header.Get("Access-Control-Allow-Headers") != "content-type" {
			t.Errorf("%s allowed preflight: %s %v", base, resp.Status, resp.Header)
		}
		resp = pre("http://evil.example")
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s refused preflight: %s %v", base, resp.Status, resp.Header)
		}
	}
	// No origins configured: no CORS headers at all.
	s2 := vivoServer(t, nil)
	p := get(t, "http://"+s2.VivoAddr()+"/logs", map[string]string{"Origin": ui})
	if p.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS by default: %v", p.header)
	}
}

func TestTokens(t *testing.T) {
	const ui = "http://ui.example"
	s := vivoServer(t, func(o *server.Options) { o.Tokens = []string{"sekret"}; o.VivoCORSOrigins = []string{ui} })
	p := get(t, "http://"+s.VivoAddr()+"/logs", map[string]string{"Origin": ui})
	if p.status != http.StatusUnauthorized || p.header.Get("Access-Control-Allow-Origin") != ui {
		t.Errorf("no token: %d %v", p.status, p.header)
	}
	if p := get(t, "http://"+s.VivoAddr()+"/logs", map[string]string{"Authorization": "Bearer sekret"}); p.status != http.StatusOK {
		t.Errorf("token: %d", p.status)
	}
	if status, _, _ := post(t, "http://"+s.Addr(), "/vivo/input/x", "", `{}`); status != http.StatusUnauthorized {
		t.Errorf("input without a token: %d", status)
	}
	// A preflight carries no credentials and must still pass.
	req, _ := http.NewRequest(http.MethodOptions, "http://"+s.VivoAddr()+"/logs", nil)
	req.Header.Set("Origin", ui)
	req.Header.Set("Access-Control-Request-Method", "GET")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("preflight with tokens: %s", resp.Status)
	}
}

func TestListenerDisabled(t *testing.T) {
	s := servertest.RunServer(t, server.Options{AutoCreate: true})
	if a := s.VivoAddr(); a != "" {
		t.Fatalf("Vivo listener on %s without VivoAddr", a)
	}
	mustPost(t, "http://"+s.Addr(), "d", `{"a":1}`)
	if p := get(t, "http://"+s.Addr()+"/vivo/logs", nil); len(p.lines) != 1 {
		t.Fatalf("/vivo/logs: %s", p.lines)
	}
}
