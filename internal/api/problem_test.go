package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/store"
)

func TestProblems(t *testing.T) {
	e := newEnv(t, Config{})
	e.append("c", "s", seedEvents(0, 3)...)
	const ev = "/api/v1/chronicles/c/stories/s/events"
	cases := []struct {
		method, path, body string
		hdr                []string
		status             int
		param              string
	}{
		{"GET", "/api/v1/chronicles/nope/events", "", nil, 404, ""},
		{"GET", "/api/v1/chronicles/nope", "", nil, 404, ""},
		{"GET", "/api/v1/chronicles/nope/stories/s/tail", "", nil, 404, ""},
		{"DELETE", "/api/v1/chronicles/nope", "", nil, 404, ""},
		{"GET", "/api/v1/sources/nope", "", nil, 404, ""},
		{"GET", "/api/v1/sources/bad%20id", "", nil, 404, ""},
		{"GET", ev + "?limit=abc", "", nil, 400, "limit"},
		{"GET", ev + "?limit=0", "", nil, 400, "limit"},
		{"GET", ev + "?limit=1&limit=2", "", nil, 400, "limit"},
		{"GET", ev + "?order=up", "", nil, 400, "order"},
		{"GET", ev + "?format=xml", "", nil, 400, "format"},
		{"GET", ev + "?after=-1", "", nil, 400, "after"},
		{"GET", ev + "?before=x", "", nil, 400, "before"},
		{"GET", ev + "?from=yesterday", "", nil, 400, "from"},
		{"GET", ev + "?from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z", "", nil, 400, "to"},
		{"GET", ev + "?kind=bogus", "", nil, 400, "kind"},
		{"GET", ev + "?q=", "", nil, 400, "q"},
		{"GET", ev + "?limt=5", "", nil, 400, "limt"},
		{"GET", ev + "?story=s", "", nil, 400, "story"},
		{"GET", "/api/v1/chronicles/c/stories/s/tail?limit=5", "", nil, 400, "limit"},
		{"GET", "/api/v1/chronicles/c/tail?story=", "", nil, 400, "story"},
		{"GET", "/api/v1/chronicles/c/events?story=a&story=", "", nil, 400, "story"},
		{"GET", "/api/v1/chronicles/c/tail?after=1&after=2", "", nil, 400, "after"},
		{"GET", "/api/v1/chronicles/c/tail", "", []string{"Last-Event-ID", "x"}, 400, "Last-Event-ID"},
		{"GET", "/api/v1/sources?limit=-1", "", nil, 400, "limit"},
		{"PUT", "/api/v1/chronicles/c", `{"retention":{"max_age":"fortnight"}}`, nil, 400, ""},
		{"PUT", "/api/v1/chronicles/c", `{"retention":{"maxAge":"1h"}}`, nil, 400, ""},
		{"PUT", "/api/v1/chronicles/c", `{"retention":{"max_events":-1}}`, nil, 400, ""},
		{"PUT", "/api/v1/chronicles/c", `{`, nil, 400, ""},
		{"PUT", "/api/v1/chronicles/" + strings.Repeat("x", 81), ``, nil, 400, "chronicle"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			resp := e.do(c.method, c.path, strings.NewReader(c.body), c.hdr...)
			defer resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
			var p problem
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
			if p.Type != "about:blank" || p.Status != c.status || p.Title == "" || p.Detail == "" || p.Param != c.param {
				t.Fatalf("problem %+v", p)
			}
		})
	}
}

func TestSources(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	now := time.Now().UTC()
	for i, src := range []store.Source{
		{ID: store.NewSourceID(), Protocol: "ndjson", Remote: "127.0.0.1:1", Chronicle: "a", Story: "s", Start: now.Add(-time.Minute), Count: 3,
			Headers: map[string][]string{"User-Agent": {"curl"}}},
		{ID: store.NewSourceID(), Protocol: "websocket", Remote: "127.0.0.1:2", Chronicle: "b", Story: "s", Start: now},
		{ID: store.NewSourceID(), Protocol: "ndjson", Remote: "127.0.0.1:3", Chronicle: "a", Story: "t", Start: now.Add(time.Minute)},
		// A client first seen long ago and seen last of all comes first.
		{ID: "c=old-client", Protocol: "influx-v1", Remote: "127.0.0.1", Chronicle: "c", Start: now.Add(-time.Hour), End: now.Add(2 * time.Minute)},
	} {
		if err := e.store.PutSource(ctx, src); err != nil {
			t.Fatal(i, err)
		}
	}
	var out struct{ Sources []store.Source }
	e.getJSON("/api/v1/sources", 200, &out)
	if len(out.Sources) != 4 || out.Sources[0].ID != "c=old-client" || out.Sources[1].Remote != "127.0.0.1:3" {
		t.Fatalf("sources, last seen first: %+v", out)
	}
	e.getJSON("/api/v1/sources?chronicle=a&limit=5", 200, &out)
	if len(out.Sources) != 2 || out.Sources[1].Protocol != "ndjson" || out.Sources[1].Headers["User-Agent"][0] != "curl" {
		t.Fatalf("sources of a %+v", out)
	}
	e.getJSON("/api/v1/sources?chronicle=a&limit=1", 200, &out)
	if len(out.Sources) != 1 {
		t.Fatalf("limit: %+v", out)
	}
	var one store.Source
	e.getJSON("/api/v1/sources/"+out.Sources[0].ID, 200, &one)
	if one.ID != out.Sources[0].ID || one.Chronicle != "a" {
		t.Fatalf("source %+v", one)
	}
}

// Every route goes through protect.
func TestRoutesProtected(t *testing.T) {
	mux := http.NewServeMux()
	New(Config{}).Register(mux, func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusUnauthorized) })
	})
	for _, r := range []struct{ method, path string }{
		{"GET", "/api/v1/chronicles"}, {"GET", "/api/v1/chronicles/c"}, {"PUT", "/api/v1/chronicles/c"},
		{"DELETE", "/api/v1/chronicles/c"}, {"GET", "/api/v1/chronicles/c/stories"},
		{"GET", "/api/v1/chronicles/c/events"}, {"GET", "/api/v1/chronicles/c/stories/s/events"},
		{"GET", "/api/v1/chronicles/c/tail"}, {"GET", "/api/v1/chronicles/c/stories/s/tail"},
		{"GET", "/api/v1/sources"}, {"GET", "/api/v1/sources/x"},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(r.method, r.path, nil))
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%s %s: %d", r.method, r.path, rec.Code)
		}
	}
}
