// Package influxdb is the InfluxDB sink: it writes events as line protocol
// to InfluxDB 1.x (/write?db=&rp=) or 2.x (/api/v2/write?org=&bucket=),
// gzipped, in nanosecond precision. See encode.go for the Transform and
// docs/sinks.md for the user's view.
package influxdb

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/chronostream/chronostream/event"
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
	// SequenceWindow is how many selected events apart two events of one
	// series and timestamp may be and still be numbered apart (default
	// DefaultSequenceWindow; see numbering). The memory of the numbering
	// is proportional to it.
	SequenceWindow int `json:"sequence_window,omitempty"`
	// SequenceSpan is how many events of the chronicle (selected or not)
	// apart they may be (default DefaultSequenceSpan): it bounds how far
	// back the sink reads at each start, about twice that.
	SequenceSpan int `json:"sequence_span,omitempty"`
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
	num      *numbering
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
	switch {
	case c.SequenceWindow < 0:
		return nil, fmt.Errorf("influxdb: sequence_window %d: want a positive number of events", c.SequenceWindow)
	case c.SequenceWindow == 0:
		c.SequenceWindow = DefaultSequenceWindow
	}
	switch {
	case c.SequenceSpan < 0:
		return nil, fmt.Errorf("influxdb: sequence_span %d: want a positive number of events", c.SequenceSpan)
	case c.SequenceSpan == 0:
		c.SequenceSpan = DefaultSequenceSpan
	}
	s.num = newNumbering(c.SequenceWindow, c.SequenceSpan)
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
	body, err := s.encode(b)
	if err != nil {
		return sink.Permanent(err)
	}
	return s.write(ctx, body)
}

// Prime implements sink.Primer: the numbering restarts from the events
// before the cursor, so it goes on exactly as it would have without the
// restart (see numbering).
func (s *Sink) Prime(chronicle string, back iter.Seq2[*event.Event, bool]) {
	line := make([]byte, 0, 256)
	s.num.prime(func(yield func(keyed, bool) bool) {
		for e, selected := range back {
			var k keyed
			if selected {
				line, k, _ = s.key(line[:0], chronicle, e)
			}
			if !yield(k, selected) {
				return
			}
		}
	})
}

// key appends e's series key to dst and returns it with e's numbering key
// (without a key when the series cannot be written: the event is
// dead-lettered, and still takes its place in the numbering).
func (s *Sink) key(dst []byte, chronicle string, e *event.Event) ([]byte, keyed, error) {
	dst, err := s.enc.series(dst, chronicle, e)
	if err != nil {
		return dst, keyed{seq: e.Seq}, err
	}
	return dst, keyed{seq: e.Seq, key: hashKey(dst, e.Time), ok: true}, nil
}

// encode renders the batch, each event with its rank in the sequence tag.
// Every event is numbered, even after one that cannot be encoded: the
// ranks are kept before InfluxDB's answer is known, since it may have
// stored some points of a request it refuses (1.x's partial write, a
// timeout), and the runner then sends parts of the batch again.
func (s *Sink) encode(b sink.Batch) ([]byte, error) {
	var (
		buf   bytes.Buffer
		first error
	)
	line := make([]byte, 0, 256)
	s.num.begin()
	defer s.num.end()
	for i := range b.Events {
		e := &b.Events[i]
		line, k, err := s.key(line[:0], b.Chronicle, e)
		if len(b.Positions) == len(b.Events) {
			k.at = int64(b.Positions[i])
		}
		rank, ok := s.num.rank(k)
		switch {
		case !ok:
			err = errors.New("delivered again outside the last batch: its rank is unknown")
		case err == nil:
			line, err = s.enc.point(line, e, rank)
		}
		if err != nil {
			first = cmp.Or(first, fmt.Errorf("event %d: %w", e.Seq, err))
			continue
		}
		buf.Write(line)
	}
	return buf.Bytes(), first
}

// hashKey is the 64-bit FNV-1a hash of a series key and a timestamp.
func hashKey(series []byte, t int64) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	for _, c := range series {
		h = (h ^ uint64(c)) * prime
	}
	for i := 0; i < 64; i += 8 {
		h = (h ^ uint64(byte(t>>i))) * prime
	}
	return h
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
