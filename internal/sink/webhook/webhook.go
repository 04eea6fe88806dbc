// Package webhook is the webhook sink: each batch is POSTed to a URL as
// NDJSON, one event per line in exactly the JSON shape of the read API
// (GET …/events?format=ndjson), signed with HMAC-SHA256 and named by a
// delivery id that a retry of the same batch repeats, so that a receiver
// can check where a request came from and drop one it already handled.
package webhook

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chronostream/chronostream/internal/api"
	"github.com/chronostream/chronostream/internal/sink"
	"github.com/chronostream/chronostream/internal/sink/sinkhttp"
)

// Kind is the sink type's name in the config file.
const Kind = "webhook"

// The headers of a delivery (docs/webhook.md).
const (
	// HeaderDelivery is "<chronicle>/<first seq>-<last seq>" (the chronicle
	// percent-encoded): the same for every attempt of a batch.
	HeaderDelivery = "X-Chronostream-Delivery"
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256 of the body as
	// sent (compressed, with gzip), keyed by the secret.
	HeaderSignature = "X-Chronostream-Signature"
	// HeaderChronicle is the events' chronicle, percent-encoded (the
	// events' JSON names their story, not their chronicle).
	HeaderChronicle = "X-Chronostream-Chronicle"
	// HeaderEvents is the number of events (lines) in the body.
	HeaderEvents = "X-Chronostream-Events"
)

func init() {
	sink.Register(Kind, func(settings json.RawMessage, log *slog.Logger) (sink.Sink, error) { return New(settings, log) })
}

// Config is a webhook sink's settings.
type Config struct {
	URL string `json:"url"`
	// Secret keys the signature header; without it requests are unsigned.
	Secret string `json:"secret"`
	// Headers are added to every request (an Authorization, say). They
	// cannot replace the ones the sink sets.
	Headers map[string]string `json:"headers"`
	// Gzip compresses bodies (Content-Encoding: gzip).
	Gzip           bool          `json:"gzip"`
	Timeout        sink.Duration `json:"timeout"`
	CAFile         string        `json:"ca_file"`
	ClientCertFile string        `json:"client_cert_file"`
	ClientKeyFile  string        `json:"client_key_file"`
}

// Sink POSTs batches to one URL.
type Sink struct {
	cfg    Config
	url    string
	client *http.Client
	log    *slog.Logger
}

// New builds a sink from its settings, validating all of them.
func New(settings json.RawMessage, log *slog.Logger) (*Sink, error) {
	cfg, err := parseConfig(settings)
	if err != nil {
		return nil, fmt.Errorf("webhook sink settings: %w", err)
	}
	c, err := sinkhttp.NewClient(sinkhttp.TLS{CAFile: cfg.CAFile, CertFile: cfg.ClientCertFile, KeyFile: cfg.ClientKeyFile}, time.Duration(cfg.Timeout))
	if err != nil {
		return nil, fmt.Errorf("webhook sink settings: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sink{cfg: *cfg, url: cfg.URL, client: c, log: log}, nil
}

// reserved are the headers the sink sets itself.
var reserved = []string{"Content-Type", "Content-Encoding", "Content-Length", "Host", "Transfer-Encoding",
	HeaderDelivery, HeaderSignature, HeaderChronicle, HeaderEvents}

func parseConfig(settings []byte) (*Config, error) {
	var c Config
	d := json.NewDecoder(bytes.NewReader(settings))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("more than one JSON value")
	}
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		return nil, errors.New("url is required")
	case err != nil:
		return nil, fmt.Errorf("url: %w", err)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return nil, fmt.Errorf("url %q: want an http or https URL", u.Redacted())
	case u.Scheme == "http" && (c.CAFile != "" || c.ClientCertFile != ""):
		return nil, errors.New("CA and client certificate files need an https url")
	case c.Timeout < 0:
		return nil, errors.New("timeout cannot be negative")
	}
	for k, v := range c.Headers {
		if !validHeaderName(k) || strings.ContainsAny(v, "\r\n\x00") {
			return nil, fmt.Errorf("headers: %q is not a valid header", k)
		}
		for _, r := range reserved {
			if strings.EqualFold(k, r) {
				return nil, fmt.Errorf("headers: %s is set by the sink", r)
			}
		}
	}
	return &c, nil
}

// validHeaderName: a non-empty RFC 9110 token.
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// DeliveryID names a batch: a retry of the same batch has the same id.
func DeliveryID(b sink.Batch) string {
	if len(b.Events) == 0 {
		return url.PathEscape(b.Chronicle)
	}
	return url.PathEscape(b.Chronicle) + "/" + strconv.FormatUint(b.Events[0].Seq, 10) + "-" + strconv.FormatUint(b.Events[len(b.Events)-1].Seq, 10)
}

// Sign returns the signature header's value for body and secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Body encodes a batch as the NDJSON the receiver gets (before gzip). The
// runner has expanded the events' bodies into tags and fields.
func Body(b sink.Batch) []byte {
	// One allocation for the usual event: its body plus ~200 bytes of
	// members, tags and fields (a guess; append grows it when short).
	n := 0
	for i := range b.Events {
		n += len(b.Events[i].Body) + 200
	}
	buf := make([]byte, 0, n)
	for i := range b.Events {
		buf = api.AppendEventJSON(buf, &b.Events[i])
		buf = append(buf, '\n')
	}
	return buf
}

// gzipWriters reuses compressors: each holds ~800 KB of state.
var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

// Deliver POSTs the batch; a 2xx answer means delivered.
func (s *Sink) Deliver(ctx context.Context, b sink.Batch) error {
	if len(b.Events) == 0 {
		return nil
	}
	body := Body(b)
	if s.cfg.Gzip {
		var zb bytes.Buffer
		zw := gzipWriters.Get().(*gzip.Writer)
		zw.Reset(&zb)
		_, err := zw.Write(body)
		if err == nil {
			err = zw.Close()
		}
		gzipWriters.Put(zw)
		if err != nil {
			return fmt.Errorf("webhook: gzip: %w", err)
		}
		body = zb.Bytes()
	}
	req, err := sinkhttp.NewRequest(ctx, http.MethodPost, s.url, "application/x-ndjson", body)
	if err != nil {
		return err
	}
	for k, v := range s.cfg.Headers {
		req.Header.Set(k, v)
	}
	if s.cfg.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	req.Header.Set(HeaderDelivery, DeliveryID(b))
	req.Header.Set(HeaderChronicle, url.PathEscape(b.Chronicle))
	req.Header.Set(HeaderEvents, strconv.Itoa(len(b.Events)))
	if s.cfg.Secret != "" {
		req.Header.Set(HeaderSignature, Sign(s.cfg.Secret, body))
	}
	if _, err := sinkhttp.Do(s.client, req); err != nil {
		return fmt.Errorf("webhook delivery %s: %w", DeliveryID(b), err)
	}
	s.log.Debug("webhook sink: delivered", "delivery", DeliveryID(b), "events", len(b.Events), "bytes", len(body))
	return nil
}

// Close releases idle connections.
func (s *Sink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}
