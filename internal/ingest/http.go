package ingest

import (
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Target returns the chronicle and story a compatibility request writes
// to: query parameters (chronicle=, story=) first, then the
// X-Chronostream-Chronicle and X-Chronostream-Story headers, then the
// defaults.
func Target(r *http.Request, defChronicle, defStory string) (chronicle, story string) {
	q := r.URL.Query()
	pick := func(param, header, def string) string {
		if v := q.Get(param); v != "" {
			return v
		}
		if v := r.Header.Get(header); v != "" {
			return v
		}
		return def
	}
	return pick("chronicle", "X-Chronostream-Chronicle", defChronicle), pick("story", "X-Chronostream-Story", defStory)
}

// SourceHeaders returns a copy of h fit to be stored with a source:
// credentials are redacted, since sources are readable through the API.
func SourceHeaders(h http.Header) map[string][]string {
	out := make(map[string][]string, len(h))
	for k, vs := range h {
		switch http.CanonicalHeaderKey(k) {
		case "Authorization", "Proxy-Authorization", "Cookie":
			red := make([]string, len(vs))
			for i := range red {
				red[i] = "[REDACTED]"
			}
			out[k] = red
		case "Sec-Websocket-Protocol":
			// A browser's WebSocket offers its token as the subprotocol
			// bearer.TOKEN (auth.WebSocketCredential).
			red := make([]string, len(vs))
			for i, v := range vs {
				ps := strings.Split(v, ",")
				for j, p := range ps {
					if strings.HasPrefix(strings.TrimSpace(p), "bearer.") {
						ps[j] = "bearer.[REDACTED]"
					}
				}
				red[i] = strings.Join(ps, ",")
			}
			out[k] = red
		default:
			out[k] = append([]string(nil), vs...)
		}
	}
	return out
}

// EventLimit is the largest event body a transport should accept: limit,
// lowered to what one log block can hold (when log tells) so that an
// oversized event is refused on its own rather than failing the batch it
// would be appended with.
func EventLimit(log Log, limit int64, srcID string) int {
	if bl, ok := log.(interface{ MaxBlockBytes() int }); ok {
		// Leave room for the event's encoding around its body.
		limit = min(limit, int64(bl.MaxBlockBytes()-64-len(srcID)))
	}
	return int(max(limit, 1))
}

// ThrottledLogger logs warnings from hot error paths at most once per
// interval: a failing log must not turn every request into a log line.
// What is dropped is still counted in the handlers' error metrics.
type ThrottledLogger struct {
	l     *slog.Logger
	every time.Duration
	last  atomic.Int64 // unix ns of the last line written
}

// NewThrottledLogger returns a logger writing to l at most once per every.
func NewThrottledLogger(l *slog.Logger, every time.Duration) *ThrottledLogger {
	return &ThrottledLogger{l: l, every: every}
}

// Warn logs at warning level unless a line was written less than the
// interval ago.
func (t *ThrottledLogger) Warn(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := t.last.Load()
	if now-last < int64(t.every) || !t.last.CompareAndSwap(last, now) {
		return
	}
	t.l.Warn(msg, args...)
}
