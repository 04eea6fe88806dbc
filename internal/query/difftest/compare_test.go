package difftest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// answer is what a server said to one /query request.
type answer struct {
	status int
	body   []byte
	docs   []any // the body's JSON values (several when chunked), numbers as json.Number
	err    error // transport error, or a body that is not JSON
}

var client = &http.Client{Timeout: 30 * time.Second}

// ask sends one query the way the entry says: GET or POST form, db, epoch, chunked.
func ask(base string, e entry, q, epoch string) answer {
	v := url.Values{"q": {q}}
	if e.db != "-" {
		v.Set("db", e.db)
	}
	if epoch != "" {
		v.Set("epoch", epoch)
	}
	if e.chunked {
		v.Set("chunked", "true")
	}
	var req *http.Request
	var err error
	if e.method == "POST" {
		req, err = http.NewRequest("POST", base+"/query", strings.NewReader(v.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		req, err = http.NewRequest("GET", base+"/query?"+v.Encode(), nil)
	}
	if err != nil {
		return answer{err: err}
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode}
	a.body, a.err = io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if a.err != nil {
		return a
	}
	dec := json.NewDecoder(bytes.NewReader(a.body))
	dec.UseNumber()
	for {
		var doc any
		if err := dec.Decode(&doc); err == io.EOF {
			break
		} else if err != nil {
			a.err = fmt.Errorf("not JSON: %w", err)
			break
		}
		a.docs = append(a.docs, doc)
	}
	return a
}

// floatTolerance is the only normalization: numbers that are not equal as
// written are compared as float64 with this relative tolerance, because
// sums and means may add the same values in another order.
const floatTolerance = 1e-9

// diff says where two answers differ, or "" if they are the same: the
// status, then the JSON documents compared structurally (object keys in any
// order, arrays in order, strings exactly, numbers as above).
func diff(want, got answer) string {
	if want.err != nil {
		return "influxdb: " + want.err.Error()
	}
	if got.err != nil {
		return "chronostream: " + got.err.Error()
	}
	if want.status != got.status {
		return fmt.Sprintf("status %d, want %d", got.status, want.status)
	}
	if len(want.docs) != len(got.docs) {
		return fmt.Sprintf("%d JSON documents, want %d", len(got.docs), len(want.docs))
	}
	for i := range want.docs {
		if d := diffValue(fmt.Sprintf("doc[%d]", i), want.docs[i], got.docs[i]); d != "" {
			return d
		}
	}
	return ""
}

func diffValue(path string, want, got any) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: %s, want an object", path, kind(got))
		}
		keys := make([]string, 0, len(w)+len(g))
		for k := range w {
			keys = append(keys, k)
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			wv, wok := w[k]
			gv, gok := g[k]
			switch {
			case !gok:
				return fmt.Sprintf("%s: no %q, want %s", path, k, short(wv))
			case !wok:
				return fmt.Sprintf("%s: unexpected %q: %s", path, k, short(gv))
			}
			if d := diffValue(path+"."+k, wv, gv); d != "" {
				return d
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok {
			return fmt.Sprintf("%s: %s, want an array", path, kind(got))
		}
		for i := range min(len(w), len(g)) {
			if d := diffValue(fmt.Sprintf("%s[%d]", path, i), w[i], g[i]); d != "" {
				return d
			}
		}
		if len(w) != len(g) {
			return fmt.Sprintf("%s: %d elements, want %d", path, len(g), len(w))
		}
		return ""
	case json.Number:
		g, ok := got.(json.Number)
		if !ok {
			return fmt.Sprintf("%s: %s, want the number %s", path, short(got), w)
		}
		if w == g || floatsClose(w, g) {
			return ""
		}
		return fmt.Sprintf("%s: %s, want %s", path, g, w)
	default: // string, bool, nil
		if want != got {
			return fmt.Sprintf("%s: %s, want %s", path, short(got), short(want))
		}
		return ""
	}
}

func floatsClose(a, b json.Number) bool {
	x, err1 := a.Float64()
	y, err2 := b.Float64()
	if err1 != nil || err2 != nil {
		return false
	}
	if x == y {
		return true
	}
	return math.Abs(x-y) <= floatTolerance*math.Max(math.Abs(x), math.Abs(y))
}

func kind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case nil:
		return "null"
	default:
		return short(v)
	}
}

func short(v any) string {
	b, _ := json.Marshal(v)
	return truncate(string(b), 120)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("… (%d bytes)", len(s))
}
