package server

import (
	"context"
	"net/http"

	"github.com/chronostream/chronostream/internal/query"
	"github.com/chronostream/chronostream/internal/query/tsdb"
	"github.com/chronostream/chronostream/internal/store"
)

// startQueryIndex builds the InfluxQL engine's index from the log and
// follows it; /query waits for it to catch up with what the log holds.
func (s *Server) startQueryIndex(ctx context.Context) {
	s.queryIndex = tsdb.New(tsdb.Options{Log: s.store, Logger: s.log, Registerer: s.metrics.Registry})
	s.queryIndex.Start(ctx)
}

// queryHandler serves InfluxDB 1.x's /query over the index.
func (s *Server) queryHandler() http.Handler {
	// The wrappers check the request's token where a database becomes a
	// chronicle (security.go).
	e := &query.Engine{Index: authorizedIndex{s.queryIndex}, Catalog: authorizedCatalog{catalog{s.store}}, Retention: s.opts.Retention}
	return query.NewHandler(e, s.log, s.metrics.Registry)
}

// catalog gives the engine the log's chronicles.
type catalog struct{ *store.Store }

func (c catalog) CreateChronicle(ctx context.Context, name string, r store.Retention) error {
	return c.Store.CreateChronicle(ctx, name, r)
}

func (s *Server) closeQueryIndex() {
	if s.queryIndex != nil {
		s.queryIndex.Close()
	}
}
