// Package httpsec keeps browsers from being turned against the server: other
// sites' pages may not write to it (cross-origin requests are refused
// unless their origin is allowed, which matters most for a loopback server
// with no tokens, that any page a user visits could otherwise reach), may
// only read it from allowed origins (CORS), may not open WebSockets to it
// from elsewhere, and may not frame or script the UI.
package httpsec

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Policy is the server's browser policy: same origin, plus the origins
// configured with --cors-origin.
type Policy struct {
	origins  []string // scheme://host[:port], lower case
	cop      *http.CrossOriginProtection
	rejected *prometheus.CounterVec
}

// New validates the allowed origins (scheme://host[:port]) and registers
// the rejection counter on reg (nil: not exported).
func New(origins []string, reg prometheus.Registerer) (*Policy, error) {
	p := &Policy{cop: http.NewCrossOriginProtection(),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronostream_http_rejected_total",
			Help: "HTTP requests refused before their handler, by reason: cross_origin (a browser's write from another site), websocket_origin, unauthorized (no accepted token), forbidden (a token without the scope or chronicle), rate_limited (a token over its ingest rate: 429), too_many_tails (a token at its maximum of live tails: 429).",
		}, []string{"reason"})}
	for _, o := range origins {
		n, err := normalize(o)
		if err != nil {
			return nil, err
		}
		if err := p.cop.AddTrustedOrigin(n); err != nil {
			return nil, fmt.Errorf("httpsec: allowed origin %q: %w", o, err)
		}
		p.origins = append(p.origins, n)
	}
	p.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.Reject("cross_origin")
		http.Error(w, "forbidden: a cross-origin request from "+r.Header.Get("Origin")+
			" (allow the origin with --cors-origin)", http.StatusForbidden)
	}))
	if reg != nil {
		reg.MustRegister(p.rejected)
	}
	return p, nil
}

// normalize checks an origin and returns it in the form browsers send.
func normalize(o string) (string, error) {
	u, err := url.Parse(strings.TrimRight(o, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
		return "", fmt.Errorf("httpsec: allowed origin %q: want scheme://host[:port], e.g. https://grafana.example.com", o)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// Reject counts a request refused for reason on /metrics.
func (p *Policy) Reject(reason string) { p.rejected.WithLabelValues(reason).Inc() }

func (p *Policy) allowed(origin string) bool {
	return origin != "" && slices.Contains(p.origins, strings.ToLower(origin))
}

// Wrap refuses cross-origin writes from browsers (403) except from the
// allowed origins, and answers those origins' CORS preflights and reads
// with the CORS headers that let their pages call the API with a token.
// Requests that no browser sent (no Origin, no Sec-Fetch-Site) pass.
func (p *Policy) Wrap(h http.Handler) http.Handler {
	protected := p.cop.Handler(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" {
			w.Header().Add("Vary", "Origin")
		}
		if p.allowed(origin) {
			hd := w.Header()
			hd.Set("Access-Control-Allow-Origin", origin)
			hd.Set("Access-Control-Expose-Headers", "Retry-After, X-Influxdb-Version, X-Influxdb-Build")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				hd.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, DELETE")
				hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Content-Encoding, "+
					"X-Chronostream-Chronicle, X-Chronostream-Story, X-Chronostream-Stream, X-Chronostream-Index")
				hd.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		// Every WebSocket route (ingest on "/", the tails) gets the same
		// Origin check, counted, with the allowed origins honoured.
		if isWebSocketUpgrade(r) && !p.webSocketOriginOK(r) {
			p.rejectWebSocket(w, r)
			return
		}
		protected.ServeHTTP(w, r)
	})
}

func isWebSocketUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// contentSecurityPolicy allows the UI only its own scripts, styles and
// connections: no inline script, no other site, no framing. base-uri
// 'self' because the page sets <base href> to the URL prefix.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"

// UIHeaders adds the UI's security headers to h's responses: the content
// security policy, no MIME sniffing, no framing, no referrer.
func UIHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// webSocketOriginOK refuses a WebSocket upgrade whose Origin is neither
// the server's own host nor an allowed origin: a browser opens WebSockets
// to any site without CORS, so a page elsewhere could otherwise write
// through a user's loopback server. Clients that are not browsers send no
// Origin and pass.
func (p *Policy) webSocketOriginOK(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || p.allowed(origin) {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

func (p *Policy) rejectWebSocket(w http.ResponseWriter, r *http.Request) {
	p.Reject("websocket_origin")
	http.Error(w, "forbidden: a WebSocket from origin "+r.Header.Get("Origin")+" (allow it with --cors-origin)", http.StatusForbidden)
}
