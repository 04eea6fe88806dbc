// Package influxjson writes InfluxDB 1.x's /query response format: the JSON
// body (plain, pretty or chunked), its headers and its errors, byte for byte
// as influxd 1.6 writes them (checked against a real influxd by the
// package's tests), so that Grafana and InfluxDB's client libraries read
// chronostream's answers unchanged.
package influxjson

import (
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/chronostream/chronostream/internal/ingest/lineproto"
)

// Series is one row set of a result: InfluxDB's models.Row. A "time" first
// column holds Unix ns as int64, formatted by the writer per epoch.
type Series struct {
	Name    string
	Tags    map[string]string
	Columns []string
	Values  [][]any
	Partial bool
}

// Message is an informational message of a result (level "warning", …).
type Message struct {
	Level, Text string
}

// Result is one statement's result. A non-nil Err is the statement's error,
// written as its "error".
type Result struct {
	StatementID int
	Series      []Series
	Messages    []Message
	Err         error
	Partial     bool
}

// The wire structs carry InfluxDB's field order and omitempty rules
// (query.Result, models.Row and httpd.Response's MarshalJSON).
type wireResponse struct {
	Results []wireResult `json:"results,omitempty"`
	Err     string       `json:"error,omitempty"`
}

type wireResult struct {
	StatementID int           `json:"statement_id"`
	Series      []wireSeries  `json:"series,omitempty"`
	Messages    []wireMessage `json:"messages,omitempty"`
	Partial     bool          `json:"partial,omitempty"`
	Err         string        `json:"error,omitempty"`
}

type wireSeries struct {
	Name    string            `json:"name,omitempty"`
	Tags    map[string]string `json:"tags,omitempty"`
	Columns []string          `json:"columns,omitempty"`
	Values  [][]any           `json:"values,omitempty"`
	Partial bool              `json:"partial,omitempty"`
}

type wireMessage struct {
	Level string `json:"level"`
	Text  string `json:"text"`
}

// WriteResponse writes results as InfluxDB's non-chunked /query answer:
// status 200, Content-Type application/json, the X-Influxdb-Version header,
// and {"results":[…]} followed by a newline (pretty=true indents it by four
// spaces as influxd does). epoch is the request's epoch parameter: "" writes
// times as RFC 3339 strings, anything else as integers (FormatTime).
func WriteResponse(w http.ResponseWriter, r *http.Request, results []Result, epoch string, pretty bool) {
	resp := wireResponse{Results: make([]wireResult, 0, len(results))}
	for _, res := range results {
		resp.Results = append(resp.Results, toWire(res, epoch))
	}
	setHeaders(w)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(encode(resp, pretty))
}

// WriteError writes a request-level error ({"error":"…"}) with status, as
// influxd's httpError does, including its X-InfluxDB-Error header.
func WriteError(w http.ResponseWriter, status int, err error) {
	msg := err.Error()
	setHeaders(w)
	if status/100 != 2 && status != http.StatusUnauthorized {
		w.Header().Set("X-InfluxDB-Error", headerSafe(msg))
	}
	w.WriteHeader(status)
	_, _ = w.Write(encode(wireResponse{Err: msg}, false))
}

// headerSafe cuts an error to influxd's 1 KiB header limit, without the
// newlines a header value cannot carry.
func headerSafe(s string) string {
	if len(s) > 1024 {
		s = s[:1024]
	}
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

func setHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if h.Get("X-Influxdb-Version") == "" {
		h.Set("X-Influxdb-Version", lineproto.VersionV1)
		h.Set("X-Influxdb-Build", "OSS")
	}
}

// encode marshals v as influxd does, with the trailing newline. The wire
// values are sanitised first (NaN and ±Inf are null), so it cannot fail.
func encode(v any, pretty bool) []byte {
	var b []byte
	var err error
	if pretty {
		b, err = json.MarshalIndent(v, "", "    ")
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		// Unreachable with sanitised values; answer valid JSON anyway.
		b, _ = json.Marshal(wireResponse{Err: err.Error()})
	}
	return append(b, '\n')
}

func toWire(res Result, epoch string) wireResult {
	out := wireResult{StatementID: res.StatementID, Partial: res.Partial}
	if res.Err != nil {
		out.Err = res.Err.Error()
	}
	for _, m := range res.Messages {
		out.Messages = append(out.Messages, wireMessage{Level: m.Level, Text: m.Text})
	}
	for _, s := range res.Series {
		out.Series = append(out.Series, seriesToWire(s, epoch))
	}
	return out
}

func seriesToWire(s Series, epoch string) wireSeries {
	timeCol := len(s.Columns) > 0 && s.Columns[0] == "time"
	values := make([][]any, len(s.Values))
	for i, row := range s.Values {
		out := make([]any, len(row))
		for j, v := range row {
			if j == 0 && timeCol {
				if ns, ok := v.(int64); ok {
					out[j] = FormatTime(ns, epoch)
					continue
				}
			}
			out[j] = sanitize(v)
		}
		values[i] = out
	}
	var tags map[string]string
	if len(s.Tags) > 0 {
		tags = s.Tags
	}
	return wireSeries{Name: s.Name, Tags: tags, Columns: s.Columns, Values: values, Partial: s.Partial}
}

