package influxjson

import (
	"encoding/csv"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// wantsCSV reports whether the request asks for influxd's CSV format
// (exactly these Accept values, as influxd matches them).
func wantsCSV(r *http.Request) bool {
	if r == nil {
		return false
	}
	switch r.Header.Get("Accept") {
	case "application/csv", "text/csv":
		return true
	}
	return false
}

// csvWriter is influxd's csvFormatter: a header "name,tags,<columns>" per
// statement (and again when a statement's columns change), a blank line
// between statements, one record per row. Statement errors and empty
// results write nothing, as in influxd. Times are integers: nanoseconds
// unless epoch says otherwise.
type csvWriter struct {
	w           *csv.Writer
	epoch       string
	statementID int // of the last header written; -1 before the first
	columns     []string
}

func newCSVWriter(w io.Writer, epoch string) *csvWriter {
	return &csvWriter{w: csv.NewWriter(w), epoch: epoch, statementID: -1}
}

func (c *csvWriter) write(results []Result) error {
	for _, res := range results {
		if len(res.Series) == 0 {
			continue
		}
		if res.StatementID != c.statementID {
			if c.statementID >= 0 {
				c.w.Flush()
				if err := c.blankLine(); err != nil {
					return err
				}
			}
			c.statementID = res.StatementID
			c.header(res.Series[0].Columns)
		}
		for i, s := range res.Series {
			if i > 0 && !slices.Equal(res.Series[i-1].Columns, s.Columns) {
				c.w.Flush()
				if err := c.blankLine(); err != nil {
					return err
				}
				c.header(s.Columns)
			}
			c.columns[0], c.columns[1] = s.Name, tagKey(s.Tags)
			timeCol := len(s.Columns) > 0 && s.Columns[0] == "time"
			for _, row := range s.Values {
				for j, v := range row {
					if j+2 >= len(c.columns) {
						break
					}
					c.columns[j+2] = csvValue(v, j == 0 && timeCol, c.epoch)
				}
				_ = c.w.Write(c.columns)
			}
		}
	}
	c.w.Flush()
	return c.w.Error()
}

func (c *csvWriter) blankLine() error {
	if err := c.w.Error(); err != nil {
		return err
	}
	return c.w.Write(nil) // an empty record is an empty line
}

func (c *csvWriter) header(columns []string) {
	c.columns = append([]string{"name", "tags"}, columns...)
	_ = c.w.Write(c.columns)
}

func csvValue(v any, isTime bool, epoch string) string {
	switch x := v.(type) {
	case nil:
		return ""
	case int64:
		if isTime && epoch != "" {
			x /= epochUnit(epoch)
		}
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case uint64:
		return strconv.FormatUint(x, 10)
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return strconv.FormatInt(x.UnixNano(), 10)
	}
	return ""
}

// tagKey is the series' tags as influxd writes them in CSV: sorted
// key=value pairs with line protocol's escaping, comma separated, without
// the tags whose value is empty.
func tagKey(tags map[string]string) string {
	if len(tags) == 0 {
		return ""
	}
	keys := make([]string, 0, len(tags))
	for k, v := range tags {
		if v != "" { // influxd's tag set leaves out empty values
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(tagEscaper.Replace(k))
		b.WriteByte('=')
		b.WriteString(tagEscaper.Replace(tags[k]))
	}
	return b.String()
}

var tagEscaper = strings.NewReplacer(",", `\,`, " ", `\ `, "=", `\=`)
