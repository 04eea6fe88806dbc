package ingest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/ingest"
)

// stallingBody sends parts, one every gap, then stalls until the test ends.
func stallingBody(t *testing.T, gap time.Duration, parts ...string) io.Reader {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	t.Cleanup(func() { close(done); pw.Close() })
	go func() {
		for _, p := range parts {
			if _, err := pw.Write([]byte(p)); err != nil {
				return
			}
			select {
			case <-time.After(gap):
			case <-done:
				return
			}
		}
		<-done
	}()
	return pr
}

// TestBodyReadTimeout: a body that stalls is cut off with ErrBodyTimeout
// (408) and the request's context lives on for the handler to finish
// storing; a slow body that keeps sending is not cut off.
func TestBodyReadTimeout(t *testing.T) {
	const d = 300 * time.Millisecond
	type outcome struct {
		data   string
		err    error
		ctxErr error
	}
	got := make(chan outcome, 1)
	h := ingest.BodyReadTimeout(d)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		// What a handler does next (waiting for the log) needs the context.
		time.Sleep(50 * time.Millisecond)
		got <- outcome{string(b), err, r.Context().Err()}
		if f, ok := ingest.ClassifyBodyError(err); ok {
			w.WriteHeader(f.Status)
		}
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()

	start := time.Now()
	resp, err := http.Post(srv.URL, "text/plain", stallingBody(t, 10*time.Millisecond, "a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	o := <-got
	if resp.StatusCode != http.StatusRequestTimeout || o.data != "ab" || !errors.Is(o.err, ingest.ErrBodyTimeout) || o.ctxErr != nil {
		t.Fatalf("stalled body: %d, read %q, %v, context %v", resp.StatusCode, o.data, o.err, o.ctxErr)
	}
	if el := time.Since(start); el < d || el > 10*d {
		t.Errorf("cut off after %v, want about %v", el, d)
	}

	// Slow but steady: a part every d/2 for 4d.
	parts := strings.Split(strings.Repeat("x", 8), "")
	pr, pw := io.Pipe()
	go func() {
		for _, p := range parts {
			pw.Write([]byte(p))
			time.Sleep(d / 2)
		}
		pw.Close()
	}()
	resp, err = http.Post(srv.URL, "text/plain", pr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if o := <-got; resp.StatusCode != 200 || o.err != nil || o.data != "xxxxxxxx" || o.ctxErr != nil {
		t.Fatalf("slow body: %d, read %q, %v, context %v", resp.StatusCode, o.data, o.err, o.ctxErr)
	}
}

// TestBodyReadTimeoutClientGone: a client that goes away still cancels the
// request's context.
func TestBodyReadTimeoutClientGone(t *testing.T) {
	canceled := make(chan error, 1)
	h := ingest.BodyReadTimeout(time.Minute)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		select {
		case <-r.Context().Done():
			canceled <- r.Context().Err()
		case <-time.After(5 * time.Second):
			canceled <- nil
		}
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL, pr)
	go func() {
		pw.Write([]byte("a"))
		time.Sleep(100 * time.Millisecond)
		cancel()
		pw.CloseWithError(context.Canceled)
	}()
	_, _ = http.DefaultClient.Do(req)
	if err := <-canceled; err == nil {
		t.Fatal("the request's context outlived its client")
	}
}
