package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	csclient "github.com/chronostream/chronostream/client"
	"github.com/chronostream/chronostream/internal/testutil"
)

// clusterWait bounds waits on the cluster (forming, electing, catching up):
// JetStream's elections take a few seconds, more on a loaded machine. It
// guards against hangs; it is not an assertion about speed.
const clusterWait = 90 * time.Second

// clusterNode is one chronostream process of a test cluster: its name,
// data directory and ports stay the same across restarts.
type clusterNode struct {
	name      string
	data      string
	httpAddr  string
	routeAddr string
	proc      *testutil.Proc
}

func (n *clusterNode) url() string { return "http://" + n.httpAddr }

// testCluster is three (or more) chronostream nodes forming one JetStream
// cluster with their embedded NATS servers, on loopback.
type testCluster struct {
	t     *testing.T
	bin   string
	name  string
	nodes []*clusterNode
	args  []string // more serve arguments, the same on every node
}

// startCluster starts n nodes at once (a node is ready only once a
// majority is up) and waits until every one is ready. args are added to
// every node's serve arguments.
func startCluster(t *testing.T, n int, args ...string) *testCluster {
	t.Helper()
	c := &testCluster{t: t, bin: testutil.BuildBinary(t), name: "e2e", args: args}
	for i := range n {
		c.nodes = append(c.nodes, &clusterNode{
			name:      fmt.Sprintf("node-%c", 'a'+i),
			data:      filepath.Join(t.TempDir(), "data"),
			httpAddr:  fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)),
			routeAddr: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)),
		})
	}
	for _, nd := range c.nodes {
		c.start(nd)
	}
	for _, nd := range c.nodes {
		c.waitReady(nd)
	}
	return c
}

// start starts a node (again) on its data directory and ports, without
// waiting for it.
func (c *testCluster) start(n *clusterNode) {
	c.t.Helper()
	routes := make([]string, len(c.nodes))
	for i, nd := range c.nodes {
		routes[i] = nd.routeAddr
	}
	n.proc = testutil.StartProc(c.t, c.bin, testutil.ProcOptions{NoWaitReady: true, Args: append([]string{"serve",
		"--data", n.data, "--http", n.httpAddr,
		"--cluster-name", c.name, "--cluster-listen", n.routeAddr, "--routes", strings.Join(routes, ","),
		"--node", n.name, "--replicas", "3"}, c.args...)})
}

// waitReady waits until the node answers /ready, failing the test if it
// exits first.
func (c *testCluster) waitReady(n *clusterNode) {
	c.t.Helper()
	testutil.Eventually(c.t, clusterWait, func() bool {
		if n.proc.Exited() {
			return true
		}
		resp, err := client200(n.url() + "/ready")
		return err == nil && resp
	}, n.name+" never became ready")
	if n.proc.Exited() {
		c.t.Fatalf("%s exited before it was ready; stderr:\n%s", n.name, n.proc.Stderr())
	}
}

func (c *testCluster) node(name string) *clusterNode {
	c.t.Helper()
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	c.t.Fatalf("no node %q in the cluster", name)
	return nil
}

