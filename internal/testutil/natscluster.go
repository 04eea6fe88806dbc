package testutil

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// StartNATSCluster starts n separate nats-server processes with JetStream
// that form one cluster on free loopback ports, each with its own storage
// directory, and returns their client URLs. A server is ready for clients
// before its routes are up, so they start one after the other; the
// JetStream meta leader is not waited for: clients of a fresh cluster
// retry until it is elected. The servers are stopped when the test ends.
func StartNATSCluster(t testing.TB, n int) []string {
	t.Helper()
	bin := NATSServerBinary(t)
	routes := make([]string, n)
	for i := range n {
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", FreePort(t))
	}
	urls := make([]string, n)
	for i := range n {
		url, ok, out := startNATS(t, bin, FreePort(t), filepath.Join(t.TempDir(), "js"),
			"-n", fmt.Sprintf("nats-%d", i), "--cluster_name", "testutil",
			"--cluster", routes[i], "--routes", strings.Join(routes, ","))
		if !ok {
			t.Fatalf("testutil: nats-server %d of the cluster did not start; its output:\n%s", i, out)
		}
		urls[i] = url
	}
	return urls
}
