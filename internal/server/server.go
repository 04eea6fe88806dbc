// Package server assembles chronostream: the log (embedded NATS JetStream or
// an external NATS deployment), every ingest protocol, the read and tail API
// and the server's own health and metrics endpoints. It is an object with a
// lifecycle (New → Start → Shutdown) so tests can embed it on random ports.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/connlimit"
	"github.com/chronostream/chronostream/internal/httpsec"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/ingest/forward"
	"github.com/chronostream/chronostream/internal/ingest/graphite"
	"github.com/chronostream/chronostream/internal/ingest/wsingest"
	"github.com/chronostream/chronostream/internal/natsd"
	"github.com/chronostream/chronostream/internal/obs"
	"github.com/chronostream/chronostream/internal/query/tsdb"
	"github.com/chronostream/chronostream/internal/sink"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/tlsconf"
	"github.com/chronostream/chronostream/internal/vivo"
	"github.com/chronostream/chronostream/internal/web"
)

// Options configure a server. The zero value of each field means its default.
type Options struct {
	DataDir  string // default "./data"
	HTTPAddr string // default "127.0.0.1:4318"; "" after Defaults() disables nothing: HTTP is always on

	// NATS: empty URL embeds a NATS server; otherwise connect to this deployment.
	NATSURL      string
	NATSCreds    string // credentials file (NATS 2.0 JWT/nkey)
	NATSUser     string
	NATSPassword string
	NATSToken    string
	NATSTLSCA    string
	NATSTLSCert  string
	NATSTLSKey   string
	Replicas     int

	// Cluster makes the embedded NATS server a node of a JetStream
	// cluster formed with other chronostream nodes (ignored with NATSURL);
	// NATSListen also serves NATS clients on that address.
	Cluster    natsd.Cluster
	NATSListen string

	// RelaxedSync lets the embedded JetStream acknowledge before fsync
	// (opt-in; see natsd.Options.RelaxedSync for what it can lose).
	RelaxedSync bool

	Retention store.Retention // for chronicles created on first write
	// Chronicles to create at start, or whose retention to set, by name;
	// ChronicleReplicas holds the replicas of those that set their own
	// (the others take Replicas).
	Chronicles        map[string]store.Retention
	ChronicleReplicas map[string]int
	AutoCreate        bool // create chronicles on first write
	Limits            ingest.Limits

	// Chronicle and story that the anacrolix-style "POST /" and "GET /"
	// write to when the request names none.
	DefaultChronicle string
	DefaultStory     string

	// GraphiteAddr is the Graphite plaintext listener, TCP and UDP on one
	// port; empty disables it. GraphiteAllowRemote lets it listen beyond
	// loopback: Graphite has no authentication, so tokens do not cover it.
	GraphiteAddr        string
	GraphiteAllowRemote bool
	// MetricsChronicle is where Graphite and Trendlines metrics go
	// (default "metrics").
	MetricsChronicle string

	// OTLPChronicle is where OTLP/HTTP logs, metrics and traces go
	// (default "otel"); OTLPStoryAttribute is the resource attribute whose
	// value names an item's story (default "service.name").
	OTLPChronicle      string
	OTLPStoryAttribute string

	// ForwardAddr is the Fluent Forward listener (TCP); empty disables
	// it. Beyond loopback it needs ForwardSharedKey (or InsecureNoAuth):
	// tokens do not cover it. Records go to ForwardChronicle (default
	// "logs"), one story per tag, or with ForwardTagChronicle to the
	// chronicle named by the tag's first segment (see forward.Server.Target).
	ForwardAddr         string
	ForwardChronicle    string
	ForwardTagChronicle bool
	// ForwardSharedKey makes clients authenticate with the handshake;
	// ForwardUsername and ForwardPassword add user credentials to it.
	ForwardSharedKey string
	ForwardUsername  string
	ForwardPassword  string
	// ForwardRate bounds each Forward client address's events and bytes
	// a second (zero: none); a chunk that asks for an ack waits at most
	// ForwardRateWait (forward.DefaultRateWait) and is then refused
	// without its ack (see forward.Config.Rate).
	ForwardRate     auth.Limits
	ForwardRateWait time.Duration

	// VivoAddr is the Vivo exporter's own listener (/logs, /metrics,
	// /traces at Vivo's paths); empty disables it (the exporter is still
	// served under /vivo/ on the HTTP port). VivoChronicles maps a signal
	// to the chronicle its path reads (vivo.DefaultChronicles for those
	// missing); VivoCORSOrigins are the browser origins allowed to read.
	// The Vivo HTTP input maps tags as Forward does (ForwardChronicle,
	// ForwardTagChronicle).
	VivoAddr        string
	VivoChronicles  map[vivo.Signal]string
	VivoCORSOrigins []string

	// URLPrefix is the path a reverse proxy serves the server under
	// ("/chronostream"; Trendlines' URL_PREFIX): the web UI's links and API
	// calls carry it, and requests under it are served with it removed.
	URLPrefix string

	Tokens         []string
	InsecureNoAuth bool // allow listening beyond loopback without tokens

	// TLS serves the HTTP, Forward, Graphite TCP and Vivo listeners over
	// TLS (certificate files reloaded on SIGHUP, or self-signed).
	TLS tlsconf.Options
	// CORSOrigins are the browser origins (scheme://host[:port]) besides
	// the server's own that may call the API and open WebSockets.
	CORSOrigins []string
	// ConnLimits cap the Forward and Graphite TCP connections (zero
	// fields: no cap; the command line sets connlimit.DefaultLimits).
	ConnLimits connlimit.Limits
	// HTTPConnLimits cap the HTTP and Vivo listeners' connections, each
	// apart; one over a cap is answered 503 (connlimit.WrapHTTP). Zero
	// fields: no cap; the command line sets connlimit.DefaultHTTPLimits.
	HTTPConnLimits connlimit.Limits

	// Sinks forward chronicles to outside systems (internal/sink); NodeID
	// names this node in their leases (default: host, pid and a random
	// part); SinkLeaseTTL is how long a dead node's sinks wait before
	// another node takes them over (default sink.DefaultLeaseTTL).
	Sinks        []sink.Config
	NodeID       string
	SinkLeaseTTL time.Duration

	Logger *slog.Logger
	// Version is reported by /health (and by InfluxDB-compatible endpoints).
	Version string
}

