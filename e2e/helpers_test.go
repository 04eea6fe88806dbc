// Package e2e drives the built chronostream binary as users and scripts do:
// flags, environment, config files, HTTP, signals and kill -9, against real
// peers (a separate nats-server process). Run with: go test ./e2e/
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// client bounds every request so that a wedged server fails the test
// instead of hanging it; the bound is not an assertion about speed.
var client = &http.Client{
	Timeout:   2 * time.Minute,
	Transport: &http.Transport{MaxIdleConnsPerHost: 16},
}

// postNDJSON posts body to base's "POST /" and returns the status and, on
// 200, the acknowledged count.
func postNDJSON(ctx context.Context, base, chronicle, story string, body []byte) (status, count int, err error) {
	q := url.Values{}
	if chronicle != "" {
		q.Set("chronicle", chronicle)
	}
	if story != "" {
		q.Set("story", story)
	}
	u := base + "/"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, 0, fmt.Errorf("POST %s: %s: %s", u, resp.Status, strings.TrimSpace(string(b)))
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return resp.StatusCode, 0, fmt.Errorf("POST %s: the body %q is not a count", u, b)
	}
	return resp.StatusCode, n, nil
}

// mustPost posts and requires the whole body to be acknowledged.
func mustPost(t testing.TB, base, chronicle, story string, lines ...string) {
	t.Helper()
	body := []byte(strings.Join(lines, "\n") + "\n")
	status, n, err := postNDJSON(context.Background(), base, chronicle, story, body)
	if err != nil {
		t.Fatalf("status %d: %v", status, err)
	}
	if n != len(lines) {
		t.Fatalf("POST / acknowledged %d events, want %d", n, len(lines))
	}
}

// readEvent is one event as the read API returns it.
type readEvent struct {
	Seq    uint64            `json:"seq"`
	Time   string            `json:"time"`
	Story  string            `json:"story"`
	Kind   string            `json:"kind"`
	Tags   map[string]string `json:"tags"`
	Fields map[string]any    `json:"fields"`
	Body   json.RawMessage   `json:"body"`
}

var requiredKeys = []string{"seq", "time", "story", "kind", "tags", "fields", "body"}

// readStory reads a whole story as NDJSON, page by page through the `after`
// cursor, checking that every line carries the documented members.
func readStory(t testing.TB, base, chronicle, story string) []readEvent {
	t.Helper()
	const page = 5000
	var (
		out   []readEvent
		after uint64
	)
	for {
		u := fmt.Sprintf("%s/api/v1/chronicles/%s/stories/%s/events?format=ndjson&limit=%d&after=%d",
			base, url.PathEscape(chronicle), url.PathEscape(story), page, after)
		resp, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			t.Fatalf("GET %s: %s: %s", u, resp.Status, b)
		}
		n := 0
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 4<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			var keys map[string]json.RawMessage
			if err := json.Unmarshal(line, &keys); err != nil {
				t.Fatalf("GET %s: line %q: %v", u, line, err)
			}
			for _, k := range requiredKeys {
				if _, ok := keys[k]; !ok {
					t.Fatalf("GET %s: event %s has no %q", u, line, k)
				}
			}
			var e readEvent
			if err := json.Unmarshal(line, &e); err != nil {
				t.Fatalf("GET %s: line %q: %v", u, line, err)
			}
			out = append(out, e)
			after = e.Seq
			n++
		}
		err = sc.Err()
		resp.Body.Close()
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		if n < page {
			return out
		}
	}
}

// sameJSON reports whether a and b are the same JSON value.
func sameJSON(t testing.TB, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%q: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb)
}

// load is a set of concurrent writers, each appending small NDJSON batches
// of uniquely numbered events to its own story, and remembering which
// numbers the server acknowledged. Batches that fail (connection refused
// or reset by a dying server, 5xx) are not retried: without an idempotency
// key a retry could store an event twice, and the test is about what the
// server does with what it acknowledged.
type load struct {
	chronicle string
	// pace, when set before the writers start, is a pause after each
	// batch: a gentler load, for tests that run several servers.
	pace    time.Duration
	writers []*writer
	base    atomic.Pointer[string] // nil while no server is up
	acked   atomic.Int64
	stop    atomic.Bool
	wg      sync.WaitGroup

	mu    sync.Mutex
	fatal error // a response no correct server gives (4xx, 501, partial count)
}

type writer struct {
	story string
	next  int     // the next event number; never reused
	acked []int   // acknowledged event numbers, in order
	lost  [][]int // unacknowledged batches: [first, last]
}

// pad makes events 200–400 bytes, the size the design's log workloads use.
var pad = strings.Repeat("x", 200)

func startLoad(chronicle string, writers int) *load {
	return startLoadStories(chronicle, "writer", writers, 0)
}

// startLoadStories is startLoad with the writers' stories named
// prefix-0, prefix-1, …, so that several loads can share a chronicle.
func startLoadStories(chronicle, prefix string, writers int, pace time.Duration) *load {
	l := &load{chronicle: chronicle, pace: pace}
	for i := range writers {
		w := &writer{story: fmt.Sprintf("%s-%d", prefix, i)}
		l.writers = append(l.writers, w)
		l.wg.Add(1)
		go l.run(w, rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i))))
	}
	return l
}

