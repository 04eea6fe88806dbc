package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chronostream/chronostream/internal/testutil"
)

// TestQueryAfterKill9 writes line protocol, queries each acknowledged
// batch back at once through /query (read-your-writes), and kills the
// server with SIGKILL between batches, restarting it on the same data: the
// index is rebuilt from the log, and every acknowledged point is answered.
func TestQueryAfterKill9(t *testing.T) {
	bin := testutil.BuildBinary(t)
	data := t.TempDir()
	const kills, batches, perBatch = 3, 8, 50
	acked := map[int64]bool{}
	next := int64(1)
	for k := 0; k <= kills; k++ {
		p := testutil.StartBinary(t, bin, "--data", data)
		for range batches {
			var lines []string
			for range perBatch {
				lines = append(lines, fmt.Sprintf("m,host=h%d v=%di %d", next%3, next, next))
				next++
			}
			resp, err := http.Post(p.URL()+"/write?db=q", "text/plain", strings.NewReader(strings.Join(lines, "\n")))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("write: %s", resp.Status)
			}
			for i := next - perBatch; i < next; i++ {
				acked[i] = true
			}
			if got := queryTimes(t, p.URL()); len(got) != len(acked) {
				t.Fatalf("right after an acknowledged write: %d points, want %d", len(got), len(acked))
			}
		}
		if k < kills {
			p.Kill9()
			continue
		}
		got := queryTimes(t, p.URL())
		for ts := range acked {
			if !got[ts] {
				t.Fatalf("acknowledged point at %d missing after %d kills", ts, kills)
			}
		}
		if len(got) != len(acked) {
			t.Errorf("%d points answered, %d acknowledged", len(got), len(acked))
		}
		if code := p.Stop(); code != 0 {
			t.Errorf("exit code %d after SIGTERM", code)
		}
	}
}

// queryTimes returns the times of every point of measurement m in db q.
func queryTimes(t *testing.T, base string) map[int64]bool {
	t.Helper()
	resp, err := http.Get(base + "/query?" + url.Values{"db": {"q"}, "epoch": {"ns"}, "q": {"SELECT v FROM m"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Results []struct {
			Series []struct{ Values [][]int64 }
			Error  string
		}
	}
	if err := json.Unmarshal(body, &r); err != nil || len(r.Results) != 1 || r.Results[0].Error != "" {
		t.Fatalf("query: %v %s", err, body)
	}
	out := map[int64]bool{}
	for _, s := range r.Results[0].Series {
		for _, row := range s.Values {
			out[row[0]] = true
		}
	}
	return out
}
