package auth

import (
	"net/http"
	"strings"
	"time"
)

// SessionCookie is the cookie the web UI logs in with: it holds a session
// id (Store.CreateSession), never the token, is HttpOnly (scripts cannot read it), SameSite=Strict (other
// sites' pages do not send it) and Secure over TLS. The guard takes it
// for reads only.
const SessionCookie = "chronostream_session"

// SessionCredential is the session id of the request's cookie, or "".
func SessionCredential(r *http.Request) string {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

// SetSession sets the session cookie holding the session id on w for the site at
// path (the server's URL prefix, or "/"); tls marks it Secure.
func SetSession(w http.ResponseWriter, id, path string, tls bool, ttl time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: id, Path: cookiePath(path),
		MaxAge: int(ttl / time.Second), HttpOnly: true, Secure: tls, SameSite: http.SameSiteStrictMode})
}

// ClearSession removes the session cookie.
func ClearSession(w http.ResponseWriter, path string, tls bool) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: cookiePath(path),
		MaxAge: -1, HttpOnly: true, Secure: tls, SameSite: http.SameSiteStrictMode})
}

func cookiePath(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// WebSocketSubprotocol is the subprotocol a WebSocket client offers along
// with "bearer.TOKEN" to authenticate where it cannot set headers (a
// browser's WebSocket): the server selects this one, never echoing the
// token. Clients that can set headers send Authorization instead.
const WebSocketSubprotocol = "chronostream"

// WebSocketCredential is the token a WebSocket upgrade offers as a
// "bearer.TOKEN" subprotocol, or "".
func WebSocketCredential(r *http.Request) string {
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if tok, ok := strings.CutPrefix(strings.TrimSpace(p), "bearer."); ok {
				return tok
			}
		}
	}
	return ""
}
