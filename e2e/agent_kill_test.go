package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/testutil"
)

// TestAgentKill9: the agent itself is killed (SIGKILL) while it samples
// and sends, and restarted on the same spool: every sample it ever spooled
// is stored exactly once (the spool's next index of each story counts
// them), whatever was in flight at the kill.
func TestAgentKill9(t *testing.T) {
	bin := testutil.BuildBinary(t)
	srv := testutil.StartBinary(t, bin)
	base := srv.URL()
	spool := t.TempDir()
	count := func(story string) int {
		resp, err := client.Get(base + "/api/v1/chronicles/agent-e2e/stories/" + story + "/events?format=ndjson")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		n := 0
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			n++
		}
		return n
	}

	a := startAgent(t, bin, base, spool, "-i", "0.02")
	testutil.Eventually(t, 30*time.Second, func() bool { return count("memory_usage") >= 10 }, "the first agent's samples arrive")
	a.Kill9()
	b := startAgent(t, bin, base, spool, "-i", "0.02")
	n := count("memory_usage")
	testutil.Eventually(t, 30*time.Second, func() bool { return count("memory_usage") >= n+10 }, "the restarted agent's samples arrive")
	if code := b.Stop(); code != 0 {
		t.Fatalf("agent exit code %d after SIGTERM; stderr:\n%s", code, b.Stderr())
	}
	if sum := stopSummary(t, b.Stderr()); sum["unsent_spooled"] != 0 || sum["dropped_spool_full"] != 0 {
		t.Fatalf("summary %v: want the spool sent", sum)
	}

	data, err := os.ReadFile(filepath.Join(spool, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ Next map[string]int }
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	for _, story := range agentStories {
		evs := readStory(t, base, "agent-e2e", story)
		seen := map[string]bool{}
		for _, e := range evs {
			if seen[string(e.Body)] {
				t.Fatalf("%s: stored twice: %s", story, e.Body)
			}
			seen[string(e.Body)] = true
		}
		if len(evs) != st.Next[story] {
			t.Errorf("%s: %d events stored, the spool numbered %d", story, len(evs), st.Next[story])
		}
	}
}
