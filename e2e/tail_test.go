package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/chronostream/chronostream/internal/testutil"
)

// guard bounds every wait of these tests. It only turns a hang into a
// failure; nothing here asserts how fast anything is.
const guard = time.Minute

// TestWebSocketIngestAndReadBack streams events over the anacrolix
// WebSocket protocol on GET /, then reads them back exactly and finds the
// connection recorded as a source.
func TestWebSocketIngestAndReadBack(t *testing.T) {
	bin := testutil.BuildBinary(t)
	p := testutil.StartBinary(t, bin, "--data", t.TempDir())
	const chronicle, story = "ws", "stream one"

	type msg struct {
		typ  websocket.MessageType
		data string
		// want is the body member as read back (raw JSON); wantB64 instead
		// the body_base64 member, for payloads that are not UTF-8.
		want    string
		wantB64 bool
	}
	quote := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	msgs := []msg{
		{typ: websocket.MessageText, data: `{"msg":"hello","level":"info","n":1}`},
		{typ: websocket.MessageText, data: `{ "spaced" : [1, 2] }`},      // kept verbatim
		{typ: websocket.MessageText, data: `{"slog":true,"n":2}` + "\n"}, // slog's trailing newline is dropped
		{typ: websocket.MessageText, data: "{\n  \"multi\": \"line\"\n}", want: `{"multi":"line"}`},
		{typ: websocket.MessageText, data: `42`},
		{typ: websocket.MessageText, data: `"a JSON string"`},
		{typ: websocket.MessageText, data: "plain text, not JSON: ü"},
		{typ: websocket.MessageText, data: `{"broken":`},
		{typ: websocket.MessageBinary, data: `{"binary":"json","ok":true}`},
		{typ: websocket.MessageBinary, data: "binary text\twith a tab"},
		{typ: websocket.MessageBinary, data: "\xff\xfe\x00not utf-8", wantB64: true},
	}
	for i := range msgs {
		m := &msgs[i]
		switch {
		case m.wantB64:
			m.want = quote(base64.StdEncoding.EncodeToString([]byte(m.data)))
		case m.want != "":
		case json.Valid([]byte(m.data)):
			m.want = strings.TrimSpace(m.data)
		default:
			m.want = quote(m.data)
		}
	}
	// More than one run: a second batch of plain JSON events.
	for i := range 40 {
		d := fmt.Sprintf(`{"i":%d,"pad":%q}`, i, pad[:i*5])
		msgs = append(msgs, msg{typ: websocket.MessageText, data: d, want: d})
	}

	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	u := "ws://" + p.Addr() + "/?" + url.Values{"chronicle": {chronicle}, "story": {story}}.Encode()
	c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		HTTPHeader: http.Header{"X-E2e-Run": {"websocket ingest"}, "User-Agent": {"chronostream-e2e"}},
	})
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	defer c.CloseNow()
	for _, m := range msgs {
		if err := c.Write(ctx, m.typ, []byte(m.data)); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	// The server answers each run with the cumulative count; runs are its
	// choice, so read counts until they reach everything sent.
	var last int
	for last < len(msgs) {
		typ, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("reading the count after %d: %v", last, err)
		}
		n, err := strconv.Atoi(string(b))
		if typ != websocket.MessageText || err != nil {
			t.Fatalf("got a %v message %q, want a text count", typ, b)
		}
		if n < last || n > len(msgs) {
			t.Fatalf("count %d after %d, with %d sent", n, last, len(msgs))
		}
		last = n
	}
	if err := c.Write(ctx, websocket.MessageBinary, nil); err != nil {
		t.Fatalf("writing the final empty message: %v", err)
	}
	// The server may repeat the final count before it closes normally.
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			if st := websocket.CloseStatus(err); st != websocket.StatusNormalClosure {
				t.Fatalf("the stream ended with %v (status %v), want a normal closure", err, st)
			}
			break
		}
		if typ != websocket.MessageText || string(b) != strconv.Itoa(len(msgs)) {
			t.Fatalf("after the final message: %v message %q, want the count %d or a close", typ, b, len(msgs))
		}
	}

	got := readStoryRaw(t, p.URL(), chronicle, story)
	if len(got) != len(msgs) {
		t.Fatalf("read %d events, want %d", len(got), len(msgs))
	}
	var prev uint64
	for i, e := range got {
		var seq uint64
		if err := json.Unmarshal(e["seq"], &seq); err != nil || seq <= prev {
			t.Fatalf("event %d: seq %s after %d", i, e["seq"], prev)
		}
		prev = seq
		key := "body"
		if msgs[i].wantB64 {
			key = "body_base64"
		}
		if string(e[key]) != msgs[i].want {
			t.Errorf("event %d: %s %s, want %s (sent %q)", i, key, e[key], msgs[i].want, msgs[i].data)
		}
	}

	// The connection is one source, with its headers and final count.
	var srcs struct {
		Sources []struct {
			ID, Protocol, Chronicle, Story string
			Headers                        map[string][]string
			Count                          int
			End                            string
		}
	}
	getJSON(t, p.URL()+"/api/v1/sources?chronicle="+url.QueryEscape(chronicle), &srcs)
	if len(srcs.Sources) != 1 {
		t.Fatalf("%d sources for chronicle %q, want 1: %+v", len(srcs.Sources), chronicle, srcs.Sources)
	}
	s := srcs.Sources[0]
	if s.Protocol != "websocket" || s.Count != len(msgs) || s.Chronicle != chronicle || s.Story != story || s.End == "" {
		t.Errorf("source %+v: want protocol websocket, count %d, chronicle %q, story %q and an end", s, len(msgs), chronicle, story)
	}
	if h := s.Headers["X-E2e-Run"]; len(h) != 1 || h[0] != "websocket ingest" {
		t.Errorf("source headers %v do not hold the request's X-E2e-Run", s.Headers)
	}
	if h := s.Headers["User-Agent"]; len(h) != 1 || h[0] != "chronostream-e2e" {
		t.Errorf("source headers %v do not hold the request's User-Agent", s.Headers)
	}
	for i, e := range got {
		if string(e["source"]) != strconv.Quote(s.ID) {
			t.Fatalf("event %d: source %s, want %q", i, e["source"], s.ID)
		}
	}
}

