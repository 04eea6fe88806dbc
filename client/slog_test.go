package client_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/slogtest"
	"time"

	"github.com/chronostream/chronostream/client"
	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

// capture is a stand-in server that acknowledges NDJSON batches and keeps
// their lines, so that slogtest can inspect each record sent.
type capture struct {
	mu    sync.Mutex
	lines []string
}

func (cp *capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sc := bufio.NewScanner(r.Body)
	n := 0
	cp.mu.Lock()
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			cp.lines = append(cp.lines, l)
			n++
		}
	}
	cp.mu.Unlock()
	w.Write([]byte(itoa(n) + "\n"))
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestHandlerSlogtest(t *testing.T) {
	cp := &capture{}
	srv := httptest.NewServer(cp)
	defer srv.Close()
	var c *client.Client
	slogtest.Run(t, func(t *testing.T) slog.Handler {
		var err error
		c, err = client.New(srv.URL, client.Batch(1, 0))
		if err != nil {
			t.Fatal(err)
		}
		cp.mu.Lock()
		cp.lines = nil
		cp.mu.Unlock()
		return client.NewHandler(c, nil)
	}, func(t *testing.T) map[string]any {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Fatal(err)
		}
		cp.mu.Lock()
		defer cp.mu.Unlock()
		if len(cp.lines) != 1 {
			t.Fatalf("%d records sent, want 1: %q", len(cp.lines), cp.lines)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(cp.lines[0]), &m); err != nil {
			t.Fatal(err)
		}
		return m
	})
}

// TestHandlerToServer: records land in the story as log events whose
// attributes are fields and whose "tags" group is tags.
func TestHandlerToServer(t *testing.T) {
	s := servertest.RunServer(t, server.Options{AutoCreate: true})
	c, err := client.New("ws://"+s.Addr(), client.Chronicle("app"), client.Story("logs"))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(client.NewHandler(c, nil)).With(slog.Group("tags", "host", "h1"))
	logger.Warn("disk almost full", "free_mb", 12)
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + s.Addr() + "/api/v1/chronicles/app/stories/logs/events?format=ndjson")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ev struct {
		Kind   string
		Tags   map[string]string
		Fields map[string]any
		Time   time.Time
	}
	if err := json.NewDecoder(resp.Body).Decode(&ev); err != nil {
		t.Fatal(err)
	}
	if ev.Kind != "log" || ev.Tags["host"] != "h1" || ev.Fields["free_mb"] != 12.0 || ev.Fields["msg"] != "disk almost full" ||
		time.Since(ev.Time) > time.Minute {
		t.Fatalf("stored %+v", ev)
	}
}