// Defaults returns o with every unset field given its default.
func (o Options) Defaults() Options {
	if o.DataDir == "" {
		o.DataDir = "data"
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.Limits.MaxBodyBytes == 0 {
		o.Limits.MaxBodyBytes = ingest.DefaultLimits.MaxBodyBytes
	}
	if o.Limits.MaxEventBytes == 0 {
		o.Limits.MaxEventBytes = ingest.DefaultLimits.MaxEventBytes
	}
	if o.DefaultChronicle == "" {
		o.DefaultChronicle = "default"
	}
	if o.DefaultStory == "" {
		o.DefaultStory = "default"
	}
	if o.MetricsChronicle == "" {
		o.MetricsChronicle = "metrics"
	}
	if o.OTLPChronicle == "" {
		o.OTLPChronicle = "otel"
	}
	if o.OTLPStoryAttribute == "" {
		o.OTLPStoryAttribute = "service.name"
	}
	if o.ForwardChronicle == "" {
		o.ForwardChronicle = forward.DefaultChronicle
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	return o
}

// Server is a running chronostream.
type Server struct {
	opts    Options
	log     *slog.Logger
	metrics *obs.Metrics
	tokens  *auth.Tokens
	// tokenStore holds the scoped tokens (auth.Store), in the log.
	tokenStore *auth.Store
	// tlsConf is the listeners' TLS (nil: plaintext); tlsStop ends its
	// SIGHUP reloads.
	tlsConf *tlsconf.Config
	tlsStop context.CancelFunc
	// sec is the browser policy (CORS, cross-origin writes, WebSocket
	// origins), counting rejections on /metrics.
	sec *httpsec.Policy
	// connMetrics counts TCP connections refused by ConnLimits.
	connMetrics *connlimit.Metrics

	ns    *natsd.Server
	nc    *nats.Conn
	store *store.Store
	// clients and streams are shared by every protocol's handlers: one
	// record per client, one serialization per client stream.
	clients *ingest.Clients
	streams *ingest.Streams

	httpLn  net.Listener
	httpSrv *http.Server
	// ws is waited for at shutdown: http.Server.Shutdown does not track
	// upgraded connections, whose last runs must be acknowledged before
	// the log closes.
	ws *wsingest.Handler
	// graphite is stopped first at shutdown: it appends what it received.
	graphite *graphite.Server
	// vivo serves the Vivo exporter on /vivo/ and, when VivoAddr is set,
	// on its own listener.
	vivo    *vivo.Handler
	vivoLn  net.Listener
	vivoSrv *http.Server
	// forward is stopped first at shutdown too: it stores (and acks) the
	// whole messages it received.
	forward *forward.Server
	// queryIndex is the InfluxQL engine's index of the log (/query).
	queryIndex *tsdb.Index
	// sinks deliver the log to outside systems; stopped before the log.
	sinks *sink.Manager
	// done closes when shutdown begins: long-lived streams (tails,
	// WebSocket ingest) end themselves, so in-flight requests can drain.
	done     chan struct{}
	doneOnce sync.Once
	ready    atomic.Bool
	serveErr chan error
}

// New validates the options.
func New(o Options) (*Server, error) {
	o = o.Defaults()
	if o.HTTPAddr == "" {
		return nil, errors.New("server: an HTTP address is required")
	}
	s := &Server{
		opts:     o,
		log:      o.Logger,
		metrics:  obs.New(),
		tokens:   auth.New(o.Tokens),
		done:     make(chan struct{}),
		serveErr: make(chan error, 1),
	}
	if err := s.checkExposure(o.HTTPAddr); err != nil {
		return nil, err
	}
	if err := o.TLS.Validate(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	sec, err := httpsec.New(o.CORSOrigins, s.metrics.Registry)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.sec = sec
	s.tokens.OnReject = sec.Reject
	s.connMetrics = connlimit.NewMetrics(s.metrics.Registry)
	if err := event.ValidateChronicle(o.MetricsChronicle); err != nil {
		return nil, fmt.Errorf("server: metrics chronicle: %w", err)
	}
	if err := event.ValidateChronicle(o.OTLPChronicle); err != nil {
		return nil, fmt.Errorf("server: OTLP chronicle: %w", err)
	}
	if err := s.checkGraphiteExposure(o.GraphiteAddr); err != nil {
		return nil, err
	}
	if o.VivoAddr != "" {
		if err := s.checkExposure(o.VivoAddr); err != nil {
			return nil, fmt.Errorf("%w (Vivo listener)", err)
		}
	}
	prefix, err := web.Normalize(o.URLPrefix)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.opts.URLPrefix = prefix
	if _, err := vivo.New(s.vivoConfig(nil)); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if err := s.checkForwardExposure(o.ForwardAddr); err != nil {
		return nil, err
	}
	return s, nil
}

// checkForwardExposure keeps the Forward listener on loopback unless
// clients must authenticate (a shared key) or the operator opted out:
// tokens do not apply to the Forward protocol.
func (s *Server) checkForwardExposure(addr string) error {
	if err := event.ValidateChronicle(s.opts.ForwardChronicle); err != nil {
		return fmt.Errorf("server: Forward chronicle: %w", err)
	}
	if (s.opts.ForwardUsername != "" || s.opts.ForwardPassword != "") && s.opts.ForwardSharedKey == "" {
		return errors.New("server: a Forward username and password need a Forward shared key (the handshake carries them)")
	}
	if addr == "" || isLoopback(addr) || s.opts.ForwardSharedKey != "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("server: Forward address %q: %w", addr, err)
	}
	if !s.opts.InsecureNoAuth {
		return fmt.Errorf("server: refusing to listen for Fluent Forward on %s beyond loopback without a shared key: "+
			"configure --forward-shared-key (clients then authenticate with the handshake), or pass --insecure-no-auth, or listen on 127.0.0.1", addr)
	}
	s.log.Warn("INSECURE: Fluent Forward listens beyond loopback with no shared key: anyone who can reach it can write logs",
		"forward", addr)
	return nil
}

// checkGraphiteExposure keeps the Graphite listener on loopback unless the
// operator opted in: the plaintext protocol has no authentication at all,
// so configured tokens do not protect it the way they protect HTTP.
func (s *Server) checkGraphiteExposure(addr string) error {
	if addr == "" || isLoopback(addr) {
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("server: Graphite address %q: %w", addr, err)
	}
	if !s.opts.GraphiteAllowRemote && !s.opts.InsecureNoAuth {
		return fmt.Errorf("server: refusing to listen for Graphite on %s beyond loopback: Graphite plaintext has no authentication, "+
			"so anyone who can reach the port can write metrics; pass --graphite-allow-remote to accept that, or listen on 127.0.0.1", addr)
	}
	s.log.Warn("Graphite plaintext listens beyond loopback with no authentication: anyone who can reach it can write metrics",
		"graphite", addr)
	return nil
}

// checkExposure refuses to listen beyond loopback without tokens, unless the
// operator opted out explicitly.
func (s *Server) checkExposure(addr string) error {
	if isLoopback(addr) || s.tokens.Enabled() {
		return nil
	}
	if !s.opts.InsecureNoAuth {
		return fmt.Errorf("server: refusing to listen on %s beyond loopback without tokens: configure --token, or pass --insecure-no-auth to accept unauthenticated traffic", addr)
	}
	s.log.Warn("INSECURE: listening beyond loopback with no authentication (--insecure-no-auth); anyone who can reach this address can write and read everything", "addr", addr)
	return nil
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Start starts the log and every listener. It returns once the server is ready.
func (s *Server) Start(ctx context.Context) error {
	if err := s.startLog(ctx); err != nil {
		s.closeLog()
		return err
	}
	if err := s.startTokens(ctx); err != nil {
		s.closeLog()
		return err
	}
	if err := s.startTLS(); err != nil {
		s.closeLog()
		return err
	}
	s.startQueryIndex(ctx)
	if err := s.startSinks(ctx); err != nil {
		s.closeLog()
		return err
	}
	ln, err := net.Listen("tcp", s.opts.HTTPAddr)
	if err != nil {
		s.closeLog()
		return fmt.Errorf("server: listen HTTP: %w", err)
	}
	s.httpSrv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	ln = s.httpListener("http", ln, s.httpSrv)
	s.httpLn = ln
	if err := s.startGraphite(); err != nil {
		ln.Close()
		s.closeLog()
		return err
	}
	if err := s.startForward(); err != nil {
		if s.graphite != nil {
			_ = s.graphite.Shutdown(ctx)
		}
		ln.Close()
		s.closeLog()
		return err
	}
	if err := s.startVivo(); err != nil {
		if s.graphite != nil {
			_ = s.graphite.Shutdown(ctx)
		}
		if s.forward != nil {
			_ = s.forward.Shutdown(ctx)
		}
		ln.Close()
		s.closeLog()
		return err
	}
	go func() {
		if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.serveErr <- err
		}
	}()
	s.ready.Store(true)
	tcp, _ := s.GraphiteAddr()
	s.log.Info("chronostream ready", "http", s.Addr(), "graphite", tcp, "forward", s.ForwardAddr(), "vivo", s.VivoAddr(), "data", s.opts.DataDir, "nats", s.natsDescription())
	return nil
}

func (s *Server) startGraphite() error {
	if s.opts.GraphiteAddr == "" {
		return nil
	}
	g, err := graphite.New(graphite.Config{Listen: s.tcpListener("graphite"), Config: s.ingestConfig(s.opts.MetricsChronicle)})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if err := g.Start(s.opts.GraphiteAddr); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.graphite = g
	return nil
}

func (s *Server) startForward() error {
	if s.opts.ForwardAddr == "" {
		return nil
	}
	f, err := forward.New(forward.Config{
		Config:       s.ingestConfig(s.opts.ForwardChronicle),
		TagChronicle: s.opts.ForwardTagChronicle,
		Listen:       s.tcpListener("forward"),
		SharedKey:    s.opts.ForwardSharedKey,
		Username:     s.opts.ForwardUsername,
		Password:     s.opts.ForwardPassword,
		Rate:         s.opts.ForwardRate,
		RateWait:     s.opts.ForwardRateWait,
	})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if err := f.Start(s.opts.ForwardAddr); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.forward = f
	return nil
}

// ForwardAddr returns the Fluent Forward listener's address, or an empty
// string when it is disabled.
func (s *Server) ForwardAddr() string {
	if s.forward == nil {
		return ""
	}
	return s.forward.Addr()
}

// vivoConfig is the Vivo handlers' configuration; log is nil when only
// validating it.
func (s *Server) vivoConfig(log *store.Store) vivo.Config {
	c := vivo.Config{
		Chronicles:     s.opts.VivoChronicles,
		CORSOrigins:    s.opts.VivoCORSOrigins,
		InputChronicle: s.opts.ForwardChronicle,
		TagChronicle:   s.opts.ForwardTagChronicle,
	}
	c.Metrics, c.Logger, c.Limits = s.metrics, s.log, s.opts.Limits
	if log != nil {
		c.Config = s.ingestConfig("")
		c.Reader = log
	}
	return c
}

// ingestConfig is what every protocol's handler is configured with;
// chronicle is its default chronicle ("": the server's default).
func (s *Server) ingestConfig(chronicle string) ingest.Config {
	if chronicle == "" {
		chronicle = s.opts.DefaultChronicle
	}
	return ingest.Config{
		Log:              s.store,
		Limits:           s.opts.Limits,
		Metrics:          s.metrics,
		Logger:           s.log,
		DefaultChronicle: chronicle,
		DefaultStory:     s.opts.DefaultStory,
		Streams:          s.streams,
		Clients:          s.clients,
	}
}

// startVivo starts the Vivo exporter's own listener, serving the handler
// that routes() built for /vivo/ at Vivo's own paths.
func (s *Server) startVivo() error {
	if s.opts.VivoAddr == "" || s.vivo == nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.opts.VivoAddr)
	if err != nil {
		return fmt.Errorf("server: listen Vivo: %w", err)
	}
	mux := http.NewServeMux()
	s.vivo.RegisterExporter(mux, "", s.vivoGuard(s.vivo))
	s.vivoSrv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	ln = s.httpListener("vivo", ln, s.vivoSrv)
	s.vivoLn = ln
	go func() {
		if err := s.vivoSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			select {
			case s.serveErr <- err:
			default:
			}
		}
	}()
	return nil
}