func client200(u string) (bool, error) {
	resp, err := client.Get(u)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// clusterStatus is the part of GET /api/v1/cluster the tests read.
type clusterStatus struct {
	Node      string `json:"node"`
	Clustered bool   `json:"clustered"`
	Leader    string `json:"leader"`
	Members   []struct {
		Name    string `json:"name"`
		Offline bool   `json:"offline"`
	} `json:"members"`
	Chronicles []struct {
		Chronicle string `json:"chronicle"`
		Replicas  int    `json:"replicas"`
		Leader    string `json:"leader"`
		Peers     []struct {
			Node    string `json:"node"`
			Leader  bool   `json:"leader"`
			Current bool   `json:"current"`
			Offline bool   `json:"offline"`
			Lag     uint64 `json:"lag"`
		} `json:"peers"`
	} `json:"chronicles"`
}

// status reads a node's cluster status; ok is false while it cannot answer.
func status(base string) (st clusterStatus, ok bool) {
	resp, err := client.Get(base + "/api/v1/cluster")
	if err != nil {
		return st, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, false
	}
	return st, json.NewDecoder(resp.Body).Decode(&st) == nil
}

// leaderOf waits until some node names the chronicle's leader and returns it.
func (c *testCluster) leaderOf(chronicle string) string {
	c.t.Helper()
	var leader string
	testutil.Eventually(c.t, clusterWait, func() bool {
		for _, n := range c.nodes {
			st, ok := status(n.url())
			if !ok {
				continue
			}
			for _, ch := range st.Chronicles {
				if ch.Chronicle == chronicle && ch.Leader != "" {
					leader = ch.Leader
					return true
				}
			}
		}
		return false
	}, "no node names the leader of chronicle "+chronicle)
	return leader
}

// waitReplicasCurrent waits until every node's copy of the chronicle is
// online and caught up with the leader, as the node at base reports it.
func (c *testCluster) waitReplicasCurrent(base, chronicle string) {
	c.t.Helper()
	testutil.Eventually(c.t, clusterWait, func() bool {
		st, ok := status(base)
		if !ok {
			return false
		}
		for _, ch := range st.Chronicles {
			if ch.Chronicle != chronicle {
				continue
			}
			if len(ch.Peers) != len(c.nodes) {
				return false
			}
			for _, p := range ch.Peers {
				if !p.Current || p.Offline || p.Lag != 0 {
					return false
				}
			}
			return true
		}
		return false
	}, "the replicas of chronicle "+chronicle+" never caught up")
}

// putChronicle creates a chronicle with replicas, retrying while the
// cluster cannot place them yet (503).
func (c *testCluster) putChronicle(base, chronicle string, replicas int) {
	c.t.Helper()
	body := fmt.Sprintf(`{"replicas":%d}`, replicas)
	testutil.Eventually(c.t, clusterWait, func() bool {
		req, _ := http.NewRequest(http.MethodPut, base+"/api/v1/chronicles/"+chronicle, strings.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			c.t.Fatalf("PUT chronicle %s: %s", chronicle, resp.Status)
		}
		return resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK
	}, "chronicle "+chronicle+" could not be created")
}

// streamSender sends numbered events through the Go client, configured
// with every node's URL, until stopped.
type streamSender struct {
	c    *csclient.Client
	sent atomic.Int64
	stop chan struct{}
	done chan error
}

func startStreamSender(t *testing.T, urls []string, chronicle, story string) *streamSender {
	t.Helper()
	c, err := csclient.New(urls[0], csclient.Failover(urls[1:]...), csclient.Chronicle(chronicle), csclient.Story(story),
		csclient.Stream("e2e-cluster-"+story, 0), csclient.Backoff(50*time.Millisecond, time.Second),
		csclient.AckTimeout(10*time.Second), csclient.Batch(50, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	s := &streamSender{c: c, stop: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-s.stop:
				s.done <- nil
				return
			case <-tick.C:
			}
			if err := c.Send(context.Background(), fmt.Appendf(nil, `{"i":%d}`, i)); err != nil {
				s.done <- fmt.Errorf("send %d: %w", i, err)
				return
			}
			s.sent.Add(1)
		}
	}()
	return s
}

// finish stops sending and waits until the server acknowledged every event.
func (s *streamSender) finish(t *testing.T) int {
	t.Helper()
	close(s.stop)
	if err := <-s.done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	defer cancel()
	if err := s.c.Close(ctx); err != nil {
		t.Fatalf("client close: %v (stats %+v)", err, s.c.Stats())
	}
	st := s.c.Stats()
	t.Logf("Go client: %d events sent and acknowledged, %d resent, %d reconnects", st.Acked, st.Resent, st.Reconnects)
	return int(s.sent.Load())
}

// verifyStream checks that the story holds the client's events 0..n-1,
// each exactly once and in order.
func verifyStream(t *testing.T, base, chronicle, story string, n int) {
	t.Helper()
	evs := readStory(t, base, chronicle, story)
	for i, e := range evs {
		var b struct{ I int }
		if err := json.Unmarshal(e.Body, &b); err != nil {
			t.Fatalf("%s: %s/%s: event %d: %v", base, chronicle, story, i, err)
		}
		if b.I != i {
			t.Fatalf("%s: %s/%s: event %d is the client's event %d, want %d (a duplicate or a loss)", base, chronicle, story, i, b.I, i)
		}
	}
	if len(evs) != n {
		t.Fatalf("%s: %s/%s holds %d events, want the %d the client sent", base, chronicle, story, len(evs), n)
	}
}

// TestClusterKill9: three nodes, one R3 chronicle, ingest through all of
// them (NDJSON to each node, the Go client with every URL, starting on the
// first victim). Run 1 kills -9 the chronicle's leader, run 2 a follower;
// each time the survivors go on acknowledging and the killed node restarts
// on its data. Then every acknowledged event is present exactly once and in
// order on every node, and a tail on one node sees a write on another.
func TestClusterKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("three nodes and two kills; skipped with -short")
	}
	c := startCluster(t, 3)
	const chronicle = "cluster"
	c.putChronicle(c.nodes[0].url(), chronicle, 3)

	leader := c.node(c.leaderOf(chronicle))
	in := c.startIngest(chronicle, leader)
	c.kill9AndRestart(in, leader)
	c.waitReplicasCurrent(leader.url(), chronicle)

	// Run 2: a follower, preferably not the node killed in run 1.
	now := c.leaderOf(chronicle)
	var follower *clusterNode
	for _, n := range c.nodes {
		if n.name != now && (follower == nil || n != leader) {
			follower = n
		}
	}
	c.kill9AndRestart(in, follower)
	in.finishAndVerify(t)
	checkTailAcross(t, c.nodes[0], c.nodes[2], chronicle)
}

