package vivo

import (
	"net/http"
	"strings"
)

// exposedHeaders are the response headers a browser script may read: the
// Vivo UI reads the stream ids (fluent-bit PR #7070 exposed them).
const exposedHeaders = "Vivo-Stream-Start-ID, Vivo-Stream-End-ID, Vivo-Stream-Next-ID"

// allowedHeaders answer a preflight that names no headers; Vivo's exporter
// sends the same list, plus Authorization for deployments with tokens.
const allowedHeaders = "Origin, X-Requested-With, Content-Type, Accept, Authorization"

func normOrigin(o string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(o)), "/")
}

func (h *Handler) allowed(origin string) bool {
	return h.anyOrig || h.origins[normOrigin(origin)]
}

// cors adds CORS headers for the allowed origins only and answers
// preflights: an allowed one with 204 and what it may do, a refused one
// with 403 and no CORS headers (the browser then blocks the read). A plain
// request from a refused origin is served without CORS headers, which is
// what keeps a browser page of that origin from reading it; clients that
// are not browsers are not concerned by CORS at all.
func (h *Handler) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		hd := w.Header()
		if origin != "" {
			hd.Add("Vary", "Origin")
		}
		ok := origin != "" && h.allowed(origin)
		if ok {
			if h.anyOrig {
				hd.Set("Access-Control-Allow-Origin", "*")
			} else {
				hd.Set("Access-Control-Allow-Origin", origin)
			}
			hd.Set("Access-Control-Expose-Headers", exposedHeaders)
		}
		if r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != "" {
			if !ok {
				hd.Del("Access-Control-Allow-Origin")
				http.Error(w, "error: origin "+origin+" is not allowed (--vivo-cors-origin)", http.StatusForbidden)
				return
			}
			hd.Add("Vary", "Access-Control-Request-Method")
			hd.Add("Vary", "Access-Control-Request-Headers")
			hd.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
				hd.Set("Access-Control-Allow-Headers", req)
			} else {
				hd.Set("Access-Control-Allow-Headers", allowedHeaders)
			}
			hd.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
