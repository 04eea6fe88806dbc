package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chronostream/chronostream/event"
)

// Replication is how one of the log's JetStream streams is replicated: a
// chronicle, or a bucket the server keeps (sources, sink cursors and leases).
type Replication struct {
	// Chronicle is the chronicle's name; empty for a bucket.
	Chronicle string `json:"chronicle,omitempty"`
	// Stream is JetStream's name of the stream.
	Stream   string `json:"stream"`
	Replicas int    `json:"replicas"`
	// Leader is the node that orders writes ("" while electing, or when
	// the NATS server is not clustered).
	Leader string         `json:"leader"`
	Peers  []ReplicaState `json:"peers"`
}

// ReplicaState is one node's copy of a stream.
type ReplicaState struct {
	Node    string `json:"node"`
	Leader  bool   `json:"leader"`
	Current bool   `json:"current"` // caught up with the leader
	Offline bool   `json:"offline"` // not seen by the leader recently
	// Lag is how many operations the copy is behind the leader.
	Lag uint64 `json:"lag"`
	// Active is how long ago the leader last heard from the node.
	Active time.Duration `json:"active_ns"`
}

// Replication describes the replication of every stream of the log,
// chronicles first, each group sorted by name.
func (s *Store) Replication(ctx context.Context) ([]Replication, error) {
	var out []Replication
	lister := s.js.ListStreams(ctx)
	for info := range lister.Info() {
		out = append(out, replicationOf(info))
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("store: list streams: %w", err)
	}
	slices.SortFunc(out, func(a, b Replication) int {
		if (a.Chronicle == "") != (b.Chronicle == "") {
			if a.Chronicle != "" {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Stream, b.Stream)
	})
	return out, nil
}

func replicationOf(info *jetstream.StreamInfo) Replication {
	r := Replication{Stream: info.Config.Name, Replicas: info.Config.Replicas}
	if name, ok := strings.CutPrefix(info.Config.Name, streamPrefix); ok {
		if c, err := event.DecodeName(name); err == nil {
			r.Chronicle = c
		}
	}
	if info.Cluster == nil {
		return r
	}
	r.Leader = info.Cluster.Leader
	if r.Leader != "" {
		r.Peers = append(r.Peers, ReplicaState{Node: r.Leader, Leader: true, Current: true})
	}
	for _, p := range info.Cluster.Replicas {
		if p == nil || p.Name == r.Leader {
			continue
		}
		r.Peers = append(r.Peers, ReplicaState{Node: p.Name, Current: p.Current, Offline: p.Offline, Lag: p.Lag, Active: p.Active})
	}
	return r
}

// replicationCollector exports Replication on /metrics, read at scrape time
// so the figures are never older than the scrape.
type replicationCollector struct {
	s                            *Store
	replicas, leader, lag, state *prometheus.Desc
}

// ReplicationCollector returns a Prometheus collector of the chronicles'
// replication: configured replicas, leader, and each copy's lag and state.
func (s *Store) ReplicationCollector() prometheus.Collector {
	labels := []string{"chronicle", "node"}
	return &replicationCollector{
		s: s,
		replicas: prometheus.NewDesc("chronostream_chronicle_replicas",
			"Replicas the chronicle is configured with.", []string{"chronicle"}, nil),
		leader: prometheus.NewDesc("chronostream_chronicle_leader",
			"1 for the node leading the chronicle's replicas (ordering its writes).", labels, nil),
		lag: prometheus.NewDesc("chronostream_chronicle_replica_lag",
			"Operations a node's copy of the chronicle is behind its leader.", labels, nil),
		state: prometheus.NewDesc("chronostream_chronicle_replica_current",
			"1 when a node's copy of the chronicle is caught up with its leader, 0 when behind or offline.", labels, nil),
	}
}

func (c *replicationCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.replicas
	ch <- c.leader
	ch <- c.lag
	ch <- c.state
}

func (c *replicationCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reps, err := c.s.Replication(ctx)
	if err != nil {
		c.s.log.Debug("store: replication metrics unavailable", "err", err)
		return
	}
	for _, r := range reps {
		if r.Chronicle == "" {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.replicas, prometheus.GaugeValue, float64(r.Replicas), r.Chronicle)
		for _, p := range r.Peers {
			ch <- prometheus.MustNewConstMetric(c.leader, prometheus.GaugeValue, boolGauge(p.Leader), r.Chronicle, p.Node)
			ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(p.Lag), r.Chronicle, p.Node)
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, boolGauge(p.Current && !p.Offline), r.Chronicle, p.Node)
		}
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Exclusive reports whether this process is the log's only writer (see
// Options.Exclusive): what it remembers of the log then stays true.
func (s *Store) Exclusive() bool { return s.opts.Exclusive }

// StoryHead is the stream sequence of a story's newest block (0 when it
// has none), as the chronicle's leader knows it: a direct get, which any
// copy may answer, could come from a copy that has not yet received the
// newest block another node appended.
func (s *Store) StoryHead(ctx context.Context, chronicle, story string) (uint64, error) {
	seq, _, _, err := s.leaderLast(ctx, streamName(chronicle), storySubject(chronicle, story))
	if err != nil {
		return 0, fmt.Errorf("store: last block of %s/%s: %w", chronicle, story, err)
	}
	return seq, nil
}

// leaderLast returns the newest message of subject in stream as the
// stream's leader has it (JetStream's MSG.GET, not a direct get); found is
// false when there is none, or no such stream.
func (s *Store) leaderLast(ctx context.Context, stream, subject string) (seq uint64, data []byte, found bool, err error) {
	req, _ := json.Marshal(struct {
		LastBySubject string `json:"last_by_subj"`
	}{subject})
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	m, err := s.opts.Conn.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, req)
	if err != nil {
		return 0, nil, false, err
	}
	var resp struct {
		Message *struct {
			Seq  uint64 `json:"seq"`
			Data []byte `json:"data"`
		} `json:"message"`
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return 0, nil, false, err
	}
	switch {
	case resp.Error != nil && resp.Error.Code == 404:
		return 0, nil, false, nil
	case resp.Error != nil:
		return 0, nil, false, errors.New(resp.Error.Description)
	case resp.Message == nil:
		return 0, nil, false, errors.New("an empty answer")
	}
	return resp.Message.Seq, resp.Message.Data, true, nil
}