// TestTailSSEResumeAcrossDisconnect follows a story over Server-Sent
// Events while another goroutine ingests, drops the connection mid-stream,
// keeps ingesting, and resumes with Last-Event-ID: the events received add
// up to exactly the events acknowledged, in order, none twice. The second
// case resumes on a restarted server (SIGTERM, same --data).
func TestTailSSEResumeAcrossDisconnect(t *testing.T) {
	for _, restart := range []bool{false, true} {
		name := "forced disconnect"
		if restart {
			name = "server restart"
		}
		t.Run(name, func(t *testing.T) { testTailResume(t, restart) })
	}
}

func testTailResume(t *testing.T, restart bool) {
	bin := testutil.BuildBinary(t)
	data := t.TempDir()
	p := testutil.StartBinary(t, bin, "--data", data)
	const chronicle, story = "tail", "api/v1 requests"
	mustPut(t, p.URL()+"/api/v1/chronicles/"+chronicle, "")

	var (
		next int      // the next event number to send
		recv []sseMsg // every event received, over all connections
		last string   // the last id received: what an EventSource resends
		ack  []int    // acknowledged event numbers, in order
		errc = make(chan error, 1)
	)
	// ingest posts batches of numbered events in the background.
	ingest := func(base string, batches, size int) {
		first := next
		next += batches * size
		go func() {
			for b := range batches {
				var lines []string
				for i := first + b*size; i < first+(b+1)*size; i++ {
					lines = append(lines, fmt.Sprintf(`{"n":%d,"msg":"tail resume","pad":%q}`, i, pad[:i%len(pad)]))
				}
				body := []byte(strings.Join(lines, "\n") + "\n")
				if _, n, err := postNDJSON(context.Background(), base, chronicle, story, body); err != nil || n != size {
					errc <- fmt.Errorf("batch %d: acknowledged %d of %d: %v", b, n, size, err)
					return
				}
			}
			errc <- nil
		}()
	}
	ingested := func() {
		t.Helper()
		select {
		case err := <-errc:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(guard):
			t.Fatal("ingest did not finish")
		}
	}
	// receive takes messages from tl until n events in all were received.
	receive := func(tl *sseTail, n int) {
		t.Helper()
		for len(recv) < n {
			m, ok := tl.next(t)
			if !ok {
				t.Fatalf("the tail ended after %d events, want %d: %v", len(recv), n, tl.err)
			}
			if m.id != "" {
				last = m.id
			}
			switch m.event {
			case "event":
				recv = append(recv, m)
			case "heartbeat":
			default:
				t.Fatalf("unexpected %q message: %s", m.event, m.data)
			}
		}
	}

	// The first tail starts from now; once its first heartbeat is in, every
	// later event is its to deliver.
	tl := openSSETail(t, p.URL(), chronicle, story, "", "")
	if m, ok := tl.next(t); !ok || m.event != "heartbeat" || m.id == "" {
		t.Fatalf("first message %+v, want a heartbeat with an id", m)
	}
	ingest(p.URL(), 6, 10)
	receive(tl, 25) // mid-stream, and mid-block (batches are 10 events)
	if restart {
		// Keep the tail open while the server shuts down: the stream must
		// end (not hang), and whatever arrives until then counts.
		ingested()
		ingest(p.URL(), 3, 10)
		ingested()
		if code := p.Stop(); code != 0 {
			t.Fatalf("exit code %d after SIGTERM, want 0", code)
		}
		for {
			m, ok := tl.next(t)
			if !ok {
				break
			}
			if m.id != "" {
				last = m.id
			}
			if m.event == "event" {
				recv = append(recv, m)
			}
		}
		tl.close()
		p = testutil.StartBinary(t, bin, "--data", data)
		ingest(p.URL(), 2, 7)
		ingested()
	} else {
		tl.close() // the forced disconnect: unread events in flight are dropped
		ingested()
		ingest(p.URL(), 3, 10)
		ingested()
	}
	t.Logf("received %d events before resuming after id %s", len(recv), last)

	tl = openSSETail(t, p.URL(), chronicle, story, last, "")
	ingest(p.URL(), 4, 9)
	receive(tl, next)
	ingested()
	tl.close()

	// Exactly everything acknowledged, in order, once: the same events,
	// seqs and bodies as a read of the whole story.
	for i := range next {
		ack = append(ack, i)
	}
	stored := readStory(t, p.URL(), chronicle, story)
	if len(recv) != len(ack) || len(stored) != len(ack) {
		t.Fatalf("received %d events, stored %d, acknowledged %d", len(recv), len(stored), len(ack))
	}
	for i, m := range recv {
		var e readEvent
		if err := json.Unmarshal([]byte(m.data), &e); err != nil {
			t.Fatalf("event %d: %q: %v", i, m.data, err)
		}
		var b struct{ N int }
		if err := json.Unmarshal(e.Body, &b); err != nil || b.N != ack[i] {
			t.Fatalf("event %d carries body %s, want event number %d", i, e.Body, ack[i])
		}
		if m.id != strconv.FormatUint(e.Seq, 10) {
			t.Fatalf("event %d: id %q, seq %d", i, m.id, e.Seq)
		}
		if e.Seq != stored[i].Seq || !bytes.Equal(e.Body, stored[i].Body) {
			t.Fatalf("event %d: tail gave seq %d body %s, the read seq %d body %s", i, e.Seq, e.Body, stored[i].Seq, stored[i].Body)
		}
	}
}

