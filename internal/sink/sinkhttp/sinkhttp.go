// Package sinkhttp holds what the HTTP sinks (Grafana, webhook) share: the
// TLS and timeout settings of a destination, an *http.Client built from
// them, and one request helper that reads a bounded answer and classifies
// it with sink.HTTPError, so that every HTTP sink retries and dead-letters
// by the same rules.
package sinkhttp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/chronostream/chronostream/internal/sink"
	"github.com/chronostream/chronostream/internal/tlsconf"
)

// DefaultTimeout bounds one request when the settings name no timeout.
const DefaultTimeout = 10 * time.Second

// MaxAnswer bounds the bytes of an answer read: a destination cannot make
// a sink hold more. It fits a page of Grafana annotation lookups (100
// annotations with texts of the grafana sink's largest).
const MaxAnswer = 8 << 20

// TLS names the files of a destination's TLS settings. CAFile is a PEM
// bundle of the CAs to trust (instead of the system's); CertFile and KeyFile
// are a client certificate and its key, for servers that require one.
type TLS struct {
	CAFile   string
	CertFile string
	KeyFile  string
}

func (t TLS) empty() bool { return t.CAFile == "" && t.CertFile == "" && t.KeyFile == "" }

// Config loads the files into a *tls.Config (nil when none is set).
func (t TLS) Config() (*tls.Config, error) {
	if t.empty() {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		var err error
		if c.RootCAs, err = tlsconf.CertPool("CA file", t.CAFile); err != nil {
			return nil, err
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("a client certificate needs both its cert file and its key file")
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// NewClient returns a client whose requests each take at most timeout
// (DefaultTimeout if 0), trusting what t says.
func NewClient(t TLS, timeout time.Duration) (*http.Client, error) {
	if timeout < 0 {
		return nil, fmt.Errorf("timeout %v is negative", timeout)
	}
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	tc, err := t.Config()
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	// One destination per client: keep a few idle connections to it.
	tr.MaxIdleConnsPerHost = 4
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// Do sends req and returns the answer's body (at most MaxAnswer bytes)
// when the status is 2xx. Otherwise the error is sink.HTTPError's class
// (transient for 401, 403, 408, 429 and 5xx, honouring Retry-After; permanent for
// other statuses); a request that got no answer is transient.
func Do(c *http.Client, req *http.Request) ([]byte, error) {
	resp, err := c.Do(req)
	if err != nil {
		// *url.Error quotes the whole URL; say it once, without secrets.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s %s: %w", req.Method, redact(req), err)
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer))
	if herr := sink.HTTPError(resp, body); herr != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, redact(req), herr)
	}
	if rerr != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", req.Method, redact(req), rerr)
	}
	return body, nil
}

// redact names the request's target without its query or user info,
// which may hold credentials.
func redact(req *http.Request) string {
	u := *req.URL
	u.User = nil
	u.RawQuery = ""
	return u.String()
}

// NewRequest is http.NewRequestWithContext for a JSON or NDJSON body
// held in memory (so the transport can resend it), with its content type.
func NewRequest(ctx context.Context, method, target, contentType string, body []byte) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, r)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req, nil
}
