// Package vivo makes chronostream a drop-in for the two halves of a Calyptia
// Vivo deployment: Fluent Bit's `http` input (POST JSON to a path naming
// the tag) and Fluent Bit's Vivo Exporter (GET /logs, /metrics, /traces,
// paged by stream ids, read by the Vivo UI from another origin).
//
// Vivo's exporter keeps a small ring buffer per signal and numbers its
// chunks; here the log is the buffer and each record's id is its seq, which
// is strictly increasing across a whole chronicle. So an id read from
// Vivo-Stream-Next-ID continues a read exactly, and ids survive restarts.
// docs/protocols.md ("Vivo") is the user-facing contract.
package vivo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/store"
)

// Signal is one of the exporter's streams.
type Signal string

// The exporter's streams, named as in their paths.
const (
	Logs    Signal = "logs"
	Metrics Signal = "metrics"
	Traces  Signal = "traces"
)

// Signals lists the streams in their documented order.
var Signals = []Signal{Logs, Metrics, Traces}

// Kind is the event kind a signal shows.
func (s Signal) Kind() event.Kind {
	switch s {
	case Metrics:
		return event.KindMetric
	case Traces:
		return event.KindTrace
	}
	return event.KindLog
}

// DefaultChronicles are the chronicles /logs, /metrics and /traces read
// when none are configured: where Forward and the HTTP input store logs,
// where Graphite and Trendlines store metrics, and where OTLP stores
// everything (so OTLP traces show without configuration). Any chronicle is
// readable under /chronicles/{chronicle}/.
var DefaultChronicles = map[Signal]string{Logs: ingest.LogsChronicle, Metrics: "metrics", Traces: "otel"}

// ParseChronicle parses one --vivo-chronicle value, "[SIGNAL=]NAME", into
// m: NAME alone sets every signal, "logs=NAME" (or metrics=, traces=) one.
func ParseChronicle(m map[Signal]string, v string) error {
	sig, name, ok := strings.Cut(v, "=")
	if !ok {
		name = sig
	}
	if err := event.ValidateChronicle(name); err != nil {
		return err
	}
	if !ok {
		for _, s := range Signals {
			m[s] = name
		}
		return nil
	}
	for _, s := range Signals {
		if string(s) == sig {
			m[s] = name
			return nil
		}
	}
	return fmt.Errorf("unknown signal %q in %q (want logs=, metrics= or traces=)", sig, v)
}

// Reader is what the exporter needs of the log.
type Reader interface {
	Read(ctx context.Context, q store.Query, fn func(*event.Event) error, onGap func(store.Gap) error) (uint64, error)
}

// Config configures the Vivo handlers.
type Config struct {
	ingest.Config
	// Reader is the log the exporter reads; the HTTP input writes to
	// Config.Log.
	Reader Reader
	// Chronicles maps each signal to the chronicle its unprefixed path
	// reads; missing signals take DefaultChronicles.
	Chronicles map[Signal]string
	// InputChronicle is the chronicle the HTTP input writes to unless the
	// request names one; default ingest.LogsChronicle.
	InputChronicle string
	// TagChronicle makes a tag's first dot-separated segment name the
	// chronicle (see ingest.TagTarget), as Forward's option of that name.
	TagChronicle bool
	// CORSOrigins are the origins a browser may read the exporter from
	// ("*": any). None by default: no CORS headers at all.
	CORSOrigins []string
	// MaxPage bounds the records of one response (default 1000), and
	// MaxPageBytes its body (default 4 MiB; one record is always served):
	// a Vivo ring buffer is bounded, a log is not. Vivo-Stream-Next-ID
	// continues where a bounded page stopped.
	MaxPage      int
	MaxPageBytes int
	// Batch sizes the input's appends; zero fields take ingest.DefaultBatch.
	Batch ingest.BatchOptions
}

// Handler serves the Vivo HTTP input and exporter.
type Handler struct {
	cfg      Config
	appender *ingest.Appender
	origins  map[string]bool
	anyOrig  bool
	warn     *ingest.ThrottledLogger
}

// New validates cfg and returns the handler.
func New(cfg Config) (*Handler, error) {
	cfg.Config = cfg.Config.WithDefaults()
	chron := make(map[Signal]string, len(Signals))
	for _, s := range Signals {
		chron[s] = DefaultChronicles[s]
		if c := cfg.Chronicles[s]; c != "" {
			if err := event.ValidateChronicle(c); err != nil {
				return nil, fmt.Errorf("vivo: %s chronicle: %w", s, err)
			}
			chron[s] = c
		}
	}
	cfg.Chronicles = chron
	if cfg.InputChronicle == "" {
		cfg.InputChronicle = ingest.LogsChronicle
	}
	if err := event.ValidateChronicle(cfg.InputChronicle); err != nil {
		return nil, fmt.Errorf("vivo: input chronicle: %w", err)
	}
	if cfg.MaxPage <= 0 {
		cfg.MaxPage = 1000
	}
	if cfg.MaxPageBytes <= 0 {
		cfg.MaxPageBytes = 4 << 20
	}
	h := &Handler{cfg: cfg, origins: map[string]bool{}, warn: ingest.NewThrottledLogger(cfg.Logger, time.Second)}
	if cfg.Log != nil {
		h.appender = ingest.NewAppender(cfg.Log, cfg.Batch)
	}
	for _, o := range cfg.CORSOrigins {
		o = normOrigin(o)
		switch {
		case o == "*":
			h.anyOrig = true
		case o == "" || !strings.Contains(o, "://"):
			return nil, fmt.Errorf("vivo: CORS origin %q: want scheme://host[:port] or *", o)
		default:
			h.origins[o] = true
		}
	}
	return h, nil
}

// Chronicle returns the chronicle a signal's unprefixed path reads.
func (h *Handler) Chronicle(s Signal) string { return h.cfg.Chronicles[s] }

// RegisterExporter adds the exporter's routes under prefix ("" on the
// Vivo listener, "/vivo" on the main port): {prefix}/logs, /metrics and
// /traces, the same under /api/v1/ (Fluent Bit's later paths), and
// {prefix}/chronicles/{chronicle}/logs|metrics|traces for any chronicle.
// protect guards reads; CORS preflights are answered without it, since
// browsers never send credentials on them.
func (h *Handler) RegisterExporter(mux *http.ServeMux, prefix string, protect func(http.Handler) http.Handler) {
	for _, s := range Signals {
		get := h.cors(protect(h.exportHandler(s, false)))
		byName := h.cors(protect(h.exportHandler(s, true)))
		opts := h.cors(http.HandlerFunc(noContent))
		for _, p := range []string{prefix + "/" + string(s), prefix + "/api/v1/" + string(s)} {
			mux.Handle("GET "+p, get)
			mux.Handle("OPTIONS "+p, opts)
		}
		p := prefix + "/chronicles/{chronicle}/" + string(s)
		mux.Handle("GET "+p, byName)
		mux.Handle("OPTIONS "+p, opts)
	}
}

// RegisterInput adds the HTTP input: POST {prefix}/input/{tag...}.
func (h *Handler) RegisterInput(mux *http.ServeMux, prefix string, protect func(http.Handler) http.Handler) {
	in := protect(h.inputHandler(prefix))
	mux.Handle("POST "+prefix+"/input", in)
	mux.Handle("POST "+prefix+"/input/{tag...}", in)
}

var errNoLog = errors.New("vivo: no log to write to")

func noContent(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "GET, HEAD, OPTIONS")
	w.WriteHeader(http.StatusNoContent)
}
