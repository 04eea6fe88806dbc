package web_test

import (
	"compress/gzip"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
	"github.com/chronostream/chronostream/internal/web"
)

// client sees redirects and gzip as they are sent.
var client = &http.Client{Transport: &http.Transport{DisableCompression: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var assetRef = regexp.MustCompile(`(?:src|href)="([^"]+)"`)

func TestPageAndAssets(t *testing.T) {
	for _, prefix := range []string{"", "/cs", "/tools/chronostream"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			s := servertest.RunServer(t, server.Options{URLPrefix: prefix + "/"})
			base := "http://" + s.Addr()
			resp, page := get(t, base+prefix+"/")
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
				t.Fatalf("GET %s/: %d %s", prefix, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if !strings.Contains(page, `<base href="`+prefix+`/">`) {
				t.Fatalf("page has no base %q:\n%s", prefix+"/", page)
			}
			// A CSP without 'unsafe-inline' must be able to allow the page:
			// scripts only from files, no inline handlers or styles blocks.
			for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(page, -1) {
				if !strings.Contains(tag, ` src="`) {
					t.Errorf("inline script %s", tag)
				}
			}
			if regexp.MustCompile(`\son[a-z]+=`).MatchString(page) || strings.Contains(page, "<style") || strings.Contains(page, "style=") {
				t.Fatalf("page has an inline handler or style:\n%s", page)
			}
			refs := assetRef.FindAllStringSubmatch(page, -1)
			if len(refs) < 3 {
				t.Fatalf("page references %d assets", len(refs))
			}
			wantType := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
			for _, m := range refs {
				ref := m[1]
				if strings.HasPrefix(ref, "#") || ref == prefix+"/" {
					continue
				}
				if !strings.HasPrefix(ref, prefix+web.AssetsPath) {
					t.Errorf("asset %s is not under %s%s", ref, prefix, web.AssetsPath)
					continue
				}
				resp, body := get(t, base+ref)
				ext := regexp.MustCompile(`\.[a-z]+(\?|$)`).FindString(ref)
				ext = strings.TrimSuffix(ext, "?")
				if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != wantType[ext] || len(body) == 0 {
					t.Errorf("GET %s: %d %q (%d bytes), want 200 %q", ref, resp.StatusCode, resp.Header.Get("Content-Type"), len(body), wantType[ext])
				}
				if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
					t.Errorf("GET %s (named by content): Cache-Control %q, want immutable", ref, cc)
				}
				etag := resp.Header.Get("ETag")
				if r304, _ := get(t, base+ref, "If-None-Match", etag); etag == "" || r304.StatusCode != http.StatusNotModified {
					t.Errorf("GET %s with If-None-Match %s: %d, want 304", ref, etag, r304.StatusCode)
				}
				rgz, gz := get(t, base+ref, "Accept-Encoding", "gzip, br")
				if rgz.Header.Get("Content-Encoding") != "gzip" {
					t.Errorf("GET %s: not gzipped", ref)
					continue
				}
				if gzTag := rgz.Header.Get("ETag"); gzTag == etag || gzTag == "" {
					t.Errorf("GET %s: gzip and identity share the strong ETag %s", ref, etag)
				} else if r304, _ := get(t, base+ref, "If-None-Match", gzTag, "Accept-Encoding", "gzip"); r304.StatusCode != http.StatusNotModified {
					t.Errorf("GET %s gzipped with If-None-Match %s: %d, want 304", ref, gzTag, r304.StatusCode)
				}
				zr, err := gzip.NewReader(strings.NewReader(gz))
				if err != nil {
					t.Fatal(err)
				}
				plain, _ := io.ReadAll(zr)
				if string(plain) != body {
					t.Errorf("GET %s: gzipped body differs", ref)
				}
				if r, _ := get(t, base+ref, "Accept-Encoding", "gzip;q=0"); r.Header.Get("Content-Encoding") != "" {
					t.Errorf("GET %s: gzip sent though refused (q=0)", ref)
				}
			}
			// The vendored chart library and its licence ship too.
			for _, p := range []string{"vendor/uplot/uPlot.esm.js", "vendor/uplot/LICENSE", "metrics.js"} {
				if r, _ := get(t, base+prefix+web.AssetsPath+p); r.StatusCode != 200 {
					t.Errorf("GET %s: %d", p, r.StatusCode)
				}
			}
			if r, _ := get(t, base+prefix+"/"); r.Header.Get("Cache-Control") != "no-cache" {
				t.Errorf("the page: Cache-Control %q, want no-cache", r.Header.Get("Cache-Control"))
			}
			if r, _ := get(t, base+prefix+web.AssetsPath+"api.js"); r.Header.Get("Cache-Control") != "no-cache" {
				t.Errorf("a module imported without a version: Cache-Control %q, want no-cache", r.Header.Get("Cache-Control"))
			}
			if r, _ := get(t, base+prefix+web.AssetsPath+"nope.js"); r.StatusCode != 404 {
				t.Errorf("unknown asset: %d, want 404", r.StatusCode)
			}
			// The API answers under the prefix and without it.
			for _, p := range []string{prefix + "/api/v1/chronicles", "/api/v1/chronicles", prefix + "/health"} {
				if r, _ := get(t, base+p); r.StatusCode != 200 {
					t.Errorf("GET %s: %d", p, r.StatusCode)
				}
			}
			if prefix != "" {
				if r, _ := get(t, base+prefix); r.StatusCode != http.StatusMovedPermanently || r.Header.Get("Location") != prefix+"/" {
					t.Errorf("GET %s: %d to %q, want a redirect to %s/", prefix, r.StatusCode, r.Header.Get("Location"), prefix)
				}
			}
		})
	}
}

