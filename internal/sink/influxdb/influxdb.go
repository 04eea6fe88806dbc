// Package influxdb is the InfluxDB sink: it writes events as line protocol
// to InfluxDB 1.x (/write?db=&rp=) or 2.x (/api/v2/write?org=&bucket=),
// gzipped, in nanosecond precision. See encode.go for the Transform and
// docs/sinks.md for the user's view.
package influxdb

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chronostream/chronostream/internal/sink"
)

func init() { sink.Register("influxdb", New) }

// Config is the settings of an InfluxDB sink.
type Config struct {
	// URL is the write endpoint; its path picks the API:
	// http://host:8086/write?db=DB[&rp=RP] (1.x, basic auth with
	// Username/Password) or http://host:8086/api/v2/write?org=ORG&bucket=B
	// (2.x, Authorization: Token). precision is always ns.
	URL      string `json:"url"`
	Token    string `json:"token,omitempty"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// Timeout bounds one write request (default 10s).
	Timeout sink.Duration `json:"timeout,omitempty"`
	// Gzip compresses request bodies (default true).
	Gzip *bool `json:"gzip,omitempty"`
	// SequenceTag numbers events that share a series and a timestamp, so
	// they do not overwrite each other (default "_seq"; see docs/sinks.md).
	SequenceTag string `json:"sequence_tag,omitempty"`
}

// Sink writes to one InfluxDB.
type Sink struct {
	url      string
	v1       bool
	cfg      Config
	gzip     bool
	client   *http.Client
	log      *slog.Logger
	enc      encoder
	ranks    *ranks
	userInfo *url.Userinfo
}

// New builds an InfluxDB sink from its settings (a sink.Factory).
func New(settings json.RawMessage, log *slog.Logger) (sink.Sink, error) {
	var c Config
	if len(settings) > 0 {
		dec := json.NewDecoder(bytes.NewReader(settings))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("influxdb settings: %w", err)
		}
	}
	return NewSink(c, log)
}

// NewSink validates c and returns the sink.
func NewSink(c Config, log *slog.Logger) (*Sink, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The value is not quoted: a malformed URL may hold credentials.
		return nil, errors.New("influxdb: url: want http(s)://host:port/write?db=… or /api/v2/write?org=…&bucket=…")
	}
	q := u.Query()
	s := &Sink{cfg: c, log: log, gzip: c.Gzip == nil || *c.Gzip}
	switch p := strings.TrimSuffix(u.Path, "/"); {
	case strings.HasSuffix(p, "/api/v2/write"):
		if q.Get("org") == "" && q.Get("orgID") == "" || q.Get("bucket") == "" {
			return nil, errors.New("influxdb: a 2.x url needs org and bucket parameters (/api/v2/write?org=…&bucket=…)")
		}
		if c.Username != "" || c.Password != "" {
			return nil, errors.New("influxdb: 2.x takes a token, not a username and password")
		}
	case strings.HasSuffix(p, "/write"):
		s.v1 = true
		if q.Get("db") == "" {
			return nil, errors.New("influxdb: a 1.x url needs a db parameter (/write?db=…)")
		}
		if (c.Username == "") != (c.Password == "") {
			return nil, errors.New("influxdb: username and password go together")
		}
		if c.Token != "" && c.Username != "" {
			return nil, errors.New("influxdb: give a token or a username and password, not both")
		}
	default:
		return nil, fmt.Errorf("influxdb: url path %q: want /write (1.x) or /api/v2/write (2.x)", u.Path)
	}
	if u.User != nil {
		// Credentials in the URL would be logged with it: take them out.
		s.userInfo, u.User = u.User, nil
	}
	q.Set("precision", "ns")
	u.RawQuery = q.Encode()
	s.url = u.String()
	timeout := time.Duration(c.Timeout)
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	s.client = &http.Client{Timeout: timeout}
	if c.SequenceTag == "" {
		c.SequenceTag = "_seq"
	}
	s.enc = encoder{v1: s.v1, seqTag: c.SequenceTag}
	s.ranks = newRanks(1 << 16)
	return s, nil
}

// Close implements sink.Sink.
func (s *Sink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// Deliver implements sink.Sink: one write request for the batch. An event
// that cannot be encoded makes the batch a permanent refusal, so the
// runner isolates and dead-letters it like a point InfluxDB refuses.
func (s *Sink) Deliver(ctx context.Context, b sink.Batch) error {
	body, keys, err := s.encode(b)
	if err != nil {
		return sink.Permanent(err)
	}
	// The ranks are kept before the answer is known: InfluxDB may have
	// stored some of the points even when it refuses the request (1.x's
	// partial write; a timeout), and the runner then sends the events again
	// in smaller batches. Numbered afresh, an event whose group-mate was
	// refused would move to a lower rank and be stored twice.
	seqs := make([]uint64, len(b.Events))
	for i := range b.Events {
		seqs[i] = b.Events[i].Seq
	}
	s.ranks.commit(keys, seqs)
	return s.write(ctx, body)
}

// Prime implements sink.Primer: the events delivered just before the
// cursor a runner restarts from are numbered again, so that an event sharing
// a series and a timestamp with them gets the rank it had before.
func (s *Sink) Prime(b sink.Batch) {
	var keys []string
	var seqs []uint64
	line := make([]byte, 0, 256)
	for i := range b.Events {
		e := &b.Events[i]
		var err error
		if line, err = s.enc.series(line[:0], b.Chronicle, e); err != nil {
			continue // dead-lettered, never written
		}
		keys = append(keys, string(line)+" "+strconv.FormatInt(e.Time, 10))
		seqs = append(seqs, e.Seq)
	}
	s.ranks.commit(keys, seqs)
}

// encode renders the batch, numbering events that share a series and a
// timestamp with an event written before (in an earlier batch or earlier
// in this one): their rank goes in the sequence tag.
func (s *Sink) encode(b sink.Batch) ([]byte, []string, error) {
	var buf bytes.Buffer
	line := make([]byte, 0, 256)
	keys := make([]string, 0, len(b.Events))
	inBatch := map[string]int{}
	for i := range b.Events {
		e := &b.Events[i]
		var err error
		line, err = s.enc.series(line[:0], b.Chronicle, e)
		if err != nil {
			return nil, nil, fmt.Errorf("event %d: %w", e.Seq, err)
		}
		key := string(line) + " " + strconv.FormatInt(e.Time, 10)
		rank, known := s.ranks.rank(key, e.Seq)
		if rank < 0 {
			rank = known + inBatch[key]
			inBatch[key]++
		}
		line, err = s.enc.point(line, e, rank)
		if err != nil {
			return nil, nil, fmt.Errorf("event %d: %w", e.Seq, err)
		}
		keys = append(keys, key)
		buf.Write(line)
	}
	return buf.Bytes(), keys, nil
}

func (s *Sink) write(ctx context.Context, body []byte) error {
	var rd io.Reader = bytes.NewReader(body)
	if s.gzip {
		zb, err := s.compress(body)
		if err != nil {
			return fmt.Errorf("influxdb: gzip: %w", err)
		}
		rd = bytes.NewReader(zb)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, rd)
	if err != nil {
		return fmt.Errorf("influxdb: %w", err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if s.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	switch {
	case s.cfg.Token != "":
		req.Header.Set("Authorization", "Token "+s.cfg.Token)
	case s.cfg.Username != "":
		req.SetBasicAuth(s.cfg.Username, s.cfg.Password)
	case s.userInfo != nil:
		pw, _ := s.userInfo.Password()
		req.SetBasicAuth(s.userInfo.Username(), pw)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// The URL in the error has no credentials (taken out in NewSink).
		return fmt.Errorf("influxdb: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		// Credentials or database wrong: no event is at fault, and
		// splitting would dead-letter them all. Retry until fixed.
		return &sink.RetryLaterError{Err: fmt.Errorf("influxdb: %s (check the url, database and credentials): %.300s", resp.Status, msg)}
	}
	if err := sink.HTTPError(resp, msg); err != nil {
		return fmt.Errorf("influxdb: %w", err)
	}
	return nil
}

// compress gzips a request body at BestSpeed: line protocol compresses
// well even so, and the sink's CPU is better spent elsewhere.
func (s *Sink) compress(body []byte) ([]byte, error) {
	var zb bytes.Buffer
	zb.Grow(len(body) / 4)
	zw, _ := gzip.NewWriterLevel(&zb, gzip.BestSpeed)
	if _, err := zw.Write(body); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return zb.Bytes(), nil
}

// ranks remembers which events (by seq) each recent (series, timestamp)
// holds, in order: an event's rank is its place among them, so a later
// event with the same series and timestamp gets the next rank, and an
// event delivered again (a retry, a cursor reset) gets the same one. Two
// generations bound the memory: when the current one fills, the previous
// one is dropped.
type ranks struct {
	max       int
	cur, prev map[string][]uint64
}

func newRanks(max int) *ranks {
	return &ranks{max: max, cur: map[string][]uint64{}, prev: map[string][]uint64{}}
}

func (r *ranks) seqs(key string) []uint64 {
	if s, ok := r.cur[key]; ok {
		return s
	}
	return r.prev[key]
}

// rank returns e's rank if it was delivered before, or -1 and the count of
// events delivered before with that key.
func (r *ranks) rank(key string, seq uint64) (int, int) {
	s := r.seqs(key)
	for i, v := range s {
		if v == seq {
			return i, len(s)
		}
	}
	return -1, len(s)
}

// commit records the events of a batch InfluxDB accepted.
func (r *ranks) commit(keys []string, seqs []uint64) {
	for i, k := range keys {
		s := r.seqs(k)
		if slices.Contains(s, seqs[i]) {
			continue
		}
		r.cur[k] = append(slices.Clip(s), seqs[i])
		if len(r.cur) >= r.max {
			r.prev, r.cur = r.cur, make(map[string][]uint64, r.max)
		}
	}
}