// VivoAddr returns the Vivo listener's address, or "" when it is disabled.
func (s *Server) VivoAddr() string {
	if s.vivoLn == nil {
		return ""
	}
	return s.vivoLn.Addr().String()
}

// GraphiteAddr returns the Graphite listeners' addresses (one port for
// both), or empty strings when Graphite is disabled.
func (s *Server) GraphiteAddr() (tcp, udp string) {
	if s.graphite == nil {
		return "", ""
	}
	return s.graphite.TCPAddr(), s.graphite.UDPAddr()
}

func (s *Server) natsDescription() string {
	if s.opts.NATSURL == "" && s.ns.Clustered() {
		return "embedded, node " + s.ns.Name() + " of cluster " + s.opts.Cluster.Name + " (routes on " + s.ns.ClusterAddr() + ")"
	}
	if s.opts.NATSURL == "" {
		return "embedded"
	}
	return s.nc.ConnectedUrlRedacted()
}

func (s *Server) startLog(ctx context.Context) error {
	var err error
	if s.opts.NATSURL == "" {
		s.ns, err = natsd.Start(natsd.Options{Dir: s.opts.DataDir, RelaxedSync: s.opts.RelaxedSync, Logger: s.log,
			Cluster: s.opts.Cluster, ClientListen: s.opts.NATSListen})
		if err != nil {
			return err
		}
		if err := s.ns.WaitJetStream(ctx, s.log); err != nil {
			return err
		}
		if s.ns.Clustered() {
			s.metrics.Registry.MustRegister(s.ns.MetaCollector())
		}
		s.nc, err = s.ns.Connect()
	} else {
		s.nc, err = s.connectExternal()
	}
	if err != nil {
		return err
	}
	s.store, err = store.Open(ctx, store.Options{
		Conn:       s.nc,
		Replicas:   s.opts.Replicas,
		Retention:  s.opts.Retention,
		AutoCreate: s.opts.AutoCreate,
		Exclusive:  s.ns != nil && !s.ns.Clustered(), // embedded and unclustered: no other writer
		Logger:     s.log,
		Registerer: s.metrics.Registry,
	})
	if err != nil {
		return err
	}
	s.clients = ingest.NewClients(s.store, s.log)
	s.streams = ingest.NewStreams(s.store, 0, s.log)
	for name, r := range s.opts.Chronicles {
		n := s.opts.ChronicleReplicas[name]
		// In a cluster forming now, the creation may wait for nodes.
		_, err := store.AwaitPlacement(ctx, s.log, "chronicle "+name, max(n, s.opts.Replicas), func(ctx context.Context) (struct{}, error) {
			if n > 0 {
				return struct{}{}, s.store.CreateChronicleReplicas(ctx, name, r, n)
			}
			return struct{}{}, s.store.CreateChronicle(ctx, name, r)
		})
		if err != nil {
			return fmt.Errorf("server: configured chronicle %q: %w", name, err)
		}
	}
	return nil
}

