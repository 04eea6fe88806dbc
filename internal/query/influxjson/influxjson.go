// Package influxjson writes InfluxDB 1.x's /query response format: the JSON
// body (plain, pretty or chunked; CSV when the request accepts only that),
// its headers and its errors, byte for byte as influxd 1.6 writes them
// (checked against a real influxd by the package's tests), so that Grafana
// and InfluxDB's client libraries read chronostream's answers unchanged.
// The one deliberate difference: NaN and ±Inf are written as null, where
// influxd answers with a Go error string that is not JSON.
package influxjson

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/chronostream/chronostream/internal/ingest/lineproto"
)

// Series is one row set of a result: InfluxDB's models.Row. A "time" first
// column holds Unix ns as int64, formatted by the writer per epoch. Partial
// is written as given: note that influxd 1.6 leaves "partial":true on a
// series of more than 10,000 rows even in a non-chunked answer (its merged
// chunks keep the first one's flag), which the engine must set to match.
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

// WriteResponse writes results as InfluxDB's non-chunked /query answer:
// status 200, Content-Type application/json, the X-Influxdb-Version header,
// and {"results":[…]} followed by a newline (pretty=true indents it by four
// spaces as influxd does). epoch is the request's epoch parameter: "" writes
// times as RFC 3339 strings, anything else as integers (FormatTime). A
// compact answer is streamed in pieces of about 32 KiB.
//
// A request that accepts only application/csv or text/csv gets influxd's
// CSV format instead (Content-Type text/csv).
func WriteResponse(w http.ResponseWriter, r *http.Request, results []Result, epoch string, pretty bool) {
	if wantsCSV(r) {
		setHeaders(w)
		w.Header().Set("Content-Type", "text/csv")
		w.WriteHeader(http.StatusOK)
		_ = newCSVWriter(w, epoch).write(results)
		return
	}
	setHeaders(w)
	w.WriteHeader(http.StatusOK)
	_ = writeDoc(w, results, "", epoch, pretty, nil)
}

// writeDoc writes one response document; the error is the connection's.
// buf, if not nil, is reused for the encoding.
func writeDoc(w io.Writer, results []Result, errText, epoch string, pretty bool, buf *[]byte) error {
	e := &encoder{epoch: epoch}
	if buf != nil {
		e.buf = (*buf)[:0]
		defer func() { *buf = e.buf }()
	}
	if !pretty {
		e.w = w
		e.response(results, errText)
		e.flush()
		return e.err
	}
	e.response(results, errText)
	var out bytes.Buffer
	if err := json.Indent(&out, e.buf[:len(e.buf)-1], "", "    "); err != nil {
		return err // unreachable: the encoder writes valid JSON
	}
	out.WriteByte('\n')
	_, err := w.Write(out.Bytes())
	return err
}

// WriteError writes a request-level error ({"error":"…"}) with status, as
// influxd's httpError does, including its X-Influxdb-Error header (but not
// on a 401, which influxd answers with a WWW-Authenticate challenge).
func WriteError(w http.ResponseWriter, status int, err error) {
	WriteRequestError(w, nil, status, err)
}

// WriteRequestError is WriteError in the format the request accepts: a
// CSV request gets influxd's "error" record instead of JSON.
func WriteRequestError(w http.ResponseWriter, r *http.Request, status int, err error) {
	msg := err.Error()
	setHeaders(w)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="InfluxDB"`)
	} else if status/100 != 2 {
		w.Header().Set("X-Influxdb-Error", headerSafe(msg))
	}
	if wantsCSV(r) {
		w.Header().Set("Content-Type", "text/csv")
		w.WriteHeader(status)
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"error"})
		_ = cw.Write([]string{msg})
		cw.Flush()
		return
	}
	w.WriteHeader(status)
	_ = writeDoc(w, nil, msg, "", false, nil)
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

// FormatTime formats a time (Unix ns) as influxd's epoch parameter asks:
// "" gives an RFC 3339 string in UTC with the fraction's trailing zeros cut
// ("2026-11-22T10:00:00Z", "…:00.5Z"); "u", "ms", "s", "m", "h" give the
// integer count of those units, truncated toward zero; any other epoch
// ("ns", "n", even "µ", …) gives nanoseconds.
func FormatTime(ns int64, epoch string) any {
	if epoch == "" {
		return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
	}
	return ns / epochUnit(epoch)
}

// epochUnit is the divisor of an integer epoch, as influxd's
// convertToEpoch has it.
func epochUnit(epoch string) int64 {
	switch epoch {
	case "u":
		return int64(time.Microsecond)
	case "ms":
		return int64(time.Millisecond)
	case "s":
		return int64(time.Second)
	case "m":
		return int64(time.Minute)
	case "h":
		return int64(time.Hour)
	}
	return 1
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
	buf       []byte     // reused by every line
	csv       *csvWriter // for a request that accepts CSV
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
	c := &ChunkedWriter{w: w, epoch: epoch, chunkSize: chunkSize}
	if wantsCSV(r) {
		// influxd's CSV formatter keeps its header state across chunks,
		// so a chunked CSV answer reads as the whole one.
		c.csv = newCSVWriter(w, epoch)
	}
	return c
}

// WriteResult writes one statement's result (or a part of it: a result with
// Partial set is continued by the next WriteResult of the same statement).
// Its messages and error go on its last line. The error is the
// connection's.
func (c *ChunkedWriter) WriteResult(res Result) error {
	c.start()
	var lines []Result
	for _, s := range res.Series {
		for len(s.Values) > c.chunkSize {
			part := s
			part.Values, part.Partial = s.Values[:c.chunkSize:c.chunkSize], true
			lines = append(lines, Result{StatementID: res.StatementID, Series: []Series{part}})
			s.Values = s.Values[c.chunkSize:]
		}
		lines = append(lines, Result{StatementID: res.StatementID, Series: []Series{s}})
	}
	if len(lines) == 0 {
		lines = append(lines, Result{StatementID: res.StatementID})
	}
	for i := range lines {
		lines[i].Partial = i < len(lines)-1 || res.Partial
	}
	last := &lines[len(lines)-1]
	last.Messages, last.Err = res.Messages, res.Err
	for _, l := range lines {
		if err := c.writeLine(l); err != nil {
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
	if len(res.Series) <= 1 {
		return c.writeLine(res)
	}
	for i, s := range res.Series {
		line := Result{StatementID: res.StatementID, Series: []Series{s}}
		if i == len(res.Series)-1 {
			line.Messages, line.Err = res.Messages, res.Err
		}
		if err := c.writeLine(line); err != nil {
			return err
		}
	}
	return nil
}

func (c *ChunkedWriter) start() {
	if c.started {
		return
	}
	c.started = true
	setHeaders(c.w)
	if c.csv != nil {
		c.w.Header().Set("Content-Type", "text/csv")
	}
	c.w.WriteHeader(http.StatusOK)
}

func (c *ChunkedWriter) writeLine(r Result) error {
	if c.csv != nil {
		if err := c.csv.write([]Result{r}); err != nil {
			return err
		}
	} else if err := writeDoc(c.w, []Result{r}, "", c.epoch, c.Pretty, &c.buf); err != nil {
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
