package agent

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func recs(story string, n, from int) []Record {
	out := make([]Record, n)
	for i := range out {
		out[i] = Record{Story: story, Payload: fmt.Appendf(nil, `{"n":%d}`, from+i)}
	}
	return out
}

func drain(t testing.TB, s *Spool) []Record {
	t.Helper()
	var all []Record
	for {
		r, pos, err := s.Next(7)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if len(r) == 0 {
			return all
		}
		all = append(all, r...)
		if err := s.Commit(pos); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSpoolOrderIndexesAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir, 1<<20, 256, nil)
	if err != nil {
		t.Fatal(err)
	}
	stream := s.Stream()
	for i := range 10 {
		if _, err := s.Append(append(recs("a", 2, 2*i), recs("b", 1, i)...)); err != nil {
			t.Fatal(err)
		}
	}
	// Take and acknowledge some, then "crash" (no Close) with the rest spooled.
	r, pos, err := s.Next(5)
	if err != nil || len(r) != 5 {
		t.Fatalf("Next: %d records, %v", len(r), err)
	}
	if err := s.Commit(pos); err != nil {
		t.Fatal(err)
	}
	r2, _, _ := s.Next(3) // taken, not acknowledged: must come back
	s.active.Close()
	s.unlock()

	s, err = OpenSpool(dir, 1<<20, 256, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Stream() != stream {
		t.Errorf("stream id changed across reopen: %q, then %q", stream, s.Stream())
	}
	rest := drain(t, s)
	if len(rest) != 25 || string(rest[0].Payload) != string(r2[0].Payload) {
		t.Fatalf("after reopen: %d records starting %q, want 25 starting %q", len(rest), rest[0].Payload, r2[0].Payload)
	}
	next := map[string]uint64{"a": 0, "b": 0}
	for _, r := range append(r, rest...) {
		if r.Index != next[r.Story] {
			t.Fatalf("story %s: index %d, want %d", r.Story, r.Index, next[r.Story])
		}
		next[r.Story]++
	}
	// Indexes continue after reopen, even with the spool now empty.
	if _, err := s.Append(recs("a", 1, 100)); err != nil {
		t.Fatal(err)
	}
	got := drain(t, s)
	if len(got) != 1 || got[0].Index != 20 {
		t.Fatalf("next record: %+v, want index 20", got)
	}
	if n, _ := s.Len(); n != 0 {
		t.Errorf("Len after draining = %d", n)
	}
}

func TestSpoolTornTailIsCut(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir, 1<<20, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(recs("a", 3, 0)); err != nil {
		t.Fatal(err)
	}
	seg := s.segPath(s.segs[0].id)
	s.active.Close()
	s.unlock()
	f, _ := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{9, 0, 0, 0, 1, 2}) // a torn header, as a crash mid-append leaves
	f.Close()
	s, err = OpenSpool(dir, 1<<20, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(recs("a", 1, 3)); err != nil {
		t.Fatal(err)
	}
	got := drain(t, s)
	if len(got) != 4 || got[3].Index != 3 || string(got[3].Payload) != `{"n":3}` {
		t.Fatalf("got %d records, last %+v", len(got), got[len(got)-1])
	}
}

func TestSpoolFullDropsOldestAndCounts(t *testing.T) {
	dir := t.TempDir()
	// Each append is one 20-odd byte record; segments of ~4 records, at
	// most 3 segments.
	s, err := OpenSpool(dir, 300, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	total := 0
	for i := range 40 {
		d, err := s.Append(recs("a", 1, i))
		if err != nil {
			t.Fatal(err)
		}
		total += d
	}
	if total == 0 || uint64(total) != s.Dropped() {
		t.Fatalf("dropped %d (Dropped() = %d), want > 0 and equal", total, s.Dropped())
	}
	if _, b := s.Len(); b > 300 {
		t.Errorf("spool holds %d bytes, bound 300", b)
	}
	got := drain(t, s)
	if len(got)+total != 40 {
		t.Fatalf("kept %d + dropped %d != 40 appended", len(got), total)
	}
	// What is kept is the newest, in order, with its original indexes.
	for i, r := range got {
		want := uint64(40 - len(got) + i)
		if r.Index != want || string(r.Payload) != fmt.Sprintf(`{"n":%d}`, want) {
			t.Fatalf("record %d: index %d payload %s, want index %d", i, r.Index, r.Payload, want)
		}
	}
	entries, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(entries) > 3 {
		t.Errorf("%d segment files left", len(entries))
	}
}

// Records the sender holds in flight are dropped with their segment too,
// and counted: the spool tells the sender (Evictions) to abandon them.
func TestSpoolDropOfInFlightRecordsIsCountedAndSignalled(t *testing.T) {
	s, err := OpenSpool(t.TempDir(), 300, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 3 {
		s.Append(recs("a", 1, i))
	}
	gen := s.Evictions()
	if taken, _, _ := s.Next(2); len(taken) != 2 {
		t.Fatalf("took %d", len(taken))
	}
	total := 0
	for i := 3; i < 40; i++ {
		d, _ := s.Append(recs("a", 1, i))
		total += d
	}
	if s.Evictions() == gen {
		t.Fatal("the in-flight records were dropped without a signal")
	}
	s.Rewind()
	rest := drain(t, s)
	if len(rest)+total != 40 {
		t.Fatalf("kept %d + dropped %d != 40", len(rest), total)
	}
}

func TestSpoolIsExclusive(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir, 1<<20, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := OpenSpool(dir, 1<<20, 0, nil); err == nil {
		t.Fatal("a second OpenSpool of the same directory succeeded")
	}
}
