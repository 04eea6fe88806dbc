package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/connlimit"
	"github.com/chronostream/chronostream/internal/query"
	"github.com/chronostream/chronostream/internal/query/tsdb"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/tlsconf"
	"github.com/chronostream/chronostream/internal/vivo"
)

// startTokens loads the scoped tokens from the log's KV bucket (shared by
// a cluster's nodes) into the guard, before any listener serves.
func (s *Server) startTokens(ctx context.Context) error {
	js, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("server: tokens: %w", err)
	}
	ts, err := store.AwaitPlacement(ctx, s.log, "token bucket", s.opts.Replicas, func(ctx context.Context) (*auth.Store, error) {
		return auth.OpenStore(ctx, js, s.opts.Replicas, s.log)
	})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.tokenStore = ts
	s.tokens.UseStore(ts)
	return nil
}

// TokenStore is the scoped tokens' store (for tests and embedding).
func (s *Server) TokenStore() *auth.Store { return s.tokenStore }

// authorizedIndex checks, where InfluxQL resolves a database to a
// chronicle (the query's db= or a FROM "db".."m"), that the request's
// token may read it.
type authorizedIndex struct{ query.Source }

func (a authorizedIndex) Sync(ctx context.Context, chronicle string) (*tsdb.DB, error) {
	if err := auth.FromContext(ctx).Check(auth.ScopeRead, chronicle); err != nil {
		return nil, err
	}
	return a.Source.Sync(ctx, chronicle)
}

// authorizedCatalog lets only admin tokens create chronicles through
// InfluxQL's CREATE DATABASE, and lists only the chronicles the token may
// read in SHOW DATABASES.
type authorizedCatalog struct{ query.Catalog }

func (a authorizedCatalog) CreateChronicle(ctx context.Context, name string, r store.Retention) error {
	if err := auth.FromContext(ctx).Check(auth.ScopeAdmin, name); err != nil {
		return err
	}
	return a.Catalog.CreateChronicle(ctx, name, r)
}

func (a authorizedCatalog) ChronicleNames(ctx context.Context) ([]string, error) {
	names, err := a.Catalog.ChronicleNames(ctx)
	p := auth.FromContext(ctx)
	out := names[:0]
	for _, n := range names {
		if p.Can(auth.ScopeRead, n) {
			out = append(out, n)
		}
	}
	return out, err
}

// startTLS loads the listeners' certificate and starts reloading it on
// SIGHUP.
func (s *Server) startTLS() error {
	if !s.opts.TLS.Enabled() {
		// Operators send SIGHUP to reload; without TLS there is nothing
		// to reload, but its default action would end the server without
		// a shutdown, so it is taken here too.
		ctx, cancel := context.WithCancel(context.Background())
		s.tlsStop = cancel
		tlsconf.OnSIGHUP(ctx, func() { s.log.Info("SIGHUP: nothing to reload (no TLS certificate)") })
		return nil
	}
	c, err := tlsconf.New(s.opts.TLS, s.log)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.tlsConf = c
	ctx, cancel := context.WithCancel(context.Background())
	s.tlsStop = cancel
	c.ReloadOnSIGHUP(ctx)
	if s.opts.TLS.SelfSigned {
		s.log.Warn("TLS with a self-signed certificate (--tls-self-signed): clients cannot verify it; for tests only")
	}
	return nil
}

// tcpListener wraps the TCP listener of name (forward, graphite): the
// connection caps first, so a refused connection costs no handshake, then
// TLS when it is configured.
func (s *Server) tcpListener(name string) func(net.Listener) net.Listener {
	return func(ln net.Listener) net.Listener {
		return s.wrapTLS(connlimit.Wrap(ln, s.opts.ConnLimits, s.connMetrics, name))
	}
}

// httpListener wraps the listener of srv, an HTTP server named name (http,
// vivo): the connection caps first, answering a connection over a cap with
// a 503 rather than a bare close, then TLS when it is configured.
func (s *Server) httpListener(name string, ln net.Listener, srv *http.Server) net.Listener {
	return s.wrapTLS(connlimit.WrapHTTP(ln, s.opts.HTTPConnLimits, s.connMetrics, name, srv))
}

// wrapTLS serves ln over TLS when it is configured.
func (s *Server) wrapTLS(ln net.Listener) net.Listener {
	if s.tlsConf == nil {
		return ln
	}
	return s.tlsConf.Listener(ln)
}

// TLSCertificate is the certificate the listeners serve, or nil (tests
// trust it).
func (s *Server) TLSCertificate() *tls.Certificate {
	if s.tlsConf == nil {
		return nil
	}
	return s.tlsConf.Certificate()
}

// vivoGuard guards the Vivo exporter: its /logs, /metrics and /traces read
// the chronicles configured for them, which a token limited to other
// chronicles may not read.
func (s *Server) vivoGuard(v *vivo.Handler) func(http.Handler) http.Handler {
	return s.tokens.Guard(auth.Route{Chronicle: func(r *http.Request) string {
		return v.Chronicle(vivo.Signal(path.Base(r.URL.Path)))
	}})
}