func (l *load) setBase(u string) { l.base.Store(&u) }
func (l *load) setDown()         { l.base.Store(nil) }

func (l *load) run(w *writer, rng *rand.Rand) {
	defer l.wg.Done()
	var buf bytes.Buffer
	for !l.stop.Load() {
		base := l.base.Load()
		if base == nil {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		n := 1 + rng.IntN(16)
		first := w.next
		w.next += n
		buf.Reset()
		for id := first; id < first+n; id++ {
			fmt.Fprintf(&buf, `{"writer":%q,"id":%d,"msg":"event %d of %s","level":"info","pad":%q}`+"\n",
				w.story, id, id, w.story, pad[:rng.IntN(len(pad))])
		}
		status, count, err := postNDJSON(context.Background(), *base, l.chronicle, w.story, buf.Bytes())
		if l.pace > 0 {
			time.Sleep(l.pace)
		}
		switch {
		case err == nil && count == n:
			for id := first; id < first+n; id++ {
				w.acked = append(w.acked, id)
			}
			l.acked.Add(int64(n))
		case err == nil:
			l.setFatal(fmt.Errorf("%s: batch of %d acknowledged as %d", w.story, n, count))
		case status == http.StatusNotImplemented || (status >= 400 && status < 500):
			l.setFatal(fmt.Errorf("%s: %w", w.story, err))
		default:
			w.lost = append(w.lost, []int{first, first + n - 1})
			time.Sleep(time.Millisecond) // a dead server refuses at once: do not spin
		}
	}
}

func (l *load) setFatal(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fatal == nil {
		l.fatal = err
	}
	l.stop.Store(true)
}

func (l *load) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatal
}

// waitAcked waits until more than n events have been acknowledged in all,
// failing the test if the writers hit an impossible response.
func (l *load) waitAcked(t testing.TB, n int64) {
	t.Helper()
	testutil.Eventually(t, 2*time.Minute, func() bool {
		return l.acked.Load() > n || l.err() != nil
	}, "the writers got no acknowledgement from the server")
	if err := l.err(); err != nil {
		t.Fatalf("ingest failed: %v", err)
	}
}

// finish stops the writers and waits for their in-flight batches.
func (l *load) finish(t testing.TB) {
	t.Helper()
	l.stop.Store(true)
	l.wg.Wait()
	if err := l.err(); err != nil {
		t.Fatalf("ingest failed: %v", err)
	}
}

// verify reads every writer's story back from base and checks the promise
// of an acknowledgement: each acknowledged event is present exactly once,
// no event is present twice, and each story is in the writer's order.
func (l *load) verify(t testing.TB, base string) {
	t.Helper()
	total, extra := 0, 0
	for _, w := range l.writers {
		evs := readStory(t, base, l.chronicle, w.story)
		count := make(map[int]int, len(evs))
		last := -1
		var prevSeq uint64
		for i, e := range evs {
			var b struct {
				Writer string `json:"writer"`
				ID     *int   `json:"id"`
			}
			if err := json.Unmarshal(e.Body, &b); err != nil || b.ID == nil || b.Writer != w.story {
				t.Fatalf("%s: event %d has an unexpected body %s", w.story, i, e.Body)
			}
			id := *b.ID
			if e.Story != w.story {
				t.Fatalf("%s: event %d says story %q", w.story, id, e.Story)
			}
			if i > 0 && e.Seq <= prevSeq {
				t.Fatalf("%s: seq %d after seq %d: sequences must strictly increase", w.story, e.Seq, prevSeq)
			}
			prevSeq = e.Seq
			count[id]++
			if count[id] > 1 {
				t.Fatalf("%s: event %d is stored %d times", w.story, id, count[id])
			}
			if id <= last {
				t.Fatalf("%s: event %d stored after event %d: out of the writer's order", w.story, id, last)
			}
			if id >= w.next {
				t.Fatalf("%s: event %d was never sent", w.story, id)
			}
			last = id
		}
		for _, id := range w.acked {
			if count[id] != 1 {
				t.Fatalf("%s: acknowledged event %d is stored %d times, want exactly once (%d acknowledged, %d stored)",
					w.story, id, count[id], len(w.acked), len(evs))
			}
		}
		total += len(w.acked)
		extra += len(evs) - len(w.acked)
		whole, part := 0, 0
		for _, b := range w.lost {
			got := 0
			for id := b[0]; id <= b[1]; id++ {
				got += count[id]
			}
			switch {
			case got == b[1]-b[0]+1:
				whole++
			case got > 0:
				part++
			}
		}
		t.Logf("%s: %d acknowledged, all present once, in order; %d unacknowledged batches: %d stored whole, %d in part",
			w.story, len(w.acked), len(w.lost), whole, part)
	}
	if total == 0 {
		t.Fatal("no event was acknowledged: the test proved nothing")
	}
	t.Logf("verified %d acknowledged events; %d stored events were never acknowledged", total, extra)
}