// kill9AndRestart kills the node, waits until the survivors acknowledge
// more, and restarts it on its data.
func (c *testCluster) kill9AndRestart(in *clusterIngest, n *clusterNode) {
	c.t.Helper()
	leads := c.leaderOf(in.chronicle) == n.name
	before := in.loads[n.name].acked.Load()
	n.proc.Kill9()
	in.loads[n.name].setDown()
	c.t.Logf("killed %s (leader of %s: %v) after %d acknowledged events on it", n.name, in.chronicle, leads, before)
	in.waitSurvivors(c.t, n.name)
	if leads {
		if now := c.leaderOf(in.chronicle); now == n.name {
			c.t.Fatalf("%s still leads %s after it was killed", n.name, in.chronicle)
		}
	}
	c.start(n)
	c.waitReady(n)
	in.back(c.t, n)
}

// TestClusterRollingRestart restarts the three nodes one at a time
// (SIGTERM, then start on the same data) under steady ingest through all
// of them: nothing acknowledged is lost, and the Go client follows.
func TestClusterRollingRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("three nodes restarted in turn; skipped with -short")
	}
	c := startCluster(t, 3)
	const chronicle = "rolling"
	c.putChronicle(c.nodes[0].url(), chronicle, 3)
	in := c.startIngest(chronicle, c.nodes[0])
	for _, n := range c.nodes {
		t0 := time.Now()
		in.loads[n.name].setDown()
		if code := n.proc.Stop(); code != 0 {
			t.Errorf("%s exited with %d after SIGTERM, want 0", n.name, code)
		}
		t1 := time.Now()
		in.waitSurvivors(t, n.name)
		t2 := time.Now()
		c.start(n)
		c.waitReady(n)
		t3 := time.Now()
		in.back(t, n)
		// The next node goes only once this one has caught up, so a
		// majority of current copies remains.
		c.waitReplicasCurrent(n.url(), chronicle)
		t.Logf("restarted %s: stop %v, survivors %v, start %v, caught up %v", n.name,
			t1.Sub(t0).Round(time.Millisecond), t2.Sub(t1).Round(time.Millisecond),
			t3.Sub(t2).Round(time.Millisecond), time.Since(t3).Round(time.Millisecond))
	}
	in.finishAndVerify(t)
}

// clusterIngest is steady ingest through every node of a cluster: NDJSON
// writers to each node (one story per node) and the Go client with
// every node's URL.
type clusterIngest struct {
	c         *testCluster
	chronicle string
	loads     map[string]*load // by node name
	sender    *streamSender
}

// startIngest starts the writers and the Go client (on first, then the
// others in order), and waits until each has an acknowledgement.
func (c *testCluster) startIngest(chronicle string, first *clusterNode) *clusterIngest {
	c.t.Helper()
	in := &clusterIngest{c: c, chronicle: chronicle, loads: map[string]*load{}}
	for _, n := range c.nodes {
		l := startLoadStories(chronicle, n.name, 1, 10*time.Millisecond)
		l.setBase(n.url())
		in.loads[n.name] = l
	}
	urls := []string{first.url()}
	for _, n := range c.nodes {
		if n != first {
			urls = append(urls, n.url())
		}
	}
	in.sender = startStreamSender(c.t, urls, chronicle, "go-client")
	for _, l := range in.loads {
		l.waitAcked(c.t, 0)
	}
	testutil.Eventually(c.t, clusterWait, func() bool { return in.sender.c.Stats().Acked > 0 },
		"the Go client got no acknowledgement")
	return in
}

// waitSurvivors waits until every node but down acknowledges more.
func (in *clusterIngest) waitSurvivors(t *testing.T, down string) {
	t.Helper()
	for name, l := range in.loads {
		if name != down {
			l.waitAcked(t, l.acked.Load()+50)
		}
	}
}

