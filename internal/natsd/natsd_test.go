package natsd

import (
	"strings"
	"testing"
)

// TestClusterOptionsRefused: cluster settings that cannot form a node are
// refused before anything starts.
func TestClusterOptionsRefused(t *testing.T) {
	for _, tc := range []struct {
		c    Cluster
		want string
	}{
		{Cluster{Listen: "127.0.0.1:6222"}, "need a cluster name"},
		{Cluster{Routes: []string{"h:6222"}}, "need a cluster name"},
		{Cluster{Name: "cs", Node: "a"}, "needs a listen address"},
		{Cluster{Name: "cs", Listen: "127.0.0.1:6222"}, "needs a name"},
		{Cluster{Name: "cs", Listen: "6222", Node: "a"}, "cluster listen address"},
		{Cluster{Name: "cs", Listen: "127.0.0.1:99999", Node: "a"}, "invalid port"},
	} {
		_, err := Start(Options{Dir: t.TempDir(), Cluster: tc.c})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Start with %+v: %v, want an error saying %q", tc.c, err, tc.want)
		}
	}
}
