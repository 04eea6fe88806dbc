package cli

import (
	"slices"
	"strings"
	"testing"
)

// TestParseServeCluster: the cluster options from flags, the environment
// (comma-separated routes) and the config file (a list) end up in the
// server's options, routes split and merged.
func TestParseServeCluster(t *testing.T) {
	c, err := parseServe([]string{"--cluster-name", "cs", "--cluster-listen", "127.0.0.1:6222", "--node", "a",
		"--routes", "h1:6222,h2:6222", "--routes", " h3:6222 "}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl := c.server.Cluster
	if cl.Name != "cs" || cl.Listen != "127.0.0.1:6222" || cl.Node != "a" || !slices.Equal(cl.Routes, []string{"h1:6222", "h2:6222", "h3:6222"}) {
		t.Fatalf("cluster %+v", cl)
	}
	c, err = parseServe(nil, []string{"CHRONOSTREAM_CLUSTER_NAME=cs", "CHRONOSTREAM_CLUSTER_LISTEN=:6222", "CHRONOSTREAM_ROUTES=h1:6222,h2:6222"})
	if err != nil {
		t.Fatal(err)
	}
	if cl := c.server.Cluster; cl.Node == "" || !slices.Equal(cl.Routes, []string{"h1:6222", "h2:6222"}) {
		t.Fatalf("from the environment: %+v (the node defaults to the host name)", cl)
	}
	file := writeFile(t, "c.yaml", "cluster-name: cs\ncluster-listen: ':6222'\nroutes: [h1:6222, h2:6222]\nnode: b\nreplicas: 3\n")
	c, err = parseServe([]string{"--config", file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cl := c.server.Cluster; cl.Node != "b" || len(cl.Routes) != 2 || c.server.Replicas != 3 {
		t.Fatalf("from the config file: %+v, replicas %d", cl, c.server.Replicas)
	}
}

func TestParseServeClusterErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cluster-listen", ":6222"}, "need --cluster-name"},
		{[]string{"--routes", "h1:6222"}, "need --cluster-name"},
		{[]string{"--node", "a"}, "need --cluster-name"},
		{[]string{"--cluster-name", "cs"}, "needs --cluster-listen"},
		{[]string{"--cluster-name", "cs", "--cluster-listen", ":6222", "--nats", "nats://h:4222"}, "with --nats"},
	} {
		_, err := parseServe(tc.args, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseServe(%q): %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
}

// TestParseServeChronicleReplicas: a configured chronicle may set its own
// replicas; a count below 1 is refused.
func TestParseServeChronicleReplicas(t *testing.T) {
	file := writeFile(t, "c.yaml", "chronicles:\n  audit: {max-events: 10, replicas: 3}\n  app: {max-age: 7d}\n")
	c, err := parseServe([]string{"--config", file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.server.ChronicleReplicas["audit"] != 3 || c.server.ChronicleReplicas["app"] != 0 || c.server.Chronicles["audit"].MaxEvents != 10 {
		t.Fatalf("replicas %v, chronicles %v", c.server.ChronicleReplicas, c.server.Chronicles)
	}
	file = writeFile(t, "bad.yaml", "chronicles:\n  audit: {replicas: 0}\n")
	if _, err := parseServe([]string{"--config", file}, nil); err == nil || !strings.Contains(err.Error(), "replicas") {
		t.Fatalf("replicas 0: %v, want an error naming replicas", err)
	}
}
