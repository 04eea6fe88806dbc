// Package natsd runs the NATS server with JetStream inside the chronostream
// process, so that the log needs nothing else installed.
package natsd

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
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

	// Cluster makes the embedded server one node of a JetStream cluster
	// formed by several chronostream processes; zero runs alone.
	Cluster Cluster
	// ClientListen, when set (host:port), also serves NATS clients (the
	// nats CLI, another process) on that address. Empty: in-process only.
	ClientListen string
}

// Cluster configures the embedded server as a JetStream cluster node.
type Cluster struct {
	// Name is the cluster's name, the same on every node. Setting it
	// (with Listen) turns clustering on.
	Name string
	// Listen is the host:port this node accepts routes from other nodes on.
	Listen string
	// Routes are the other nodes' cluster addresses (host:port or
	// nats-route://host:port); listing every node, this one included, on
	// every node is fine: a route to itself is ignored.
	Routes []string
	// Node is this node's name, unique in the cluster and stable across
	// restarts: JetStream identifies a replica by it.
	Node string
}

// Enabled reports whether the server runs as a cluster node.
func (c Cluster) Enabled() bool { return c.Name != "" }

func (c Cluster) validate() error {
	if !c.Enabled() {
		if c.Listen != "" || len(c.Routes) > 0 {
			return errors.New("natsd: a cluster listen address or routes need a cluster name")
		}
		return nil
	}
	if c.Listen == "" {
		return errors.New("natsd: a cluster needs a listen address for routes (host:port)")
	}
	if c.Node == "" {
		return errors.New("natsd: a cluster node needs a name")
	}
	if _, _, err := splitHostPort(c.Listen); err != nil {
		return fmt.Errorf("natsd: cluster listen address: %w", err)
	}
	return nil
}

// Server is a running embedded NATS server.
type Server struct {
	ns      *server.Server
	cluster Cluster
	// token guards the private client listener (see Start).
	token string
}

// Start starts the server and waits until it accepts connections.
func Start(o Options) (*Server, error) {
	if o.Dir == "" {
		return nil, errors.New("natsd: Options.Dir is required")
	}
	if o.MaxPayload == 0 {
		o.MaxPayload = 8 << 20
	}
	if err := o.Cluster.validate(); err != nil {
		return nil, err
	}
	name := "chronostream"
	if o.Cluster.Enabled() {
		name = o.Cluster.Node
	}
	opts := &server.Options{
		ServerName:         name,
		DontListen:         o.ClientListen == "", // in-process connections only
		JetStream:          true,
		StoreDir:           filepath.Join(o.Dir, "jetstream"),
		MaxPayload:         o.MaxPayload,
		SyncAlways:         !o.RelaxedSync,
		SyncInterval:       o.SyncInterval,
		NoSigs:             true,
		JetStreamMaxMemory: -1,
		JetStreamMaxStore:  -1,
	}
	var token string
	if o.ClientListen == "" && o.Cluster.Enabled() {
		// nats-server starts routing only once its client listener is up,
		// so a cluster node needs one: it listens on a random loopback port
		// that only this process knows the token of.
		opts.DontListen = false
		opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
		token = rand.Text()
		opts.Authorization = token
	}
	if o.ClientListen != "" {
		host, port, err := splitHostPort(o.ClientListen)
		if err != nil {
			return nil, fmt.Errorf("natsd: client listen address: %w", err)
		}
		opts.Host, opts.Port = host, randomIfZero(port)
	}
	if o.Cluster.Enabled() {
		host, port, _ := splitHostPort(o.Cluster.Listen)
		// PoolSize -1: one route connection per pair of nodes, not a pool
		// of them. With a pool, a new subscription's interest and a
		// JetStream request (which crosses to the system account) travel
		// on different connections, so the answer can reach a node before
		// the interest does and be dropped: a read's fresh consumer then
		// waits for messages that never come.
		opts.Cluster = server.ClusterOpts{Name: o.Cluster.Name, Host: host, Port: randomIfZero(port), PoolSize: -1}
		routes := make([]string, 0, len(o.Cluster.Routes))
		for _, r := range o.Cluster.Routes {
			if !strings.Contains(r, "://") {
				r = "nats-route://" + r
			}
			routes = append(routes, r)
		}
		opts.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		if len(opts.Routes) != len(routes) {
			return nil, fmt.Errorf("natsd: invalid route in %q", o.Cluster.Routes)
		}
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
		return nil, errors.New("natsd: the embedded NATS server did not start within 30s (is a listen address, such as the cluster's, in use?)")
	}
	return &Server{ns: ns, cluster: o.Cluster, token: token}, nil
}

// Clustered reports whether the server is a node of a JetStream cluster
// (other writers may then append to the same log).
func (s *Server) Clustered() bool { return s.cluster.Enabled() }

// Name is the server's name: the node's name when clustered.
func (s *Server) Name() string { return s.ns.Name() }

// ClientURL is the address NATS clients can connect to, or "" when the
// server accepts in-process connections only.
func (s *Server) ClientURL() string {
	if s.token != "" {
		return "" // the private listener of a cluster node
	}
	if addr := s.ns.Addr(); addr != nil {
		return "nats://" + addr.String()
	}
	return ""
}