func (s *Server) connectExternal() (*nats.Conn, error) {
	opts := []nats.Option{nats.Name("chronostream"), nats.MaxReconnects(-1)}
	if s.opts.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(s.opts.NATSCreds))
	}
	if s.opts.NATSUser != "" {
		opts = append(opts, nats.UserInfo(s.opts.NATSUser, s.opts.NATSPassword))
	}
	if s.opts.NATSToken != "" {
		opts = append(opts, nats.Token(s.opts.NATSToken))
	}
	if s.opts.NATSTLSCA != "" {
		opts = append(opts, nats.RootCAs(s.opts.NATSTLSCA))
	}
	if s.opts.NATSTLSCert != "" {
		opts = append(opts, nats.ClientCert(s.opts.NATSTLSCert, s.opts.NATSTLSKey))
	}
	nc, err := nats.Connect(s.opts.NATSURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("server: connect to NATS at %s: %w", s.opts.NATSURL, err)
	}
	return nc, nil
}

// Addr is the HTTP listener's address (useful with port 0).
func (s *Server) Addr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// Ready reports whether the server accepts traffic.
func (s *Server) Ready() bool { return s.ready.Load() }

// Store is the server's log (for tests and embedding).
func (s *Server) Store() *store.Store { return s.store }

// Err returns a channel that yields a listener's fatal error.
func (s *Server) Err() <-chan error { return s.serveErr }

