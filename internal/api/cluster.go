package api

import (
	"net/http"
	"slices"
	"strings"

	"github.com/chronostream/chronostream/internal/natsd"
	"github.com/chronostream/chronostream/internal/store"
)

// clusterJSON is GET /api/v1/cluster: who this node is, the cluster's
// members, and where each chronicle's replicas stand.
type clusterJSON struct {
	// Node is this node's name: the embedded server's, or with --nats the
	// NATS server this node is connected to.
	Node      string `json:"node"`
	Clustered bool   `json:"clustered"`
	Cluster   string `json:"cluster,omitempty"`
	// Leader leads the JetStream meta group (placement of chronicles);
	// known on embedded cluster nodes only.
	Leader     string              `json:"leader,omitempty"`
	Members    []memberJSON        `json:"members"`
	Chronicles []store.Replication `json:"chronicles"`
	// Buckets are the server's own replicated state (sources, sink
	// cursors and leases).
	Buckets []store.Replication `json:"buckets"`
}

type memberJSON struct {
	Name    string `json:"name"`
	Leader  bool   `json:"leader"`
	Current bool   `json:"current"`
	Offline bool   `json:"offline"`
	Lag     uint64 `json:"lag"`
	Self    bool   `json:"self"`
}

func (a *API) getCluster(w http.ResponseWriter, r *http.Request) {
	reps, err := a.cfg.Store.Replication(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := clusterJSON{Chronicles: []store.Replication{}, Buckets: []store.Replication{}, Members: []memberJSON{}}
	if a.cfg.Node != nil {
		out.Node = a.cfg.Node()
	}
	for _, rep := range reps {
		if rep.Chronicle != "" {
			out.Chronicles = append(out.Chronicles, rep)
		} else {
			out.Buckets = append(out.Buckets, rep)
		}
	}
	var meta natsd.Meta
	var ok bool
	if a.cfg.Meta != nil {
		meta, ok = a.cfg.Meta()
	}
	if ok {
		out.Clustered, out.Cluster, out.Leader = true, meta.Name, meta.Leader
		for _, p := range meta.Peers {
			out.Members = append(out.Members, memberJSON{Name: p.Name, Leader: p.Name == meta.Leader,
				Current: p.Current, Offline: p.Offline, Lag: p.Lag})
		}
	} else {
		// An external NATS deployment: the members are the nodes that
		// hold replicas, as its streams report them.
		seen := map[string]int{}
		for _, rep := range reps {
			for _, p := range rep.Peers {
				out.Clustered = true
				i, known := seen[p.Node]
				if !known {
					i = len(out.Members)
					seen[p.Node] = i
					out.Members = append(out.Members, memberJSON{Name: p.Node, Current: true})
				}
				m := &out.Members[i]
				m.Current = m.Current && p.Current
				m.Offline = m.Offline || p.Offline
				m.Lag = max(m.Lag, p.Lag)
			}
		}
	}
	for i := range out.Members {
		out.Members[i].Self = out.Members[i].Name == out.Node
	}
	slices.SortFunc(out.Members, func(a, b memberJSON) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, out)
}