// ClusterAddr is the address of the route listener ("" unless clustered):
// with port 0 it tells the port picked.
func (s *Server) ClusterAddr() string {
	if addr := s.ns.ClusterAddr(); addr != nil {
		return addr.String()
	}
	return ""
}

// WaitJetStream waits until JetStream can serve requests: at once when
// alone; clustered, once the nodes have elected a meta leader, which needs
// a majority of them up. It logs while waiting, so an operator starting a
// first node sees why it is not ready.
func (s *Server) WaitJetStream(ctx context.Context, log *slog.Logger) error {
	if !s.Clustered() {
		return nil
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	warned := time.Now()
	for !s.ns.JetStreamIsCurrent() || s.metaLeader() == "" {
		select {
		case <-ctx.Done():
			return fmt.Errorf("natsd: waiting for the JetStream cluster to elect a leader: %w", ctx.Err())
		case <-t.C:
		}
		if log != nil && time.Since(warned) > 5*time.Second {
			warned = time.Now()
			log.Warn("waiting for a majority of the cluster's nodes to elect a JetStream leader",
				"node", s.Name(), "routes", s.cluster.Routes, "connected_nodes", s.ns.NumRoutes())
		}
	}
	return nil
}

// Meta describes the JetStream cluster as this node sees it.
type Meta struct {
	Name   string
	Leader string
	// Peers are every known node, this one included.
	Peers []Peer
}

// Peer is one node of the cluster.
type Peer struct {
	Name    string
	Current bool // caught up with the leader
	Offline bool // not seen recently
	Active  time.Duration
	Lag     uint64
}

// Meta reports the JetStream cluster's members and leader; ok is false
// when the server is not clustered.
func (s *Server) Meta() (m Meta, ok bool) {
	if !s.Clustered() {
		return Meta{}, false
	}
	info, err := s.ns.Jsz(&server.JSzOptions{})
	if err != nil || info.Meta == nil {
		return Meta{Name: s.cluster.Name}, true
	}
	m = Meta{Name: info.Meta.Name, Leader: info.Meta.Leader}
	if info.Meta.Leader != "" {
		m.Peers = append(m.Peers, Peer{Name: info.Meta.Leader, Current: true})
	}
	for _, p := range info.Meta.Replicas {
		if p == nil || p.Name == info.Meta.Leader {
			continue
		}
		m.Peers = append(m.Peers, Peer{Name: p.Name, Current: p.Current, Offline: p.Offline, Active: p.Active, Lag: p.Lag})
	}
	// A follower's list leaves itself out (and only the leader tracks
	// whether the others are current).
	if !slices.ContainsFunc(m.Peers, func(p Peer) bool { return p.Name == s.Name() }) {
		m.Peers = append(m.Peers, Peer{Name: s.Name(), Current: s.ns.JetStreamIsCurrent()})
	}
	return m, true
}

func (s *Server) metaLeader() string {
	info, err := s.ns.Jsz(&server.JSzOptions{})
	if err != nil || info.Meta == nil {
		return ""
	}
	return info.Meta.Leader
}

// randomIfZero maps port 0 to nats-server's "pick a free port": to it, 0
// means the default port (4222) for clients and no listener for routes.
func randomIfZero(port int) int {
	if port == 0 {
		return server.RANDOM_PORT
	}
	return port
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("invalid port %q", p)
	}
	return host, port, nil
}

// Connect opens an in-process client connection.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.InProcessServer(s.ns), nats.Name("chronostream"), nats.MaxReconnects(-1)}, opts...)
	if s.token != "" {
		opts = append(opts, nats.Token(s.token))
	}
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

// MetaCollector exports the cluster's membership on /metrics, as this
// node sees it at scrape time.
func (s *Server) MetaCollector() prometheus.Collector {
	return &metaCollector{s: s,
		members: prometheus.NewDesc("chronostream_cluster_members",
			"Nodes of the JetStream cluster known to this node, by state (online, offline).", []string{"state"}, nil),
		up: prometheus.NewDesc("chronostream_cluster_member_up",
			"1 when the node is online, as this node sees it.", []string{"node"}, nil),
		leader: prometheus.NewDesc("chronostream_cluster_leader",
			"1 for the node leading the JetStream meta group (placing chronicles), as this node sees it.", []string{"node"}, nil),
	}
}

type metaCollector struct {
	s                   *Server
	members, up, leader *prometheus.Desc
}

func (c *metaCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.members
	ch <- c.up
	ch <- c.leader
}

func (c *metaCollector) Collect(ch chan<- prometheus.Metric) {
	m, ok := c.s.Meta()
	if !ok {
		return
	}
	var online, offline float64
	for _, p := range m.Peers {
		// Only the meta leader tracks whether the others are current, so
		// up says online, which every node knows.
		up := 0.0
		if p.Offline {
			offline++
		} else {
			online++
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, p.Name)
		isLeader := 0.0
		if p.Name == m.Leader {
			isLeader = 1
		}
		ch <- prometheus.MustNewConstMetric(c.leader, prometheus.GaugeValue, isLeader, p.Name)
	}
	ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, online, "online")
	ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, offline, "offline")
}