// TestRetentionEvictsAndTailReportsGap bounds a chronicle's events, lets
// retention evict the oldest, and resumes a tail and a read from a cursor
// inside what was evicted: both report the gap, then the surviving events.
func TestRetentionEvictsAndTailReportsGap(t *testing.T) {
	bin := testutil.BuildBinary(t)
	p := testutil.StartBinary(t, bin, "--data", t.TempDir())
	const chronicle, story = "bounded", "s"
	chronicleURL := p.URL() + "/api/v1/chronicles/" + chronicle
	storyURL := chronicleURL + "/stories"
	maxEvents := 30
	mustPut(t, chronicleURL, fmt.Sprintf(`{"retention":{"max_events":%d}}`, maxEvents))

	const batches, size = 10, 10
	post := func(b int) {
		var lines []string
		for i := b * size; i < (b+1)*size; i++ {
			lines = append(lines, fmt.Sprintf(`{"n":%d}`, i))
		}
		mustPost(t, p.URL(), chronicle, story, lines...)
	}
	// waitEvicted waits for retention, which runs in the background, to
	// bring the story within maxEvents, and returns what survives: the
	// newest events, in order.
	waitEvicted := func() []readEvent {
		t.Helper()
		testutil.Eventually(t, guard, func() bool {
			var st struct{ Stories []struct{ Events int } }
			getJSON(t, storyURL, &st)
			return len(st.Stories) == 1 && st.Stories[0].Events <= maxEvents
		}, "retention did not bring the story down to max_events")
		survivors := readStory(t, p.URL(), chronicle, story)
		if len(survivors) == 0 || len(survivors) > maxEvents {
			t.Fatalf("%d events survive, want 1..%d", len(survivors), maxEvents)
		}
		for i, e := range survivors {
			var b struct{ N int }
			if err := json.Unmarshal(e.Body, &b); err != nil {
				t.Fatal(err)
			}
			if want := batches*size - len(survivors) + i; b.N != want {
				t.Fatalf("survivor %d is event %d, want %d: retention must evict the oldest", i, b.N, want)
			}
		}
		return survivors
	}
	// checkGap resumes a tail, a read and an export after cursor, whose
	// following events retention removed up to survivors[0].
	checkGap := func(t *testing.T, cursor uint64, survivors []readEvent) {
		first := survivors[0].Seq
		wantGap := fmt.Sprintf(`{"after":%d,"next":%d}`, cursor, first)

		tl := openSSETail(t, p.URL(), chronicle, story, "", "after="+strconv.FormatUint(cursor, 10))
		defer tl.close()
		m, ok := tl.next(t)
		for ok && m.event == "heartbeat" {
			m, ok = tl.next(t)
		}
		if !ok || m.event != "gap" || !sameJSON(t, []byte(m.data), []byte(wantGap)) {
			t.Fatalf("tail: first message after the heartbeat: %+v, want a gap %s", m, wantGap)
		}
		for i := 0; i < len(survivors); {
			m, ok := tl.next(t)
			if !ok {
				t.Fatalf("tail: ended after %d of %d survivors: %v", i, len(survivors), tl.err)
			}
			if m.event == "heartbeat" {
				continue
			}
			var e readEvent
			if m.event != "event" || json.Unmarshal([]byte(m.data), &e) != nil {
				t.Fatalf("tail: message %d after the gap: %+v, want an event", i, m)
			}
			if e.Seq != survivors[i].Seq || !bytes.Equal(e.Body, survivors[i].Body) {
				t.Fatalf("tail: event %d after the gap: seq %d body %s, want seq %d body %s",
					i, e.Seq, e.Body, survivors[i].Seq, survivors[i].Body)
			}
			i++
		}

		// A JSON read reports the gap in the page.
		var page struct {
			Events []readEvent
			Gaps   []json.RawMessage
		}
		getJSON(t, fmt.Sprintf("%s/%s/events?format=json&after=%d", storyURL, story, cursor), &page)
		if len(page.Gaps) != 1 || !sameJSON(t, page.Gaps[0], []byte(wantGap)) {
			t.Errorf("read: gaps %s, want [%s]", page.Gaps, wantGap)
		}
		if len(page.Events) != len(survivors) || page.Events[0].Seq != first {
			t.Errorf("read: %d events, want %d from seq %d", len(page.Events), len(survivors), first)
		}
		// An NDJSON export puts the notice on a line of its own, first.
		lines := getLines(t, fmt.Sprintf("%s/%s/events?format=ndjson&after=%d", storyURL, story, cursor))
		if len(lines) != 1+len(survivors) || !sameJSON(t, []byte(lines[0]), []byte(`{"gap":`+wantGap+`}`)) {
			t.Errorf("export: %d lines starting %q, want the gap line then %d events", len(lines), lines[0], len(survivors))
		}
	}

	// Cursors from the first batch, before anything can be evicted: its
	// first event (inside its block) and its last.
	post(0)
	early := readStory(t, p.URL(), chronicle, story)
	if len(early) != size {
		t.Fatalf("read %d events after the first batch, want %d", len(early), size)
	}
	for b := 1; b < batches; b++ {
		post(b)
	}
	survivors := waitEvicted()
	if survivors[0].Seq <= early[size-1].Seq {
		t.Fatalf("the first batch survived eviction (first seq %d)", survivors[0].Seq)
	}
	for _, cursor := range []uint64{early[0].Seq, early[size-1].Seq} {
		t.Run(fmt.Sprintf("after=%d", cursor), func(t *testing.T) { checkGap(t, cursor, survivors) })
	}

	// Lower the bound so that the oldest surviving block goes too, and
	// resume from inside it: the rest of that block is gone, while the
	// next block directly follows it in the story.
	evicted := survivors
	maxEvents = len(survivors) - size
	mustPut(t, chronicleURL, fmt.Sprintf(`{"retention":{"max_events":%d}}`, maxEvents))
	survivors = waitEvicted()
	if n := len(evicted) - len(survivors); n < size || evicted[n].Seq != survivors[0].Seq {
		t.Fatalf("%d events survive of %d, want the oldest block (%d events) evicted", len(survivors), len(evicted), size)
	}
	cursor := evicted[1].Seq
	t.Run(fmt.Sprintf("after=%d inside the last evicted block", cursor), func(t *testing.T) { checkGap(t, cursor, survivors) })
}

