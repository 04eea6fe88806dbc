package api

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/event"
)

var base = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// seedEvents returns n events, i from `from`: every third has host h0/h1/h2,
// every fifth is a metric, the rest are logs; even ones carry their tags and
// fields in a JSON body only (readers expand it), odd ones store them.
func seedEvents(from, n int) []event.Event {
	evs := make([]event.Event, n)
	for j := range evs {
		i := from + j
		host := fmt.Sprintf("h%d", i%3)
		kind := event.KindLog
		if i%5 == 0 {
			kind = event.KindMetric
		}
		e := event.Event{Time: base.Add(time.Duration(i) * time.Second).UnixNano(), Kind: kind, Format: event.FormatJSON,
			Body: fmt.Appendf(nil, `{"i":%d,"msg":"hello %d","tags":{"host":%q}}`, i, i, host)}
		if i%2 == 1 {
			e.Tags = map[string]string{"host": host}
			e.Fields = map[string]event.Value{"i": event.Int(int64(i)), "msg": event.String(fmt.Sprintf("hello %d", i))}
		}
		evs[j] = e
	}
	return evs
}

func fieldI(t testing.TB, e eventOut) int {
	t.Helper()
	f, ok := e.Fields["i"].(float64)
	if !ok {
		t.Fatalf("event %d has no field i: %+v", e.Seq, e)
	}
	return int(f)
}

