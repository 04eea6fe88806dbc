package server

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/query"
	"github.com/chronostream/chronostream/internal/query/tsdb"
	"github.com/chronostream/chronostream/internal/store"
)

// startTokens loads the scoped tokens from the log's KV bucket (shared by
// a cluster's nodes) into the guard, before any listener serves.
func (s *Server) startTokens(ctx context.Context) error {
	js, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("server: tokens: %w", err)
	}
	ts, err := auth.OpenStore(ctx, js, s.opts.Replicas, s.log)
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