// back points the node's writers at it again and waits for an
// acknowledgement from it.
func (in *clusterIngest) back(t *testing.T, n *clusterNode) {
	t.Helper()
	l := in.loads[n.name]
	l.setBase(n.url())
	l.waitAcked(t, l.acked.Load())
}

// finishAndVerify stops the ingest and checks, on every node once the
// copies have caught up, that every acknowledged event is present exactly
// once and in order, and that the Go client's stream holds each of its
// events once.
func (in *clusterIngest) finishAndVerify(t *testing.T) {
	t.Helper()
	for _, l := range in.loads {
		l.finish(t)
	}
	sent := in.sender.finish(t)
	if st := in.sender.c.Stats(); st.Reconnects == 0 {
		t.Errorf("the Go client never failed over (stats %+v): the test did not exercise it", st)
	}
	in.c.waitReplicasCurrent(in.c.nodes[0].url(), in.chronicle)
	for _, n := range in.c.nodes {
		for name, l := range in.loads {
			t.Logf("on %s, the stories written through %s:", n.name, name)
			l.verify(t, n.url())
		}
		verifyStream(t, n.url(), in.chronicle, "go-client", sent)
	}
}

// checkTailAcross opens a live tail on node to, then writes on node from:
// the tail must deliver the event.
func checkTailAcross(t *testing.T, from, to *clusterNode, chronicle string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, to.url()+"/api/v1/chronicles/"+chronicle+"/stories/tail-probe/tail", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("tail on %s: %s", to.name, resp.Status)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	// The first heartbeat says the tail is attached; then write.
	var once sync.Once
	marker := fmt.Sprintf("written-on-%s-%d", from.name, os.Getpid())
	for line := range lines {
		if strings.HasPrefix(line, "event: heartbeat") || strings.HasPrefix(line, "id:") {
			once.Do(func() { mustPost(t, from.url(), chronicle, "tail-probe", fmt.Sprintf(`{"marker":%q}`, marker)) })
		}
		if strings.HasPrefix(line, "data:") && strings.Contains(line, marker) {
			return
		}
	}
	t.Fatalf("the tail on %s never delivered the event written on %s (%v)", to.name, from.name, ctx.Err())
}

// TestClusterOnExternalNATS: three chronostream nodes, each with --nats
// pointing at a separate three-server nats-server cluster and R3
// chronicles: what node A acknowledges, node B reads.
func TestClusterOnExternalNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-server NATS cluster; skipped with -short")
	}
	nats := testutil.StartNATSCluster(t, 3)
	bin := testutil.BuildBinary(t)
	var nodes []*testutil.Proc
	for i := range nats {
		// Each node lists every NATS server, its own first.
		urls := append([]string{nats[i]}, append(append([]string{}, nats[:i]...), nats[i+1:]...)...)
		nodes = append(nodes, testutil.StartBinary(t, bin, "--nats", strings.Join(urls, ","), "--replicas", "3"))
	}
	a, b := nodes[0], nodes[1]
	mustPost(t, a.URL(), "ext", "s", `{"n":1}`, `{"n":2}`, `{"n":3}`)
	var got []readEvent
	testutil.Eventually(t, clusterWait, func() bool {
		got = readStory(t, b.URL(), "ext", "s")
		return len(got) == 3
	}, "node B never read the 3 events node A acknowledged")
	for i, e := range got {
		if !sameJSON(t, e.Body, fmt.Appendf(nil, `{"n":%d}`, i+1)) {
			t.Fatalf("event %d read on node B is %s", i, e.Body)
		}
	}
	st, ok := status(b.URL())
	if !ok {
		t.Fatal("GET /api/v1/cluster failed on node B")
	}
	var replicas int
	for _, ch := range st.Chronicles {
		if ch.Chronicle == "ext" {
			replicas = len(ch.Peers)
		}
	}
	if !st.Clustered || replicas != 3 || len(st.Members) != 3 {
		t.Fatalf("cluster status on node B: clustered %v, %d replicas of ext, %d members; want true, 3, 3", st.Clustered, replicas, len(st.Members))
	}
}

