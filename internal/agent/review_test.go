package agent

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestAgentRejectsRetryMaxBelowMin: a maximum retry delay below the
// minimum is an error, not silently 5s.
func TestAgentRejectsRetryMaxBelowMin(t *testing.T) {
	_, err := New(Options{Servers: []string{"http://127.0.0.1:1"}, Hostname: "h", SpoolDir: t.TempDir(),
		MinBackoff: time.Second, MaxBackoff: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "below the minimum") {
		t.Fatalf("New: %v", err)
	}
}

// TestSpoolFailedAppendKeepsIndexes: an append that fails takes no index:
// the next sample of the story is numbered right after the last stored.
func TestSpoolFailedAppendKeepsIndexes(t *testing.T) {
	s, err := OpenSpool(t.TempDir(), 300, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(recs("a", 1, 0)); err != nil {
		t.Fatal(err)
	}
	big := []Record{{Story: "a", Payload: []byte(`"` + strings.Repeat("x", 400) + `"`)}}
	if _, err := s.Append(big); err == nil {
		t.Fatal("a sample over the bound was spooled")
	}
	if _, err := s.Append(recs("a", 1, 1)); err != nil {
		t.Fatal(err)
	}
	got := drain(t, s)
	if len(got) != 2 || got[0].Index != 0 || got[1].Index != 1 {
		t.Fatalf("records %+v: want indexes 0, 1", got)
	}
}

// TestSpoolDamagedOlderSegmentCounted: damage in a segment other than the
// last loses records, and they are counted as dropped.
func TestSpoolDamagedOlderSegmentCounted(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir, 1<<20, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		if _, err := s.Append(recs("a", 1, i)); err != nil {
			t.Fatal(err)
		}
	}
	first := s.segs[0]
	if len(s.segs) < 2 || first.count < 3 {
		t.Fatalf("want several segments of several records: %d segments, first of %d", len(s.segs), first.count)
	}
	path := s.segPath(first.id)
	count := first.count
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[recordHeader+2] ^= 0xff // the first record's body: its checksum fails
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	s, err = OpenSpool(dir, 1<<20, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Dropped(); got != uint64(count) {
		t.Fatalf("dropped %d, want the %d records of the damaged segment", got, count)
	}
}

// TestSpoolStreamNamesHost: the stream id names the host, stays across
// restarts on it, and changes when another host opens the spool (a copied
// disk), so that two hosts never share a stream.
func TestSpoolStreamNamesHost(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(dir, 1<<20, 0, nil, "web.example")
	if err != nil {
		t.Fatal(err)
	}
	id := s.Stream()
	s.Close()
	if !strings.HasPrefix(id, "agent-web_example-") {
		t.Fatalf("stream id %q does not name the host", id)
	}
	s, _ = openSpool(dir, 1<<20, 0, nil, "web.example")
	if s.Stream() != id {
		t.Fatalf("stream id changed across restarts: %q, %q", id, s.Stream())
	}
	s.Close()
	s, _ = openSpool(dir, 1<<20, 0, nil, "clone")
	defer s.Close()
	if s.Stream() == id || !strings.HasPrefix(s.Stream(), "agent-clone-") {
		t.Fatalf("another host kept the stream id %q (now %q)", id, s.Stream())
	}
}
