package difftest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A corpus entry is one request to /query: the query text and how to send
// it. The format is described in testdata/influxql/README.md.
type entry struct {
	file    string
	line    int    // where the query starts
	name    string // "# name:", or the query itself
	q       string
	db      string // "# db:"; "-" sends no db
	epochs  []string
	method  string // GET or POST
	chunked bool
}

func (e entry) String() string { return fmt.Sprintf("%s:%d %s", filepath.Base(e.file), e.line, e.name) }

// parseCorpus reads entries: "#" lines are comments or directives
// (name, db, epoch, method, chunked) for the next query; a query runs to
// the next blank line; its lines are joined with "\n".
func parseCorpus(file string, r io.Reader) ([]entry, error) {
	var out []entry
	cur := entry{file: file}
	var q []string
	flush := func() {
		if len(q) > 0 {
			cur.q = strings.Join(q, "\n")
			if cur.name == "" {
				cur.name = strings.Join(strings.Fields(cur.q), " ")
			}
			if cur.db == "" {
				cur.db = dbMain
			}
			if cur.epochs == nil {
				cur.epochs = []string{"ns", ""}
			}
			if cur.method == "" {
				cur.method = "GET"
			}
			out = append(out, cur)
			cur = entry{file: file}
		}
		q = nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case strings.HasPrefix(line, "#"):
			if len(q) > 0 {
				return nil, fmt.Errorf("%s:%d: a comment inside a query; end the query with a blank line", file, n)
			}
			key, val, ok := strings.Cut(strings.TrimSpace(line[1:]), ":")
			if !ok {
				continue // a plain comment
			}
			val = strings.TrimSpace(val)
			switch strings.TrimSpace(key) {
			case "name":
				cur.name = val
			case "db":
				cur.db = val
			case "epoch":
				cur.epochs = nil
				for _, e := range strings.Split(val, ",") {
					switch e = strings.TrimSpace(e); e {
					case "rfc3339":
						cur.epochs = append(cur.epochs, "")
					case "ns", "n", "u", "µ", "ms", "s", "m", "h",
						"NS", "nanoseconds": // unknown: influxd answers nanoseconds
						cur.epochs = append(cur.epochs, e)
					default:
						return nil, fmt.Errorf("%s:%d: unknown epoch %q", file, n, e)
					}
				}
			case "method":
				if val != "GET" && val != "POST" {
					return nil, fmt.Errorf("%s:%d: method is GET or POST, not %q", file, n, val)
				}
				cur.method = val
			case "chunked":
				b, err := strconv.ParseBool(val)
				if err != nil {
					return nil, fmt.Errorf("%s:%d: chunked: %w", file, n, err)
				}
				cur.chunked = b
			}
			// Any other "key: value" is a plain comment.
		default:
			if len(q) == 0 {
				cur.line = n
			}
			q = append(q, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	flush()
	return out, nil
}

func loadCorpus(pattern string) ([]entry, error) {
	files, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	var all []entry
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		es, err := parseCorpus(f, fh)
		fh.Close()
		if err != nil {
			return nil, err
		}
		all = append(all, es...)
	}
	return all, nil
}

// vars are the names a query may use as ${name}: the dataset's bounds and
// points in between, as RFC3339 (${mid}), as integers (${mid_ms},
// ${mid_ns}, ${mid_s}), as "2006-01-02 15:04:05" (${mid_date}) and as
// RFC3339 half a second later (${mid_frac}).
func vars(d *dataset) map[string]string {
	m := map[string]string{}
	for name, off := range map[string]time.Duration{
		"start": 0, "q1": 45 * time.Minute, "mid": 90 * time.Minute,
		"q3": 135 * time.Minute, "end": 3 * time.Hour,
	} {
		t := d.start.Add(off)
		m[name] = t.UTC().Format(time.RFC3339)
		m[name+"_ns"] = strconv.FormatInt(t.UnixNano(), 10)
		m[name+"_ms"] = strconv.FormatInt(t.UnixMilli(), 10)
		m[name+"_s"] = strconv.FormatInt(t.Unix(), 10)
		m[name+"_date"] = t.UTC().Format(time.DateTime)
		m[name+"_frac"] = t.Add(500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	}
	return m
}

// expand replaces every ${name}; an unknown name is an error, so that a
// typo does not silently send the literal to both servers.
func expand(q string, vars map[string]string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(q, "${")
		if i < 0 {
			b.WriteString(q)
			return b.String(), nil
		}
		j := strings.IndexByte(q[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", q)
		}
		v, ok := vars[q[i+2:i+j]]
		if !ok {
			return "", fmt.Errorf("unknown variable ${%s}", q[i+2:i+j])
		}
		b.WriteString(q[:i])
		b.WriteString(v)
		q = q[i+j+1:]
	}
}