// TestClusterSinkLeaseKill: an InfluxDB sink configured on all three nodes
// runs on the one holding its lease; that node is killed -9 under steady
// ingest and a survivor takes the sink over from the durable cursor. Every
// acknowledged event is then a point in the real influxd, and there are no
// other points (InfluxDB stores a point written twice once: the count of
// points is the count of distinct events delivered).
func TestClusterSinkLeaseKill(t *testing.T) {
	if testing.Short() {
		t.Skip("three nodes, influxd and a lease takeover; skipped with -short")
	}
	influx := testutil.StartInfluxDB(t)
	clusterInfluxQuery(t, influx.URL(), "CREATE DATABASE cs")
	cfg := filepath.Join(t.TempDir(), "chronostream.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `sinks:
  - name: influx
    type: influxdb
    chronicle: sunk
    batch_age: 50ms
    settings:
      url: %q
`, influx.URL()+"/write?db=cs"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, 3, "--config", cfg)
	c.putChronicle(c.nodes[0].url(), "sunk", 3)

	// One producer writes numbered events with distinct times, each batch
	// to the next node that is up; it counts what was acknowledged.
	var (
		acked   atomic.Int64
		stop    atomic.Bool
		down    sync.Map // node name → true while killed
		stopped = make(chan struct{})
	)
	base := time.Now().UTC().Truncate(time.Second)
	go func() {
		defer close(stopped)
		next, failed := 0, false
		// After stop, a failed batch is still sent until acknowledged: a
		// batch stored without an acknowledgement must not stay beyond
		// what the test counts.
		for i := 0; !stop.Load() || failed; i++ {
			n := c.nodes[i%len(c.nodes)]
			if _, isDown := down.Load(n.name); isDown {
				continue
			}
			var body strings.Builder
			for k := next; k < next+10; k++ {
				fmt.Fprintf(&body, `{"time":%q,"i":%d}`+"\n", base.Add(time.Duration(k)*time.Millisecond).Format(time.RFC3339Nano), k)
			}
			_, count, err := postNDJSON(context.Background(), n.url(), "sunk", "m", []byte(body.String()))
			failed = err != nil || count != 10
			if !failed {
				next += 10
				acked.Store(int64(next))
			}
			// A failed batch is sent again, to another node: the events
			// are numbered by the producer, so a batch stored and not
			// acknowledged becomes a duplicate event, which the count
			// of points (one per time) does not see.
			time.Sleep(5 * time.Millisecond)
		}
	}()
	testutil.Eventually(t, clusterWait, func() bool { return sinkPoints(t, influx.URL()) > 0 },
		"the sink delivered nothing to InfluxDB")

	holder := sinkHolder(t, c)
	h := c.node(holder)
	down.Store(holder, true)
	h.proc.Kill9()
	t.Logf("killed %s, which ran the sink, after %d acknowledged events", holder, acked.Load())
	atKill := acked.Load()
	testutil.Eventually(t, clusterWait, func() bool { return acked.Load() > atKill+200 },
		"the survivors acknowledged nothing after the kill")
	testutil.Eventually(t, clusterWait, func() bool { return sinkPoints(t, influx.URL()) > int(atKill) },
		"no survivor took the sink over")
	c.start(h)
	c.waitReady(h)
	down.Delete(holder)
	stop.Store(true)
	<-stopped
	want := int(acked.Load())
	testutil.Eventually(t, clusterWait, func() bool { return sinkPoints(t, influx.URL()) >= want },
		fmt.Sprintf("InfluxDB never held the %d acknowledged events", want))
	if got := sinkPoints(t, influx.URL()); got != want {
		t.Fatalf("InfluxDB holds %d points, want exactly the %d events acknowledged", got, want)
	}
	t.Logf("%d events acknowledged, %d points in InfluxDB; the sink now runs on %s", want, want, sinkHolder(t, c))
}

// sinkHolder names the node whose sink "influx" is running.
func sinkHolder(t *testing.T, c *testCluster) string {
	t.Helper()
	var holder string
	testutil.Eventually(t, clusterWait, func() bool {
		for _, n := range c.nodes {
			resp, err := client.Get(n.url() + "/api/v1/sinks/influx")
			if err != nil {
				continue
			}
			var st struct{ State string }
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err == nil && st.State == "running" {
				holder = n.name
				return true
			}
		}
		return false
	}, "no node runs the sink")
	return holder
}

func clusterInfluxQuery(t *testing.T, base, q string) []byte {
	t.Helper()
	resp, err := client.PostForm(base+"/query", url.Values{"q": {q}, "db": {"cs"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("influxd %q: %s %s %v", q, resp.Status, b, err)
	}
	return b
}

// sinkPoints is the number of points of measurement m in InfluxDB.
func sinkPoints(t *testing.T, base string) int {
	t.Helper()
	var r struct {
		Results []struct {
			Series []struct {
				Values [][]any `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	if err := json.Unmarshal(clusterInfluxQuery(t, base, `SELECT count("i") FROM "m"`), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Results) == 0 || len(r.Results[0].Series) == 0 || len(r.Results[0].Series[0].Values) == 0 {
		return 0
	}
	n, _ := r.Results[0].Series[0].Values[0][1].(float64)
	return int(n)
}
