// Package web serves chronostream's browser UI: static files embedded in
// the binary (no build step, no Node.js at run time) that draw everything
// from the public API. The page lives under the server's URL prefix so that
// it works behind a reverse proxy that forwards a path (Trendlines'
// URL_PREFIX).
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
)

//go:embed static
var static embed.FS

//go:embed index.html
var indexHTML string

// contentTypes are those of the files shipped, fixed here rather than
// taken from the machine's MIME database, which may name JavaScript
// otherwise. Anything else (LICENSE) is plain text.
var contentTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
}

// AssetsPath is where the assets are served, under the prefix.
const AssetsPath = "/ui/"

// asset is one file ready to serve: its bytes, gzipped bytes (when that
// saves anything) and a content hash for ETag.
type asset struct {
	body, gz    []byte
	contentType string
	etag        string
}

// Handler serves the UI's page and assets.
type Handler struct {
	assets map[string]*asset // by path under AssetsPath
	index  *asset
}

// Normalize checks a URL prefix and returns it as "/a/b" (no trailing
// slash), "" for none.
func Normalize(prefix string) (string, error) {
	p := strings.TrimRight(strings.TrimSpace(prefix), "/")
	if p == "" {
		return "", nil
	}
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#\"'<> \\") || path.Clean(p) != p {
		return "", fmt.Errorf("url prefix %q: want an absolute path such as /chronostream", prefix)
	}
	return p, nil
}

// New returns the handler for a normalized URL prefix (see Normalize).
func New(prefix string) (*Handler, error) {
	h := &Handler{assets: map[string]*asset{}}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		h.assets[strings.TrimPrefix(p, "static/")] = newAsset(b, contentTypes[path.Ext(p)])
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	t, err := template.New("index").Parse(indexHTML)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	var b bytes.Buffer
	// Asset URLs carry their content hash: a new binary's page never runs
	// an old cached script.
	v := func(name string) string { return prefix + AssetsPath + name + "?v=" + h.assets[name].version() }
	if err := t.Execute(&b, map[string]string{
		"Base": prefix + "/", "CSS": v("app.css"), "JS": v("app.js"), "UPlotCSS": v("vendor/uplot/uPlot.min.css"),
	}); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	h.index = newAsset(b.Bytes(), "text/html; charset=utf-8")
	return h, nil
}

// version names the asset's content in its URL (?v=).
func (a *asset) version() string { return a.etag[1:9] }

func newAsset(b []byte, contentType string) *asset {
	if contentType == "" {
		contentType = "text/plain; charset=utf-8"
	}
	sum := sha256.Sum256(b)
	a := &asset{body: b, contentType: contentType, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	_, _ = zw.Write(b)
	_ = zw.Close()
	if gz.Len() < len(b)*9/10 {
		a.gz = gz.Bytes()
	}
	return a
}

// ServeIndex answers a browser's GET / with the page.
func (h *Handler) ServeIndex(w http.ResponseWriter, r *http.Request) { h.serve(w, r, h.index) }

// ServeHTTP serves the assets under AssetsPath.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, ok := h.assets[strings.TrimPrefix(r.URL.Path, AssetsPath)]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h.serve(w, r, a)
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, a *asset) {
	hd := w.Header()
	body, etag := a.body, a.etag
	if a.gz != nil && acceptsGzip(r) {
		// Another representation, so another strong validator.
		body, etag = a.gz, strings.TrimSuffix(a.etag, `"`)+`-gz"`
		hd.Set("Content-Encoding", "gzip")
	}
	hd.Set("Content-Type", a.contentType)
	hd.Set("ETag", etag)
	hd.Set("Vary", "Accept-Encoding")
	hd.Set("X-Content-Type-Options", "nosniff")
	if v := r.URL.Query().Get("v"); a != h.index && v != "" && v == a.version() {
		// The page names its scripts and styles by content: such a URL
		// never changes what it serves.
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		// Revalidate (a 304 costs one round trip): the page and the
		// modules it imports change with the binary.
		hd.Set("Cache-Control", "no-cache")
	}
	if a == h.index {
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
	}
	if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, etag) {
		hd.Del("Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) != "gzip" {
			continue
		}
		q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q=")
		if v, err := strconv.ParseFloat(q, 64); ok && err == nil && v == 0 {
			return false // gzip;q=0: refused
		}
		return true
	}
	return false
}

// StripPrefix serves requests under prefix with the prefix removed, and
// every other request as it is: a reverse proxy that forwards the prefix
// reaches the UI and the API, while protocol clients pointed at the server
// itself keep their paths.
func StripPrefix(prefix string, next http.Handler) http.Handler {
	if prefix == "" {
		return next
	}
	strip := http.StripPrefix(prefix, next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == prefix:
			http.Redirect(w, r, prefix+"/", http.StatusMovedPermanently)
		case strings.HasPrefix(r.URL.Path, prefix+"/"):
			strip.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}
