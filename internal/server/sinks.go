package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/chronostream/chronostream/internal/sink"
	"github.com/chronostream/chronostream/internal/store"
)

// startSinks runs the configured sinks (internal/sink): their state bucket
// lives next to the chronicles, replicated like them.
func (s *Server) startSinks(ctx context.Context) error {
	js, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("server: sinks: %w", err)
	}
	state, err := store.AwaitPlacement(ctx, s.log, "sink state", s.opts.Replicas, func(ctx context.Context) (*sink.State, error) {
		return sink.OpenState(ctx, js, s.opts.Replicas, false)
	})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	node := s.sinkNode()
	m, err := sink.NewManager(sink.ManagerConfig{
		State:    state,
		Source:   sink.LocalSource{Store: s.store},
		Metrics:  sink.NewMetrics(s.metrics.Registry),
		Logger:   s.log,
		Node:     node,
		LeaseTTL: s.opts.SinkLeaseTTL,
	}, s.opts.Sinks)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	m.Start(context.WithoutCancel(ctx))
	s.sinks = m
	return nil
}

// Sinks is the server's sink manager (for tests and embedding).
func (s *Server) Sinks() *sink.Manager { return s.sinks }

// sinkNode names this node in sink leases. It stays the same across
// restarts where it can, so that a node restarted after a crash takes its
// sinks' leases back at once instead of waiting for them to expire: a
// cluster node's name, or for a lone embedded server its host and data
// directory (which only it can hold). Against an external NATS several
// processes may share both, so each start is a new node.
func (s *Server) sinkNode() string {
	if s.opts.NodeID != "" {
		return s.opts.NodeID
	}
	host, _ := os.Hostname()
	switch {
	case s.ns != nil && s.ns.Clustered():
		return s.ns.Name()
	case s.ns != nil:
		if dir, err := filepath.Abs(s.opts.DataDir); err == nil {
			return host + ":" + dir
		}
	}
	return host + ":" + strconv.Itoa(os.Getpid()) + ":" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
}