// TestTailWebSocket follows a story over a WebSocket: events stored after
// the tail opened arrive as JSON messages; a reconnect with after= the last
// seq resumes without loss or duplicates.
func TestTailWebSocket(t *testing.T) {
	bin := testutil.BuildBinary(t)
	p := testutil.StartBinary(t, bin, "--data", t.TempDir())
	const chronicle, story = "wstail", "s"
	mustPost(t, p.URL(), chronicle, story, `{"before":"the tail"}`)

	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	tailURL := fmt.Sprintf("ws://%s/api/v1/chronicles/%s/stories/%s/tail", p.Addr(), chronicle, story)
	dial := func(query string) *websocket.Conn {
		t.Helper()
		c, _, err := websocket.Dial(ctx, tailURL+query, nil)
		if err != nil {
			t.Fatalf("dial %s: %v", tailURL+query, err)
		}
		return c
	}
	type wsMsg struct {
		Type   string
		Seq    uint64
		Cursor *uint64
		Body   json.RawMessage
	}
	read := func(c *websocket.Conn) wsMsg {
		t.Helper()
		typ, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("tail: %v", err)
		}
		var m wsMsg
		if typ != websocket.MessageText || json.Unmarshal(b, &m) != nil {
			t.Fatalf("tail sent a %v message %q, want JSON text", typ, b)
		}
		return m
	}
	var got []wsMsg
	// take reads until n events in all were received.
	take := func(c *websocket.Conn, n int) {
		t.Helper()
		for len(got) < n {
			switch m := read(c); m.Type {
			case "event":
				got = append(got, m)
			case "heartbeat":
			default:
				t.Fatalf("unexpected message %+v", m)
			}
		}
	}

	c := dial("")
	defer c.CloseNow()
	if m := read(c); m.Type != "heartbeat" || m.Cursor == nil {
		t.Fatalf("first message %+v, want a heartbeat with a cursor", m)
	}
	var sent []string
	for i := range 20 {
		sent = append(sent, fmt.Sprintf(`{"after":"the tail","i":%d}`, i))
	}
	mustPost(t, p.URL(), chronicle, story, sent[:8]...)
	mustPost(t, p.URL(), chronicle, story, sent[8:12]...)
	take(c, 12)
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close: %v", err)
	}

	mustPost(t, p.URL(), chronicle, story, sent[12:15]...)
	c = dial(fmt.Sprintf("?after=%d", got[len(got)-1].Seq))
	defer c.CloseNow()
	mustPost(t, p.URL(), chronicle, story, sent[15:]...)
	take(c, len(sent))
	c.Close(websocket.StatusNormalClosure, "")

	stored := readStory(t, p.URL(), chronicle, story)[1:] // without the event from before the tail
	if len(stored) != len(sent) {
		t.Fatalf("stored %d events after the tail began, want %d", len(stored), len(sent))
	}
	for i, m := range got {
		if string(m.Body) != sent[i] || m.Seq != stored[i].Seq {
			t.Fatalf("event %d: seq %d body %s, want seq %d body %s", i, m.Seq, m.Body, stored[i].Seq, sent[i])
		}
	}
}

