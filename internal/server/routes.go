package server

import (
	"net/http"

	"github.com/chronostream/chronostream/internal/api"
	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/httpsec"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/ingest/lineproto"
	"github.com/chronostream/chronostream/internal/ingest/ndjson"
	"github.com/chronostream/chronostream/internal/ingest/otlp"
	"github.com/chronostream/chronostream/internal/ingest/trendlines"
	"github.com/chronostream/chronostream/internal/ingest/wsingest"
	"github.com/chronostream/chronostream/internal/vivo"
	"github.com/chronostream/chronostream/internal/web"
)

// routes is the one HTTP mux: UI, our API and every HTTP protocol share the port.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	ingestCfg := s.ingestConfig("")
	nd := ndjson.NewHandler(ndjson.Config{Config: ingestCfg})
	lp := lineproto.NewHandler(lineproto.Config{Config: ingestCfg, Version: s.opts.Version})
	ws := wsingest.NewHandler(wsingest.Config{Config: ingestCfg, Done: s.done})
	s.ws = ws
	apiCfg := api.Config{Store: s.store, Metrics: s.metrics, Logger: s.log, Done: s.done,
		Node: s.nodeName, Meta: s.clusterMeta, URLPrefix: s.opts.URLPrefix}
	if s.queryIndex != nil {
		apiCfg.Index = s.queryIndex // charts on the time axis read the index
	}
	a := api.New(apiCfg)
	// Every route declares the scope it needs: by default reads for GET,
	// writes (ingest) for POST, admin for PUT and DELETE (auth.ByMethod).
	// Our API and Trendlines refuse in RFC 7807 problem JSON, InfluxDB's
	// routes as InfluxDB does; only 1.x routes take a token in the URL.
	protect := s.tokens.Require
	protectWrite := s.tokens.Guard(auth.Route{Scope: auth.Needs(auth.ScopeWrite)})
	protectAPI := s.tokens.Guard(auth.Route{Deny: auth.Problem, Forbid: auth.ProblemForbidden})
	protectRead := s.tokens.Guard(auth.Route{Deny: auth.Problem, Forbid: auth.ProblemForbidden, Scope: auth.Needs(auth.ScopeRead)})
	protectAdmin := s.tokens.Guard(auth.Route{Deny: auth.Problem, Forbid: auth.ProblemForbidden, Scope: auth.ReadOr(auth.ScopeAdmin), AllChronicles: true})
	protectTokens := s.tokens.Guard(auth.Route{Deny: auth.Problem, Forbid: auth.ProblemForbidden, Scope: auth.Needs(auth.ScopeAdmin), AllChronicles: true})
	protectV1 := s.tokens.Guard(auth.Route{Deny: lp.DenyV1, Forbid: lp.ForbidV1, QueryToken: true, Scope: auth.Needs(auth.ScopeWrite)})
	protectQuery := s.tokens.Guard(auth.Route{Deny: lp.DenyV1, Forbid: lp.ForbidV1, QueryToken: true, FormToken: true, Scope: auth.Needs(auth.ScopeRead)})
	protectV2 := s.tokens.Guard(auth.Route{Deny: lp.DenyV2, Forbid: lp.ForbidV2, Scope: auth.Needs(auth.ScopeWrite)})

	// The web UI: a browser's GET / gets the page, its assets are under
	// /ui/. New validated the prefix, so this cannot fail.
	ui, err := web.New(s.opts.URLPrefix)
	if err != nil {
		panic(err)
	}

	// anacrolix/telemetry compatibility on "/".
	mux.Handle("POST /{$}", protect(http.HandlerFunc(nd.ServeRoot)))
	mux.Handle("GET /{$}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wsingest.IsUpgrade(r) {
			protectWrite(ws).ServeHTTP(w, r) // Origin: checked by s.sec.Wrap
			return
		}
		httpsec.UIHeaders(http.HandlerFunc(ui.ServeIndex)).ServeHTTP(w, r)
	}))
	mux.Handle("GET "+web.AssetsPath, httpsec.UIHeaders(ui))
	mux.Handle("POST /api/v1/chronicles/{chronicle}/stories/{story}/events", protectAPI(http.HandlerFunc(nd.ServeEvents)))
	a.Register(mux, protectAPI)
	a.RegisterSinks(mux, protectAdmin, s.sinks)
	// A login with a token nobody issued is a refusal like the guard's:
	// counted, so that guessing shows on /metrics.
	loginLookup := func(secret string) *auth.Principal {
		p := s.tokens.Lookup(secret)
		if p == nil {
			s.sec.Reject("unauthorized")
		}
		return p
	}
	a.RegisterTokens(mux, protectTokens, protectRead, s.tokenStore, loginLookup)
	// Trendlines: its metrics are stories of the metrics chronicle, as Graphite's.
	// Its routes name no chronicle: a token limited to others is refused.
	protectTrendlines := s.tokens.Guard(auth.Route{Deny: auth.Problem, Forbid: auth.ProblemForbidden,
		Chronicle: func(*http.Request) string { return s.opts.MetricsChronicle }})
	trendlines.NewHandler(trendlines.Config{Config: ingestCfg, Store: s.store, Chronicle: s.opts.MetricsChronicle}).Register(mux, protectTrendlines)

	// InfluxDB 1.x and 2.x writes. /ping answers without a token, as
	// InfluxDB's does: clients probe it before sending credentials.
	mux.Handle("POST /write", protectV1(http.HandlerFunc(lp.ServeWriteV1)))
	mux.Handle("POST /api/v2/write", protectV2(http.HandlerFunc(lp.ServeWriteV2)))
	mux.HandleFunc("GET /ping", lp.ServePing)
	mux.HandleFunc("HEAD /ping", lp.ServePing)
	// InfluxDB 1.x queries (InfluxQL), as Grafana's InfluxDB data source sends them.
	qh := protectQuery(s.queryHandler())
	mux.Handle("GET /query", qh)
	mux.Handle("POST /query", qh)

	// OTLP/HTTP: logs, metrics and traces of OpenTelemetry SDKs and collectors.
	otlp.NewHandler(otlp.Config{Config: ingestCfg, Chronicle: s.opts.OTLPChronicle, StoryAttribute: s.opts.OTLPStoryAttribute}).Register(mux, protect)

	// Vivo: Fluent Bit's http input and the Vivo exporter under /vivo/
	// (here /vivo/metrics is Vivo's; /metrics stays the server's own).
	// New validated the configuration, so this cannot fail.
	if v, err := vivo.New(s.vivoConfig(s.store)); err == nil {
		s.vivo = v
		v.RegisterInput(mux, "/vivo", protect)
		v.RegisterExporter(mux, "/vivo", s.vivoGuard(v))
	}

	mux.HandleFunc("GET /health", s.healthHandler)
	mux.HandleFunc("GET /ready", s.readyHandler)
	mux.Handle("GET /metrics", s.metricsHandler())
	// Request bodies (every protocol's ingest) that stall are cut off
	// (408) rather than holding a handler and its pipeline's memory.
	bodyTimeout := s.opts.Limits.BodyReadTimeout
	if bodyTimeout == 0 {
		bodyTimeout = ingest.DefaultBodyReadTimeout
	}
	// Browsers' cross-origin writes are refused, allowed origins get CORS.
	return web.StripPrefix(s.opts.URLPrefix, ingest.BodyReadTimeout(bodyTimeout)(s.sec.Wrap(mux)))
}
