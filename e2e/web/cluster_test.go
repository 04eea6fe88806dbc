package web

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/natsd"
	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
)

// clusterStatus is what the overview's cluster section reads from GET
// /api/v1/cluster (the fields it shows).
type clusterStatus struct {
	Node      string `json:"node"`
	Clustered bool   `json:"clustered"`
	Leader    string `json:"leader"`
	Members   []struct {
		Name    string `json:"name"`
		Leader  bool   `json:"leader"`
		Offline bool   `json:"offline"`
		Self    bool   `json:"self"`
	} `json:"members"`
	Chronicles []struct {
		Chronicle string `json:"chronicle"`
		Replicas  int    `json:"replicas"`
		Leader    string `json:"leader"`
		Peers     []struct {
			Node    string `json:"node"`
			Current bool   `json:"current"`
			Offline bool   `json:"offline"`
		} `json:"peers"`
	} `json:"chronicles"`
}

// startCluster starts three chronostream servers in this process whose
// embedded NATS servers form one JetStream cluster, with the chronicle
// "orders" at three replicas. The nodes start together (JetStream needs a
// quorum before any of them can finish starting) and in the background,
// while the caller prepares the rest: wait, called from the test's
// goroutine, waits until node n0's API tells three members up and three
// current copies of orders. It returns the nodes' base URLs (n0, n1, n2;
// without the URL prefix /cs, which the nodes serve under as TestWebUI's
// server does), that status, and a function that stops one node (for an
// outage; the cleanup stops the others).
func startCluster(t *testing.T) (wait func() ([]string, clusterStatus, func(i int))) {
	t.Helper()
	routes := make([]string, 3)
	for i := range routes {
		routes[i] = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	}
	servers := make([]*server.Server, len(routes))
	errs := make([]error, len(routes))
	var wg sync.WaitGroup
	for i := range routes {
		s, err := server.New(server.Options{HTTPAddr: "127.0.0.1:0", URLPrefix: "/cs", DataDir: t.TempDir(), Replicas: 3,
			Chronicles: map[string]store.Retention{"orders": {}},
			Logger:     testutil.Logger(t, slog.LevelWarn),
			Cluster:    natsd.Cluster{Name: "web", Listen: routes[i], Routes: routes, Node: fmt.Sprintf("n%d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		servers[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			errs[i] = s.Start(ctx)
		}()
	}
	stops := make([]sync.Once, len(servers))
	stop := func(i int) {
		wg.Wait()
		stops[i].Do(func() {
			if errs[i] != nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := servers[i].Shutdown(ctx); err != nil {
				t.Errorf("shutdown n%d: %v", i, err)
			}
		})
	}
	t.Cleanup(func() {
		for i := range servers {
			stop(i)
		}
	})
	return func() ([]string, clusterStatus, func(i int)) {
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("start n%d: %v", i, err)
			}
		}
		var bases []string
		for _, s := range servers {
			bases = append(bases, "http://"+s.Addr())
		}
		base := bases[0]
		var st clusterStatus
		testutil.Eventually(t, time.Minute, func() bool {
			st = clusterStatus{}
			resp, err := http.Get(base + "/cs/api/v1/cluster")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
				return false
			}
			if len(st.Members) != 3 || st.Leader == "" || len(st.Chronicles) != 1 || len(st.Chronicles[0].Peers) != 3 || st.Chronicles[0].Leader == "" {
				return false
			}
			for _, m := range st.Members {
				if m.Offline {
					return false
				}
			}
			for _, p := range st.Chronicles[0].Peers {
				if !p.Current || p.Offline {
					return false
				}
			}
			return true
		}, "the cluster never showed 3 members up and 3 current copies of orders")
		return bases, st, stop
	}
}

// checkClusterStatus checks, on the Go side, the data the overview's
// cluster section reads: three members with one meta leader and n0 as
// "self", and the R3 chronicle with its leader among its peers (TestWebUI
// then checks that the section shows it).
func checkClusterStatus(t *testing.T, st clusterStatus) {
	t.Helper()
	if !st.Clustered || st.Node != "n0" {
		t.Fatalf("status %+v: want clustered, node n0", st)
	}
	leaders, self := 0, ""
	for _, m := range st.Members {
		if m.Leader {
			leaders++
			if m.Name != st.Leader {
				t.Errorf("member %s is marked leader, the meta leader is %s", m.Name, st.Leader)
			}
		}
		if m.Self {
			self += m.Name
		}
	}
	if leaders != 1 || self != "n0" {
		t.Errorf("%d members marked leader (want 1), self %q (want n0)", leaders, self)
	}
	c := st.Chronicles[0]
	if c.Chronicle != "orders" || c.Replicas != 3 {
		t.Errorf("chronicle %+v: want orders at 3 replicas", c)
	}
	found := false
	for _, p := range c.Peers {
		found = found || p.Node == c.Leader
	}
	if !found {
		t.Errorf("the leader %s of orders is not among its peers %+v", c.Leader, c.Peers)
	}
}
