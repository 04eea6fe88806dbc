package vivo

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
)

// countingReader counts the events a read examines.
type countingReader struct {
	*store.Store
	examined atomic.Int64
}

func (r *countingReader) Read(ctx context.Context, q store.Query, fn func(*event.Event) error, onGap func(store.Gap) error) (uint64, error) {
	if m := q.Match; m != nil {
		q.Match = func(e *event.Event) bool { r.examined.Add(1); return m(e) }
	}
	return r.Store.Read(ctx, q, fn, onGap)
}

// TestRecentScanIsBounded: a request for the newest metrics of a
// chronicle holding only logs scans a bounded number of blocks, not the
// whole chronicle on every poll.
func TestRecentScanIsBounded(t *testing.T) {
	s := testutil.OpenStore(t, store.Options{})
	const blocks = RecentScanBlocks + 100
	for i := range blocks {
		// One wait per append: one block each.
		if _, err := s.Append("mixed", "app", []event.Event{{Kind: event.KindLog, Format: event.FormatJSON, Body: []byte(`{"i":1}`)}}).Wait(context.Background()); err != nil {
			t.Fatal(i, err)
		}
	}
	r := &countingReader{Store: s}
	h, err := New(Config{Reader: r, Chronicles: map[Signal]string{Metrics: "mixed"}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.RegisterExporter(mux, "", func(h http.Handler) http.Handler { return h })
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics?limit=10", nil))
	if rec.Code != 200 || rec.Body.Len() != 0 {
		t.Fatalf("GET = %d %q", rec.Code, rec.Body)
	}
	if n := r.examined.Load(); n > RecentScanBlocks {
		t.Fatalf("examined %d events of %d blocks, want at most %d blocks' worth", n, blocks, RecentScanBlocks)
	}
	// Next-ID is past the whole log: the next poll reads only new blocks.
	last, _ := s.LastBlock(context.Background(), "mixed")
	if got, want := rec.Header().Get(hdrNext), event.MakeSeq(last+1, 0); got != fmtU(want) {
		t.Errorf("Next-ID %s, want %d", got, want)
	}
}

func fmtU(v uint64) string { return strconv.FormatUint(v, 10) }