// sseMsg is one Server-Sent Event.
type sseMsg struct{ id, event, data string }

// sseTail is an open SSE tail; a goroutine parses its stream into msgs.
type sseTail struct {
	cancel context.CancelFunc
	msgs   chan sseMsg
	done   chan struct{}
	err    error // why the stream ended; set before msgs is closed
}

// openSSETail opens a story's tail, with Last-Event-ID lastID unless empty
// and the raw query string query, and requires a 200 event stream.
func openSSETail(t testing.TB, base, chronicle, story, lastID, query string) *sseTail {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	u := fmt.Sprintf("%s/api/v1/chronicles/%s/stories/%s/tail", base, url.PathEscape(chronicle), url.PathEscape(story))
	if query != "" {
		u += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", u, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("GET %s: %s %s: %s", u, resp.Status, resp.Header.Get("Content-Type"), b)
	}
	tl := &sseTail{cancel: cancel, msgs: make(chan sseMsg), done: make(chan struct{})}
	go func() {
		defer close(tl.done)
		defer close(tl.msgs)
		defer resp.Body.Close()
		var m sseMsg
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			if line == "" {
				if m != (sseMsg{}) {
					select {
					case tl.msgs <- m:
					case <-ctx.Done():
						return
					}
				}
				m = sseMsg{}
				continue
			}
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimPrefix(v, " ")
			switch k {
			case "id":
				m.id = v
			case "event":
				m.event = v
			case "data":
				m.data = v
			}
		}
		tl.err = sc.Err()
		if tl.err == nil {
			tl.err = io.EOF
		}
	}()
	return tl
}