// Shutdown stops accepting work, ends live tails, lets in-flight ingest
// finish (each is acknowledged only once durable), then stops the log.
func (s *Server) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	s.doneOnce.Do(func() { close(s.done) })
	var err error
	if s.graphite != nil {
		err = s.graphite.Shutdown(ctx)
	}
	if s.forward != nil {
		err = errors.Join(err, s.forward.Shutdown(ctx))
	}
	if s.httpSrv != nil {
		err = errors.Join(err, s.httpSrv.Shutdown(ctx))
	}
	if s.vivoSrv != nil {
		err = errors.Join(err, s.vivoSrv.Shutdown(ctx))
	}
	if s.ws != nil {
		err = errors.Join(err, s.ws.Wait(ctx))
	}
	s.closeLog()
	if s.tlsStop != nil {
		s.tlsStop()
	}
	s.log.Info("chronostream stopped")
	return err
}

func (s *Server) closeLog() {
	s.closeQueryIndex() // it reads the log
	if s.clients != nil {
		// Ingest has stopped: write the clients' last counts.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.clients.Close(ctx)
		cancel()
	}
	if s.sinks != nil {
		_ = s.sinks.Close()
	}
	if s.tokenStore != nil {
		_ = s.tokenStore.Close()
	}
	if s.store != nil {
		s.store.Close()
	}
	if s.nc != nil {
		s.nc.Close()
	}
	if s.ns != nil {
		s.ns.Shutdown()
	}
}

// healthHandler answers in InfluxDB 2's /health schema (name, message,
// status, checks, version), which InfluxDB clients parse, while saying
// what chronostream's own health depends on: the log's connection.
func (s *Server) healthHandler(w http.ResponseWriter, r *http.Request) {
	type check struct {
		Name    string `json:"name"`
		Status  string `json:"status"`
		Message string `json:"message,omitempty"`
	}
	h := struct {
		Name    string  `json:"name"`
		Message string  `json:"message"`
		Status  string  `json:"status"`
		Checks  []check `json:"checks"`
		Version string  `json:"version"`
	}{Name: "chronostream", Message: "ready for writes and queries", Status: "pass",
		Checks: []check{{Name: "nats", Status: "pass"}}, Version: s.opts.Version}
	code := http.StatusOK
	if s.nc == nil || !s.nc.IsConnected() {
		code = http.StatusServiceUnavailable
		h.Status, h.Message = "fail", "the log (NATS JetStream) is unreachable"
		h.Checks[0] = check{Name: "nats", Status: "fail", Message: "disconnected"}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(h)
}

func (s *Server) readyHandler(w http.ResponseWriter, r *http.Request) {
	if !s.Ready() || !s.nc.IsConnected() {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ready")
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{})
}
