package server

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestExposureNeedsTokens(t *testing.T) {
	tests := []struct {
		opts Options
		ok   bool
	}{
		{Options{HTTPAddr: "127.0.0.1:0"}, true},
		{Options{HTTPAddr: "[::1]:0"}, true},
		{Options{HTTPAddr: "localhost:0"}, true},
		{Options{HTTPAddr: ":4318"}, false},
		{Options{HTTPAddr: "0.0.0.0:4318"}, false},
		{Options{HTTPAddr: "0.0.0.0:4318", Tokens: []string{"t"}}, true},
		{Options{HTTPAddr: "0.0.0.0:4318", InsecureNoAuth: true}, true},
	}
	for _, tt := range tests {
		_, err := New(tt.opts)
		if (err == nil) != tt.ok {
			t.Errorf("New(%+v): err = %v, want ok=%v", tt.opts, err, tt.ok)
		}
	}
}

// TestLifecycle starts a server on a random port, checks its operational
// endpoints and that a write is readable, and shuts it down.
func TestLifecycle(t *testing.T) {
	s, err := New(Options{HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(), AutoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.Addr()
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/ready"); code != 200 {
		t.Errorf("/ready = %d", code)
	}
	if code, body := get("/health"); code != 200 || !strings.Contains(body, `"pass"`) {
		t.Errorf("/health = %d %s", code, body)
	}
	resp, err := http.Post(base+"/?chronicle=c&story=s", "application/x-ndjson", strings.NewReader("{\"a\":1}\n{\"a\":2}\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(b)) != "2" {
		t.Fatalf("POST / answered %d %q", resp.StatusCode, b)
	}
	code, metrics := get("/metrics")
	if code != 200 || !strings.Contains(metrics, "chronostream_store_events_appended_total 2") {
		t.Errorf("/metrics does not count the 2 stored events (status %d)", code)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if s.Ready() {
		t.Error("still ready after shutdown")
	}
}
