// Package sink forwards the events of the log to outside systems with
// at-least-once delivery. The Runner (shared by every sink) owns the durable
// cursor, selection, batching, retries and dead-lettering; a Sink only knows
// how to write one batch to its destination and how to say why it could not.
package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chronostream/chronostream/event"
)

// Batch is a run of selected events of one chronicle, in log (seq) order.
type Batch struct {
	Chronicle string
	Events    []event.Event
	// Positions[i] is the place of Events[i] among all the events of the
	// chronicle the session read (selected or not), counted from 1 after
	// the session's cursor: Positions[i+1]-Positions[i]-1 events of the
	// chronicle lie between two events of the batch. The runner always
	// sets it; elsewhere it may be nil.
	Positions []uint64
}

// split halves b (at least two events), positions with their events.
func (b Batch) split() (Batch, Batch) {
	mid := len(b.Events) / 2
	first, second := b, b
	first.Events, second.Events = b.Events[:mid], b.Events[mid:]
	if len(b.Positions) == len(b.Events) {
		first.Positions, second.Positions = b.Positions[:mid], b.Positions[mid:]
	}
	return first, second
}

// Sink writes batches to one destination.
//
// Deliver returns nil only when the destination has accepted every event of
// the batch. Otherwise its error says what the runner should do:
//   - a *PermanentError (see Permanent): the destination refused the data
//     itself (an HTTP 4xx other than 408 and 429). The runner splits the batch
//     to isolate the refused events and dead-letters them with the error;
//   - anything else is transient: the runner retries the same batch with
//     exponential backoff and jitter, no sooner than RetryAfter(err).
//
// Deliver must be idempotent for a batch it is given again after an error or
// a crash: delivery is at-least-once.
type Sink interface {
	Deliver(ctx context.Context, b Batch) error
	// Close releases the sink's resources; no Deliver is in flight.
	Close() error
}

// Primer is a Sink whose output depends on what it delivered before (the
// InfluxDB sink's numbering of events sharing a series and a timestamp).
// At the start of every session (a start, a restart, a takeover by another
// node, a cursor moved) the runner calls Prime before any Deliver, and back
// yields every event of the chronicle at or before the cursor, newest
// first, with whether it is selected (already delivered), as far back as
// the log goes: the sink stops ranging when it has read enough, so that a
// sink selecting few events of a busy chronicle can stop after a number of
// the chronicle's events, not of its own. Prime replaces whatever state
// the sink had, so that it comes out as if the sink had delivered the log
// up to the cursor without stopping.
type Primer interface {
	Prime(chronicle string, back iter.Seq2[*event.Event, bool])
}

// Filterer is a Sink that accepts events it sends nowhere, by a rule of its
// own (the grafana sink: events that are not annotations, and non-actions
// under only_actions). Filtered is how many so far; the runner counts what
// one accepted Deliver added as skipped, never as delivered.
type Filterer interface {
	Filtered() uint64
}

// PermanentError marks a refusal that retrying cannot fix.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a permanent refusal.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err (or an error it wraps) is permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// RetryLaterError is a transient refusal that names the earliest retry.
type RetryLaterError struct {
	Err   error
	After time.Duration
}

func (e *RetryLaterError) Error() string { return e.Err.Error() }
func (e *RetryLaterError) Unwrap() error { return e.Err }

// RetryAfter returns the delay a transient error asks for (0 if none).
func RetryAfter(err error) time.Duration {
	var r *RetryLaterError
	if errors.As(err, &r) {
		return r.After
	}
	return 0
}

// HTTPError turns a destination's non-2xx answer into the error class the
// runner acts on: 408, 429 and 5xx are transient (honouring Retry-After, in
// seconds or as an HTTP date); so are 401 and 403, which say the sink's
// credentials are wrong, not the events: dead-lettering would empty the
// whole stream into the dead-letter story until someone fixed a setting.
// Any other status is permanent. body is a bounded prefix of the response
// body, quoted in the message. A 2xx is nil.
func HTTPError(resp *http.Response, body []byte) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err := fmt.Errorf("%s: %s", resp.Status, bytesQuote(body))
	switch {
	case resp.StatusCode == http.StatusRequestTimeout,
		resp.StatusCode == http.StatusTooManyRequests,
		resp.StatusCode >= 500:
		return &RetryLaterError{Err: err, After: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	case resp.StatusCode == http.StatusUnauthorized, resp.StatusCode == http.StatusForbidden:
		return &RetryLaterError{Err: fmt.Errorf("%w (check the sink's credentials; retrying until they are accepted)", err)}
	default:
		return Permanent(err)
	}
}

func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func bytesQuote(b []byte) string {
	const max = 512
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "…"
	}
	return strconv.Quote(string(b))
}

// Factory builds a sink of one type from its settings: the sink's section of
// the config file (YAML or TOML), converted to JSON so that every sink
// decodes it the same way into its own Config (json tags, snake_case keys).
// A Factory validates everything it can: a bad setting is an error at start,
// never at the first delivery.
type Factory func(settings json.RawMessage, log *slog.Logger) (Sink, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register makes a sink type available to the config file and to
// `chronostream forward` under kind (e.g. "influxdb", "grafana", "webhook").
// Sink packages call it from init; registering a kind twice panics.
func Register(kind string, f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[kind]; dup {
		panic("sink: type registered twice: " + kind)
	}
	registry[kind] = f
}

// New builds a sink of a registered type.
func New(kind string, settings json.RawMessage, log *slog.Logger) (Sink, error) {
	registryMu.RLock()
	f, ok := registry[kind]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("sink: unknown type %q (known: %s)", kind, strings.Join(Kinds(), ", "))
	}
	return f(settings, log)
}

// Kinds lists the registered sink types, sorted.
func Kinds() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	ks := make([]string, 0, len(registry))
	for k := range registry {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
