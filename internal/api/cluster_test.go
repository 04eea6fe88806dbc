package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chronostream/chronostream/internal/natsd"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
)

// TestClusterStatusAlone: a server that is not clustered says so, with its
// chronicles at one replica and no members.
func TestClusterStatusAlone(t *testing.T) {
	e := newEnv(t, Config{Node: func() string { return "solo" }})
	e.putChronicle("logs", `{}`, http.StatusCreated)
	var st clusterJSON
	e.getJSON("/api/v1/cluster", http.StatusOK, &st)
	if st.Node != "solo" || st.Clustered || len(st.Members) != 0 {
		t.Fatalf("status %+v: want node solo, not clustered, no members", st)
	}
	if len(st.Chronicles) != 1 || st.Chronicles[0].Chronicle != "logs" || st.Chronicles[0].Replicas != 1 {
		t.Fatalf("chronicles %+v: want logs with 1 replica", st.Chronicles)
	}
	if len(st.Buckets) == 0 {
		t.Fatal("no buckets: the sources bucket is missing from the status")
	}
}

// TestPutChronicleReplicas: replicas below 1 are a 400; more replicas than
// nodes a 503 naming the count (nodes may come); neither creates anything.
func TestPutChronicleReplicas(t *testing.T) {
	e := newEnv(t, Config{})
	for _, tc := range []struct {
		body   string
		status int
		detail string
	}{
		{`{"replicas":0}`, http.StatusBadRequest, "replicas must be at least 1"},
		{`{"replicas":-2}`, http.StatusBadRequest, "replicas must be at least 1"},
		{`{"replicas":"3"}`, http.StatusBadRequest, "replicas"},
		{`{"replicas":3}`, http.StatusServiceUnavailable, "3 replicas need 3 nodes"},
	} {
		detail := e.putChronicle("r", tc.body, tc.status)
		if !strings.Contains(detail, tc.detail) {
			t.Errorf("PUT %s: detail %q does not say %q", tc.body, detail, tc.detail)
		}
	}
	e.getJSON("/api/v1/chronicles/r", http.StatusNotFound, nil)
	e.putChronicle("r", `{"replicas":1}`, http.StatusCreated)
}

// putChronicle PUTs body to the chronicle, requires status and returns
// the body (a problem's detail is in it).
func (e *env) putChronicle(name, body string, status int) string {
	e.t.Helper()
	resp := e.do("PUT", "/api/v1/chronicles/"+name, strings.NewReader(body))
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		e.t.Fatalf("PUT %s %s: status %d, want %d: %s", name, body, resp.StatusCode, status, b)
	}
	return string(b)
}

// TestClusterStatusThreeNodes: three embedded NATS servers in this process
// form a JetStream cluster; a store on one creates an R3 chronicle, and
// the API tells the three members, the meta leader, and the chronicle's
// leader and three current copies; a PUT moves the chronicle to R1.
func TestClusterStatusThreeNodes(t *testing.T) {
	routes := make([]string, 3)
	for i := range routes {
		routes[i] = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	}
	var nodes []*natsd.Server
	for i := range routes {
		ns, err := natsd.Start(natsd.Options{Dir: t.TempDir(), Cluster: natsd.Cluster{
			Name: "t", Listen: routes[i], Routes: routes, Node: fmt.Sprintf("n%d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ns.Shutdown)
		nodes = append(nodes, ns)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, ns := range nodes {
		if err := ns.WaitJetStream(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	nc, err := nodes[0].Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	s, err := store.Open(ctx, store.Options{Conn: nc, Replicas: 3, AutoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.CreateChronicle(ctx, "c", store.Retention{}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	New(Config{Store: s, Node: nodes[0].Name, Meta: nodes[0].Meta}).Register(mux, func(h http.Handler) http.Handler { return h })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e := &env{t: t, store: s, srv: srv}

	var st clusterJSON
	testutil.Eventually(t, time.Minute, func() bool {
		st = clusterJSON{}
		e.getJSON("/api/v1/cluster", http.StatusOK, &st)
		if len(st.Chronicles) != 1 || len(st.Chronicles[0].Peers) != 3 {
			return false
		}
		for _, p := range st.Chronicles[0].Peers {
			if !p.Current || p.Offline {
				return false
			}
		}
		return st.Leader != "" && len(st.Members) == 3
	}, "the status never showed 3 members and 3 current copies of c")
	ch := st.Chronicles[0]
	if st.Node != "n0" || !st.Clustered || st.Cluster != "t" || ch.Chronicle != "c" || ch.Replicas != 3 || ch.Leader == "" {
		t.Fatalf("status %+v", st)
	}
	self := 0
	for _, m := range st.Members {
		if m.Self {
			self++
			if m.Name != "n0" {
				t.Errorf("member %s says self", m.Name)
			}
		}
	}
	if self != 1 {
		t.Errorf("%d members say self, want 1", self)
	}
	for _, b := range st.Buckets {
		if b.Replicas != 3 {
			t.Errorf("bucket %s has %d replicas, want 3 (as the store's)", b.Stream, b.Replicas)
		}
	}

	// The same on /metrics: three members online, three current copies
	// of the R3 chronicle, one of them its leader.
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.ReplicationCollector(), nodes[0].MetaCollector())
	for name, want := range map[string]float64{
		"chronostream_chronicle_replicas":        3,
		"chronostream_chronicle_replica_current": 3,
		"chronostream_chronicle_leader":          1,
		"chronostream_cluster_member_up":         3,
		"chronostream_cluster_leader":            1,
	} {
		if got := gaugeSum(t, reg, name); got != want {
			t.Errorf("%s sums to %v, want %v", name, got, want)
		}
	}

	e.putChronicle("c", `{"replicas":1}`, http.StatusOK)
	info, err := s.Chronicle(ctx, "c")
	if err != nil || info.Replicas != 1 {
		t.Fatalf("after PUT replicas 1: %+v, %v", info, err)
	}
	// A retention change leaves the count alone.
	e.putChronicle("c", `{"retention":{"max_events":10}}`, http.StatusOK)
	if info, _ := s.Chronicle(ctx, "c"); info.Replicas != 1 {
		t.Fatalf("a retention change moved the chronicle to %d replicas", info.Replicas)
	}
}

// gaugeSum is the sum of every series of a gauge in reg.
func gaugeSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}
