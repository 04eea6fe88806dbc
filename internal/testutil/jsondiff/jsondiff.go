// Package jsondiff compares JSON answers structurally, for the tests and
// benchmarks that check chronostream answers as a peer (InfluxDB) does:
// object keys in any order, arrays in order, strings and booleans exactly,
// and numbers equal as written or within a relative float tolerance.
package jsondiff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
)

// Decode reads every JSON value of body (a chunked answer has several),
// numbers as json.Number.
func Decode(body []byte) ([]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var docs []any
	for {
		var doc any
		if err := dec.Decode(&doc); err == io.EOF {
			return docs, nil
		} else if err != nil {
			return docs, fmt.Errorf("not JSON: %w", err)
		}
		docs = append(docs, doc)
	}
}

// Diff says where got differs from want, or "" if they are the same;
// path names the root in the message. Two numbers not written the same are
// equal when within tol of each other relative to the larger.
func Diff(path string, want, got any, tol float64) string {
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
			if d := Diff(path+"."+k, wv, gv, tol); d != "" {
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
			if d := Diff(fmt.Sprintf("%s[%d]", path, i), w[i], g[i], tol); d != "" {
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
		if w == g || close(w, g, tol) {
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

func close(a, b json.Number, tol float64) bool {
	x, err1 := a.Float64()
	y, err2 := b.Float64()
	if err1 != nil || err2 != nil {
		return false
	}
	return x == y || math.Abs(x-y) <= tol*math.Max(math.Abs(x), math.Abs(y))
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
	if len(b) > 120 {
		return fmt.Sprintf("%s… (%d bytes)", b[:120], len(b))
	}
	return string(b)
}