func TestChronicleLifecycle(t *testing.T) {
	e := newEnv(t, Config{})
	put := func(path, body string, status int) chronicleJSON {
		t.Helper()
		resp := e.do("PUT", path, strings.NewReader(body))
		defer resp.Body.Close()
		var c chronicleJSON
		if resp.StatusCode != status {
			t.Fatalf("PUT %s %s: status %d, want %d", path, body, resp.StatusCode, status)
		}
		if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := put("/api/v1/chronicles/logs", `{"retention":{"max_age":"24h","max_bytes":1048576,"max_events":100}}`, 201)
	if c.Name != "logs" || c.Retention.MaxAge != "24h0m0s" || c.Retention.MaxAgeSeconds != 86400 ||
		c.Retention.MaxBytes != 1<<20 || c.Retention.MaxEvents != 100 || c.Events != 0 {
		t.Fatalf("created %+v", c)
	}
	c = put("/api/v1/chronicles/logs", `{"retention":{"max_age":3600}}`, 200)
	if c.Retention.MaxAge != "1h0m0s" || c.Retention.MaxBytes != 0 || c.Retention.MaxEvents != 0 {
		t.Fatalf("retention replaced: %+v", c.Retention)
	}
	c = put("/api/v1/chronicles/logs", `{"retention":{"max_age":"7d"}}`, 200)
	if c.Retention.MaxAgeSeconds != 7*86400 {
		t.Fatalf("7d: %+v", c.Retention)
	}
	if c = put("/api/v1/chronicles/logs", ``, 200); c.Retention.MaxAgeSeconds != 7*86400 {
		t.Fatalf("an empty PUT must keep the retention: %+v", c.Retention)
	}
	a := e.append("logs", "app", seedEvents(0, 5)...)
	e.append("metrics", "cpu", seedEvents(0, 2)...)

	var list struct{ Chronicles []chronicleJSON }
	e.getJSON("/api/v1/chronicles", 200, &list)
	if len(list.Chronicles) != 2 || list.Chronicles[0].Name != "logs" || list.Chronicles[1].Name != "metrics" {
		t.Fatalf("list %+v", list)
	}
	got := list.Chronicles[0]
	if got.Events != 5 || got.Stories != 1 || got.FirstSeq != a.First || got.LastSeq != a.Last || got.Bytes == 0 {
		t.Fatalf("logs %+v, appended %+v", got, a)
	}
	e.getJSON("/api/v1/chronicles/logs", 200, &got)
	if got.Events != 5 {
		t.Fatalf("get %+v", got)
	}
	resp := e.do("DELETE", "/api/v1/chronicles/logs", nil)
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	e.getJSON("/api/v1/chronicles/logs", 404, nil)
}

func TestStories(t *testing.T) {
	e := newEnv(t, Config{})
	a1 := e.append("c", "b", seedEvents(0, 3)...)
	a2 := e.append("c", "a", seedEvents(10, 4)...)
	var out struct {
		Stories []struct {
			Name          string
			Events, Bytes uint64
			FirstSeq      uint64    `json:"first_seq"`
			LastSeq       uint64    `json:"last_seq"`
			FirstTime     time.Time `json:"first_time"`
			LastTime      time.Time `json:"last_time"`
		}
	}
	e.getJSON("/api/v1/chronicles/c/stories", 200, &out)
	if len(out.Stories) != 2 {
		t.Fatalf("stories %+v", out)
	}
	a, b := out.Stories[0], out.Stories[1]
	if a.Name != "a" || a.Events != 4 || a.FirstSeq != a2.First || a.LastSeq != a2.Last ||
		!a.FirstTime.Equal(base.Add(10*time.Second)) || !a.LastTime.Equal(base.Add(13*time.Second)) || a.Bytes == 0 {
		t.Fatalf("story a %+v", a)
	}
	if b.Name != "b" || b.Events != 3 || b.FirstSeq != a1.First || b.LastSeq != a1.Last {
		t.Fatalf("story b %+v", b)
	}
	e.getJSON("/api/v1/chronicles/none/stories", 404, nil)
}

// readPages follows next cursors and returns every event read.
func readPages(t *testing.T, e *env, path string, params url.Values, desc bool) []eventOut {
	t.Helper()
	var all []eventOut
	for pages := 0; ; pages++ {
		var p page
		e.getJSON(path+"?"+params.Encode(), 200, &p)
		all = append(all, p.Events...)
		if p.Next == "" {
			return all
		}
		// Time-ordered reads page by TIME.SEQ, the others by seq.
		lastSeq := strconv.FormatUint(p.Events[len(p.Events)-1].Seq, 10)
		if p.Next != lastSeq && !strings.HasSuffix(p.Next, "."+lastSeq) {
			t.Fatalf("next %s is not the last position of the page", p.Next)
		}
		if desc {
			params.Set("before", p.Next)
		} else {
			params.Set("after", p.Next)
		}
		if pages > 1000 {
			t.Fatal("pagination does not end")
		}
	}
}

func is(t *testing.T, what string, evs []eventOut, want []int) {
	t.Helper()
	got := make([]int, len(evs))
	for i, ev := range evs {
		got[i] = fieldI(t, ev)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got i=%v, want %v", what, got, want)
	}
}

func span(from, to int, keep func(int) bool) []int {
	var out []int
	for i := from; i <= to; i++ {
		if keep == nil || keep(i) {
			out = append(out, i)
		}
	}
	return out
}

func TestReadStory(t *testing.T) {
	e := newEnv(t, Config{})
	// Several appends make several blocks, so that pages cross blocks.
	var seqs []uint64
	for i := 0; i < 50; i += 10 {
		a := e.append("c", "s", seedEvents(i, 10)...)
		for s := a.First; s <= a.Last; s++ {
			seqs = append(seqs, s)
		}
	}
	e.append("c", "other", seedEvents(1000, 5)...)
	const path = "/api/v1/chronicles/c/stories/s/events"

	all := readPages(t, e, path, url.Values{"limit": {"7"}}, false)
	is(t, "asc pages", all, span(0, 49, nil))
	for i, ev := range all {
		if ev.Seq != seqs[i] || ev.Story != "s" || !ev.Time.Equal(base.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("event %d: %+v (seq want %d)", i, ev, seqs[i])
		}
		host := fmt.Sprintf("h%d", i%3)
		if ev.Tags["host"] != host || ev.Fields["msg"] != fmt.Sprintf("hello %d", i) {
			t.Fatalf("event %d tags/fields not expanded: %+v", i, ev)
		}
		wantKind := "log"
		if i%5 == 0 {
			wantKind = "metric"
		}
		if ev.Kind != wantKind {
			t.Fatalf("event %d kind %s", i, ev.Kind)
		}
		var body map[string]any
		if err := json.Unmarshal(ev.Body, &body); err != nil || body["i"] != float64(i) {
			t.Fatalf("event %d body %s", i, ev.Body)
		}
	}
	desc := readPages(t, e, path, url.Values{"limit": {"6"}, "order": {"desc"}}, true)
	want := span(0, 49, nil)
	slices.Reverse(want)
	is(t, "desc pages", desc, want)

	var p page
	e.getJSON(path, 200, &p)
	if len(p.Events) != 50 || p.Next != "" {
		t.Fatalf("default page: %d events, next %q", len(p.Events), p.Next)
	}
	cases := []struct {
		name   string
		params url.Values
		want   []int
	}{
		{"after", url.Values{"after": {fmt.Sprint(seqs[9])}}, span(10, 49, nil)},
		{"before", url.Values{"before": {fmt.Sprint(seqs[3])}}, span(0, 2, nil)},
		{"after and before", url.Values{"after": {fmt.Sprint(seqs[9])}, "before": {fmt.Sprint(seqs[12])}}, span(10, 11, nil)},
		{"desc before limit", url.Values{"before": {fmt.Sprint(seqs[20])}, "order": {"desc"}, "limit": {"3"}}, []int{19, 18, 17}},
		{"time range rfc3339", url.Values{"from": {base.Add(10 * time.Second).Format(time.RFC3339)},
			"to": {base.Add(20 * time.Second).Format(time.RFC3339Nano)}}, span(10, 20, nil)},
		{"time range unix ns", url.Values{"from": {fmt.Sprint(base.Add(45 * time.Second).UnixNano())}}, span(45, 49, nil)},
		{"time range desc", url.Values{"to": {base.Add(2 * time.Second).Format(time.RFC3339)}, "order": {"desc"}}, []int{2, 1, 0}},
		{"tag", url.Values{"tag.host": {"h1"}}, span(0, 49, func(i int) bool { return i%3 == 1 })},
		{"tag any of", url.Values{"tag.host": {"h1", "h2"}}, span(0, 49, func(i int) bool { return i%3 != 0 })},
		{"field", url.Values{"field.i": {"7"}}, []int{7}},
		{"string field", url.Values{"field.msg": {"hello 8"}}, []int{8}},
		{"text", url.Values{"q": {`"hello 4`}}, []int{4, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49}},
		{"kind", url.Values{"kind": {"metric"}}, span(0, 49, func(i int) bool { return i%5 == 0 })},
		{"filters and", url.Values{"kind": {"metric"}, "tag.host": {"h0"}}, []int{0, 15, 30, 45}},
		{"filters with limit", url.Values{"tag.host": {"h2"}, "limit": {"2"}}, []int{2, 5}},
		{"no match", url.Values{"tag.host": {"nope"}}, nil},
		{"underscore ignored", url.Values{"_": {"123"}, "limit": {"1"}}, []int{0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var p page
			e.getJSON(path+"?"+c.params.Encode(), 200, &p)
			is(t, c.name, p.Events, c.want)
		})
	}
	// Unknown stories of existing chronicles read as empty: they may yet be written.
	e.getJSON("/api/v1/chronicles/c/stories/nope/events", 200, &p)
	if len(p.Events) != 0 {
		t.Fatalf("unknown story: %+v", p)
	}
}

func TestReadChronicle(t *testing.T) {
	e := newEnv(t, Config{})
	// Interleaved appends: log order alternates between stories.
	e.append("c", "a", seedEvents(0, 3)...)
	e.append("c", "b", seedEvents(3, 3)...)
	e.append("c", "a", seedEvents(6, 3)...)
	e.append("d", "a", seedEvents(100, 3)...)
	const path = "/api/v1/chronicles/c/events"
	// Here time order and log order agree, so both sorts read the same.
	for _, sort := range []string{"seq", "time"} {
		all := readPages(t, e, path, url.Values{"limit": {"2"}, "sort": {sort}}, false)
		is(t, "chronicle asc by "+sort, all, span(0, 8, nil))
		for i, ev := range all {
			want := "a"
			if i >= 3 && i < 6 {
				want = "b"
			}
			if ev.Story != want || i > 0 && ev.Seq <= all[i-1].Seq {
				t.Fatalf("sort=%s event %d: story %s seq %d", sort, i, ev.Story, ev.Seq)
			}
		}
		desc := readPages(t, e, path, url.Values{"limit": {"4"}, "order": {"desc"}, "sort": {sort}}, true)
		is(t, "chronicle desc by "+sort, desc, []int{8, 7, 6, 5, 4, 3, 2, 1, 0})
	}
	var p page
	e.getJSON(path+"?story=b", 200, &p)
	is(t, "story filter", p.Events, []int{3, 4, 5})
	e.getJSON(path+"?story=b&story=a&tag.host=h0", 200, &p)
	is(t, "stories filter", p.Events, []int{0, 3, 6})
	e.getJSON(path+"?story=none", 200, &p)
	is(t, "unknown story", p.Events, nil)
}

// TestReadChronicleByTime: stories whose events interleave in time but were
// written one after the other come back merged by time (the default for a
// chronicle), and in log order with sort=seq.
func TestReadChronicleByTime(t *testing.T) {
	e := newEnv(t, Config{})
	var evens, odds []event.Event
	for _, ev := range seedEvents(0, 12) {
		if fieldOf(ev)%2 == 0 {
			evens = append(evens, ev)
		} else {
			odds = append(odds, ev)
		}
	}
	e.append("t", "even", evens...)
	e.append("t", "odd", odds...)
	const path = "/api/v1/chronicles/t/events"
	is(t, "by time", readPages(t, e, path, url.Values{"limit": {"5"}}, false), span(0, 11, nil))
	is(t, "by time, newest first", readPages(t, e, path, url.Values{"limit": {"5"}, "order": {"desc"}}, true),
		[]int{11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0})
	is(t, "by seq", readPages(t, e, path, url.Values{"limit": {"5"}, "sort": {"seq"}}, false),
		[]int{0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11})
	is(t, "by time from a time", readPages(t, e, path, url.Values{"from": {base.Add(7 * time.Second).Format(time.RFC3339)}}, false),
		span(7, 11, nil))
	var p page
	e.getJSON(path+"?story=odd&limit=2", 200, &p)
	is(t, "one story by time", p.Events, []int{1, 3})
	e.getJSON(path+"?after="+strconv.FormatUint(p.Events[0].Seq, 10), 400, nil)
	e.getJSON(path+"?sort=sideways", 400, nil)
}

func TestNamesNeedingEscapes(t *testing.T) {
	e := newEnv(t, Config{})
	for _, n := range []struct{ chronicle, story, path string }{
		{"my chronicle", "a/b c.d%?#", ""},
		{"x.y", "..", "/api/v1/chronicles/x.y/stories/%2E%2E/events"},
		{"ünï", "/leading//double/", ""},
	} {
		a := e.append(n.chronicle, n.story, seedEvents(0, 2)...)
		path := n.path
		if path == "" {
			path = "/api/v1/chronicles/" + url.PathEscape(n.chronicle) + "/stories/" + url.PathEscape(n.story) + "/events"
		}
		var p page
		e.getJSON(path, 200, &p)
		if len(p.Events) != 2 || p.Events[0].Seq != a.First || p.Events[0].Story != n.story {
			t.Fatalf("%s: %+v", path, p)
		}
		var st struct{ Stories []struct{ Name string } }
		e.getJSON("/api/v1/chronicles/"+url.PathEscape(n.chronicle)+"/stories", 200, &st)
		if len(st.Stories) != 1 || st.Stories[0].Name != n.story {
			t.Fatalf("stories of %q: %+v", n.chronicle, st)
		}
	}
	s := e.sse("/api/v1/chronicles/my%20chronicle/stories/a%2Fb%20c.d%25%3F%23/tail?after=0")
	ev := decode[eventOut](t, s.mustNext(t, "event").data)
	if ev.Story != "a/b c.d%?#" {
		t.Fatalf("tail of an escaped story: %+v", ev)
	}
}

// fieldOf is the i of a seedEvents event.
func fieldOf(e event.Event) int {
	var i int
	fmt.Sscanf(string(e.Body), `{"i":%d`, &i)
	return i
}
