package ndjson

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
)

// TestBodyStalls: a body that stalls past the body read timeout is cut off
// with 408, and the values before the stall are stored and acknowledged.
func TestBodyStalls(t *testing.T) {
	s := testutil.OpenStore(t, store.Options{})
	h := NewHandler(Config{Config: ingest.Config{Log: s, DefaultChronicle: "main", DefaultStory: "stall"}})
	srv := httptest.NewServer(ingest.BodyReadTimeout(300 * time.Millisecond)(http.HandlerFunc(h.ServeRoot)))
	defer srv.Close()
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("{\"a\":1}\n{\"a\":2}\n{\"a\":"))
	resp, err := http.Post(srv.URL+"/", "application/x-ndjson", pr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !strings.HasSuffix(string(b), "\nstored 2\n") {
		t.Fatalf("stalled body: %d %q, want 408 with 2 stored", resp.StatusCode, b)
	}
	n := 0
	if _, err := s.Read(context.Background(), store.Query{Chronicle: "main", Story: "stall"}, func(*event.Event) error { n++; return nil }, nil); err != nil || n != 2 {
		t.Errorf("stored %d events (%v), want 2", n, err)
	}
}