// sanitize makes a value marshal: NaN and ±Inf, which JSON cannot carry,
// are null.
func sanitize(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil
		}
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return v
}

// FormatTime formats a time (Unix ns) as influxd's epoch parameter asks:
// "" gives an RFC 3339 string in UTC with the fraction's trailing zeros cut
// ("2026-11-22T10:00:00Z", "…:00.5Z"); "u", "ms", "s", "m", "h" give the
// integer count of those units, truncated toward zero; any other epoch
// ("ns", "n", even "µ", …) gives nanoseconds.
func FormatTime(ns int64, epoch string) any {
	if epoch == "" {
		return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
	}
	switch epoch {
	case "u":
		return ns / int64(time.Microsecond)
	case "ms":
		return ns / int64(time.Millisecond)
	case "s":
		return ns / int64(time.Second)
	case "m":
		return ns / int64(time.Minute)
	case "h":
		return ns / int64(time.Hour)
	}
	return ns
}

// ChunkedWriter writes InfluxDB's chunked=true answer: one JSON response
// per line, each holding one statement's result with one series of at most
// chunkSize rows, flushed as it is written. A series cut at chunkSize has
// "partial":true; every line but a statement's last has the result's
// "partial":true.
type ChunkedWriter struct {
	// Pretty indents each line's JSON (pretty=true), as influxd does even
	// when chunked.
	Pretty bool

	w         http.ResponseWriter
	epoch     string
	chunkSize int
	started   bool
}

// DefaultChunkSize is influxd's chunk size when chunk_size is absent or not
// a positive number.
const DefaultChunkSize = 10000

// NewChunkedWriter returns a writer for one chunked response; chunkSize <= 0
// takes DefaultChunkSize.
func NewChunkedWriter(w http.ResponseWriter, r *http.Request, epoch string, chunkSize int) *ChunkedWriter {
	if chunkSize <= 0 {
		chunkSize = DefaultChunkSize
	}
	return &ChunkedWriter{w: w, epoch: epoch, chunkSize: chunkSize}
}

// WriteResult writes one statement's result (or a part of it: a result with
// Partial set is continued by the next WriteResult of the same statement).
// The error is the connection's.
func (c *ChunkedWriter) WriteResult(res Result) error {
	c.start()
	base := wireResult{StatementID: res.StatementID}
	if res.Err != nil {
		base.Err = res.Err.Error()
	}
	var lines []wireResult
	for _, s := range res.Series {
		ws := seriesToWire(s, c.epoch)
		for len(ws.Values) > c.chunkSize {
			part := ws
			part.Values, part.Partial = ws.Values[:c.chunkSize:c.chunkSize], true
			lines = append(lines, withSeries(base, part))
			ws.Values = ws.Values[c.chunkSize:]
		}
		lines = append(lines, withSeries(base, ws))
	}
	if len(lines) == 0 {
		lines = append(lines, base)
	}
	for i := range lines {
		lines[i].Partial = i < len(lines)-1 || res.Partial
	}
	last := &lines[len(lines)-1]
	for _, m := range res.Messages {
		last.Messages = append(last.Messages, wireMessage{Level: m.Level, Text: m.Text})
	}
	for _, l := range lines {
		if err := c.writeLine(wireResponse{Results: []wireResult{l}}); err != nil {
			return err
		}
	}
	return nil
}

// WriteUnsplit writes a result the way influxd answers the statements it
// does not chunk (SHOW DATABASES, MEASUREMENTS, TAG KEYS, TAG VALUES,
// RETENTION POLICIES and the other meta statements): each series whole on
// its own line, without "partial". SHOW SERIES and SHOW FIELD KEYS are
// chunked like a SELECT: use WriteResult for them.
func (c *ChunkedWriter) WriteUnsplit(res Result) error {
	c.start()
	w := toWire(res, c.epoch)
	if len(w.Series) <= 1 {
		return c.writeLine(wireResponse{Results: []wireResult{w}})
	}
	for i, s := range w.Series {
		line := withSeries(wireResult{StatementID: w.StatementID}, s)
		if i == len(w.Series)-1 {
			line.Messages, line.Err = w.Messages, w.Err
		}
		if err := c.writeLine(wireResponse{Results: []wireResult{line}}); err != nil {
			return err
		}
	}
	return nil
}

func withSeries(r wireResult, s wireSeries) wireResult {
	r.Series = []wireSeries{s}
	return r
}

func (c *ChunkedWriter) start() {
	if c.started {
		return
	}
	c.started = true
	setHeaders(c.w)
	c.w.WriteHeader(http.StatusOK)
}

func (c *ChunkedWriter) writeLine(v wireResponse) error {
	if _, err := c.w.Write(encode(v, c.Pretty)); err != nil {
		return err
	}
	if f, ok := c.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

// Close ends the response; a response with no result written still sends
// its status and headers.
func (c *ChunkedWriter) Close() error {
	c.start()
	return nil
}
