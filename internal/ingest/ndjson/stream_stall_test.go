package ndjson

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
)

// TestStreamBodyStalls: a client stream's request whose body stalls holds
// the stream's lock only until the body read timeout cuts it off (408, the
// values before the stall stored); the client's retry then proceeds and
// stores the rest once.
func TestStreamBodyStalls(t *testing.T) {
	s := testutil.OpenStore(t, store.Options{})
	f := &fixture{store: s}
	h := NewHandler(Config{Config: ingest.Config{Log: s, DefaultChronicle: "main", DefaultStory: "stall"}})
	srv := httptest.NewServer(ingest.BodyReadTimeout(300 * time.Millisecond)(http.HandlerFunc(h.ServeRoot)))
	defer srv.Close()
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte(lines(0, 2) + "{\"i\":"))
	req, _ := http.NewRequest("POST", srv.URL+"/", pr)
	for k, v := range streamHeaders("stalled", 0) {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get(HeaderStored) != "2" {
		t.Fatalf("stalled body: %d %q, want 408 with 2 stored", resp.StatusCode, b)
	}
	// The retry resends everything from the acknowledged count on (and
	// some before: a blind resend); it must not wait for the stalled one.
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest("POST", srv.URL+"/", strings.NewReader(lines(1, 6)))
		for k, v := range streamHeaders("stalled", 1) {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "5\n" {
			t.Errorf("retry: %d %q", resp.StatusCode, b)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the retry waits: the stalled request still holds the stream")
	}
	checkExactlyOnce(t, f, "stall", "stalled", 6)
}

// TestStreamRecordsPosition: a client stream's source record carries its
// position, so that a restarted server reads only what follows it. A body
// of one batch is recorded once, before its append (no second fsynced
// write per request): the record is then where the stream stood when the
// request began.
func TestStreamRecordsPosition(t *testing.T) {
	f := newFixture(t, ingest.Limits{}, true)
	for _, from := range []int{0, 5} {
		code, _, body := f.post(t, "/?story=pos", strings.NewReader(lines(from, from+5)), streamHeaders("pos-1", from))
		if code != 200 || body != "5\n" {
			t.Fatalf("request: %d %q", code, body)
		}
	}
	src, err := f.store.GetSource(t.Context(), "pos-1")
	if err != nil || src.Stream == nil || src.Stream.Next != 5 || src.Stream.Seq == 0 {
		t.Fatalf("source %+v (%v): want the stream at 5, where the second request began", src, err)
	}
	// A body over one batch is recorded as it starts and completed after
	// its append: the record is where the stream stands after it.
	f2 := newFixture(t, ingest.Limits{}, true)
	big := lines(0, 20000)
	code, _, body := f2.post(t, "/?story=pos", strings.NewReader(big), streamHeaders("pos-2", 0))
	if code != 200 || body != "20000\n" {
		t.Fatalf("big request: %d %q", code, body)
	}
	src, err = f2.store.GetSource(t.Context(), "pos-2")
	if err != nil || src.Stream == nil || src.Stream.Next != 20000 {
		t.Fatalf("source %+v (%v): want the stream at 20000", src, err)
	}
}
