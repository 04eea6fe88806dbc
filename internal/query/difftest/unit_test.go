package difftest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func doc(t *testing.T, s string) answer {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	a := answer{status: 200, body: []byte(s)}
	for dec.More() {
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		a.docs = append(a.docs, v)
	}
	return a
}

// The comparison itself: equal answers pass, and each kind of difference
// is found (a comparison that cannot fail would prove nothing).
func TestDiff(t *testing.T) {
	base := `{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","mean"],"values":[[1,65.33961174242424],[2,null]]}]}]}`
	for _, tc := range []struct {
		name, got string
		same      bool
	}{
		{"identical", base, true},
		{"keys in another order", `{"results":[{"series":[{"values":[[1,65.33961174242424],[2,null]],"columns":["time","mean"],"name":"cpu"}],"statement_id":0}]}`, true},
		{"float within 1e-9", `{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","mean"],"values":[[1,65.33961174242430],[2,null]]}]}]}`, true},
		{"float beyond 1e-9", `{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","mean"],"values":[[1,65.3397],[2,null]]}]}]}`, false},
		{"time differs", `{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","mean"],"values":[[0,65.33961174242424],[2,null]]}]}]}`, false},
		{"null for a number", `{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","mean"],"values":[[1,null],[2,null]]}]}]}`, false},
		{"number as a string", `{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","mean"],"values":[[1,"65.33961174242424"],[2,null]]}]}]}`, false},
		{"a row too many", `{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","mean"],"values":[[1,65.33961174242424],[2,null],[3,null]]}]}]}`, false},
		{"an extra key", `{"results":[{"statement_id":0,"partial":true,"series":[{"name":"cpu","columns":["time","mean"],"values":[[1,65.33961174242424],[2,null]]}]}]}`, false},
		{"column order", `{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["mean","time"],"values":[[1,65.33961174242424],[2,null]]}]}]}`, false},
		{"two documents (chunked)", base + "\n" + base, false},
	} {
		d := diff(doc(t, base), doc(t, tc.got))
		if (d == "") != tc.same {
			t.Errorf("%s: diff = %q, want same=%v", tc.name, d, tc.same)
		}
	}
	st := doc(t, base)
	st.status = 400
	if diff(doc(t, base), st) == "" {
		t.Error("a different status was not reported")
	}
}

func TestParseCorpus(t *testing.T) {
	src := "# a comment\n# name: first\n# db: other\n# epoch: ms, rfc3339\nSELECT 1\nFROM cpu\n\n\nSHOW DATABASES\n\n# method: POST\n# chunked: true\nSHOW MEASUREMENTS\n"
	es, err := parseCorpus("x.txt", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 3 {
		t.Fatalf("%d entries, want 3: %+v", len(es), es)
	}
	if e := es[0]; e.name != "first" || e.db != "other" || e.q != "SELECT 1\nFROM cpu" || strings.Join(e.epochs, ",") != "ms," || e.line != 5 {
		t.Errorf("first entry: %+v", e)
	}
	if e := es[1]; e.name != "SHOW DATABASES" || e.db != dbMain || e.method != "GET" || len(e.epochs) != 2 {
		t.Errorf("second entry: %+v", e)
	}
	if e := es[2]; e.method != "POST" || !e.chunked {
		t.Errorf("third entry: %+v", e)
	}
	for _, bad := range []string{"# epoch: years\nSHOW DATABASES\n", "SHOW DATABASES\n# name: inside\n", "# method: PUT\nSHOW DATABASES\n"} {
		if _, err := parseCorpus("bad.txt", strings.NewReader(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if _, err := expand("SELECT ${nope}", vars(newDataset(fixedEnd))); err == nil {
		t.Error("an unknown ${name} was not an error")
	}
}

// FuzzParseCorpus: any text parses or fails cleanly, and every entry has a
// query and the defaults filled in.
func FuzzParseCorpus(f *testing.F) {
	f.Add("# name: x\nSELECT 1\n")
	f.Add("# epoch: ns, rfc3339\n# db: -\nSHOW DATABASES;\nSHOW MEASUREMENTS\n\n# chunked: yes\nX\n")
	f.Add("\n\n#\n# :\nSELECT '${mid}'\n")
	f.Fuzz(func(t *testing.T, src string) {
		es, err := parseCorpus("fuzz.txt", strings.NewReader(src))
		if err != nil {
			return
		}
		for _, e := range es {
			if strings.TrimSpace(e.q) == "" || e.db == "" || e.method == "" || e.epochs == nil || e.line == 0 {
				t.Fatalf("incomplete entry %+v", e)
			}
		}
	})
}

var fixedEnd = time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)

// The dataset is deterministic: two generations are byte-identical, and
// no series has two points at one time.
func TestDatasetDeterministic(t *testing.T) {
	a, b := newDataset(fixedEnd), newDataset(fixedEnd)
	for _, db := range databases {
		if len(a.bodies[db]) == 0 {
			t.Fatalf("no data for %s", db)
		}
		if !bytes.Equal([]byte(strings.Join(a.bodies[db], "")), []byte(strings.Join(b.bodies[db], ""))) {
			t.Fatalf("%s: two generations differ", db)
		}
		seen := map[string]bool{}
		for _, body := range a.bodies[db] {
			for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
				i, j := strings.IndexByte(line, ' '), strings.LastIndexByte(line, ' ')
				key := line[:i] + line[j:]
				if seen[key] {
					t.Fatalf("%s: two points of one series at one time: %s", db, line)
				}
				seen[key] = true
			}
		}
	}
}
