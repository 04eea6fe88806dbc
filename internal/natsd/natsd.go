// Package natsd runs the NATS server with JetStream inside the chronostream
// process, so that the log needs nothing else installed.
package natsd

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Options configure the embedded server.
type Options struct {
	// Dir holds JetStream's data.
	Dir string
	// RelaxedSync lets JetStream acknowledge before fsync (it then syncs
	// every SyncInterval, default 2 minutes): an OS crash or power cut can
	// lose acknowledged events. Off by default: every block is fsynced
	// before it is acknowledged.
	RelaxedSync  bool
	SyncInterval time.Duration
	// MaxPayload bounds one NATS message (one block). Default 8 MiB.
	MaxPayload int32
	Logger     *slog.Logger
}

// Server is a running embedded NATS server.
type Server struct {
	ns *server.Server
}

// Start starts the server and waits until it accepts connections.
func Start(o Options) (*Server, error) {
	if o.Dir == "" {
		return nil, errors.New("natsd: Options.Dir is required")
	}
	if o.MaxPayload == 0 {
		o.MaxPayload = 8 << 20
	}
	opts := &server.Options{
		ServerName:         "chronostream",
		DontListen:         true, // in-process connections only
		JetStream:          true,
		StoreDir:           filepath.Join(o.Dir, "jetstream"),
		MaxPayload:         o.MaxPayload,
		SyncAlways:         !o.RelaxedSync,
		SyncInterval:       o.SyncInterval,
		NoSigs:             true,
		JetStreamMaxMemory: -1,
		JetStreamMaxStore:  -1,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsd: %w", err)
	}
	if o.Logger != nil {
		ns.SetLoggerV2(&logAdapter{o.Logger}, false, false, false)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("natsd: the embedded NATS server did not start within 30s")
	}
	return &Server{ns: ns}, nil
}

// Connect opens an in-process client connection.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.InProcessServer(s.ns), nats.Name("chronostream"), nats.MaxReconnects(-1)}, opts...)
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("natsd: %w", err)
	}
	return nc, nil
}

// Shutdown stops the server; JetStream flushes its files.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

type logAdapter struct{ l *slog.Logger }

func (a *logAdapter) Noticef(format string, v ...any) {
	a.l.Debug(fmt.Sprintf(format, v...), "component", "nats")
}
func (a *logAdapter) Warnf(format string, v ...any) {
	a.l.Warn(fmt.Sprintf(format, v...), "component", "nats")
}
func (a *logAdapter) Fatalf(format string, v ...any) {
	a.l.Error(fmt.Sprintf(format, v...), "component", "nats")
}
func (a *logAdapter) Errorf(format string, v ...any) {
	a.l.Error(fmt.Sprintf(format, v...), "component", "nats")
}
func (a *logAdapter) Debugf(format string, v ...any) {}
func (a *logAdapter) Tracef(format string, v ...any) {}