// next returns the next message, or false once the stream has ended.
func (tl *sseTail) next(t testing.TB) (sseMsg, bool) {
	t.Helper()
	select {
	case m, ok := <-tl.msgs:
		return m, ok
	case <-time.After(guard):
		t.Fatal("no message from the tail")
		return sseMsg{}, false
	}
}

// close drops the connection, as a client that goes away does.
func (tl *sseTail) close() {
	tl.cancel()
	<-tl.done
}

// readStoryRaw reads a whole story as NDJSON, each event as its members.
func readStoryRaw(t testing.TB, base, chronicle, story string) []map[string]json.RawMessage {
	t.Helper()
	u := fmt.Sprintf("%s/api/v1/chronicles/%s/stories/%s/events?format=ndjson", base, url.PathEscape(chronicle), url.PathEscape(story))
	var out []map[string]json.RawMessage
	for _, line := range getLines(t, u) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("GET %s: line %q: %v", u, line, err)
		}
		out = append(out, m)
	}
	return out
}

// getLines GETs u, requiring 200, and returns the body's non-empty lines.
func getLines(t testing.TB, u string) []string {
	t.Helper()
	b := get(t, u)
	var lines []string
	for l := range strings.SplitSeq(string(b), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

func getJSON(t testing.TB, u string, v any) {
	t.Helper()
	if err := json.Unmarshal(get(t, u), v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

func get(t testing.TB, u string) []byte {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", u, resp.Status, b)
	}
	return b
}

// mustPut PUTs body to u and requires a 2xx.
func mustPut(t testing.TB, u, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT %s: %s: %s", u, resp.Status, b)
	}
}