// The anacrolix uses of "/" are untouched by the UI: POST / stores NDJSON
// and a WebSocket upgrade on GET / streams events in.
func TestRootStillIngests(t *testing.T) {
	s := servertest.RunServer(t, server.Options{AutoCreate: true, URLPrefix: "/cs"})
	base := "http://" + s.Addr()
	resp, err := http.Post(base+"/?story=root", "application/x-ndjson", strings.NewReader(`{"n":1}`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /: %d", resp.StatusCode)
	}
	ctx := t.Context()
	c, _, err := websocket.Dial(ctx, "ws://"+s.Addr()+"/?story=root", nil)
	if err != nil {
		t.Fatalf("WebSocket GET /: %v", err)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"n":2}`)); err != nil {
		t.Fatal(err)
	}
	_, ack, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("no acknowledgement: %v", err)
	}
	c.Close(websocket.StatusNormalClosure, "")
	if strings.TrimSpace(string(ack)) == "" {
		t.Fatal("empty acknowledgement")
	}
	if _, body := get(t, base+"/api/v1/chronicles/default/stories/root/events"); !strings.Contains(body, `"n":1`) || !strings.Contains(body, `"n":2`) {
		t.Fatalf("events of POST / and the WebSocket not both stored: %s", body)
	}
	// Under the prefix, names with escaped slashes keep them.
	resp, err = http.Post(base+"/cs/api/v1/chronicles/app/stories/api%2Fdb%20latency/events", "application/x-ndjson", strings.NewReader(`{"ms":3}`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST under the prefix: %d", resp.StatusCode)
	}
	if _, body := get(t, base+"/cs/api/v1/chronicles/app/stories"); !strings.Contains(body, `"name":"api/db latency"`) {
		t.Fatalf("story name through the prefix: %s", body)
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{"": "", "/": "", "/cs": "/cs", "/cs/": "/cs", " /a/b/ ": "/a/b"} {
		if got, err := web.Normalize(in); err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"cs", "/a/../b", "/a//b", `/a"b`, "/a?b", "/a#b", "/a b", "/<x>"} {
		if got, err := web.Normalize(bad); err == nil {
			t.Errorf("Normalize(%q) = %q, want an error", bad, got)
		}
	}
	if _, err := server.New(server.Options{URLPrefix: "relative", HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir()}); err == nil {
		t.Error("server.New accepted a relative URL prefix")
	}
}
