package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ClientOptions are the TLS settings of a command that talks to a server
// (tail, query, agent, canary, …). The zero value trusts the system's
// roots and presents no certificate.
type ClientOptions struct {
	// CAFile holds the CAs (PEM) that the server's certificate must chain
	// to, instead of the system's roots (as curl's --cacert, Telegraf's
	// tls_ca and Prometheus' ca_file): trusting a private CA should not
	// also let every public CA vouch for the server's name.
	CAFile string
	// CertFile and KeyFile are a client certificate (PEM), presented when
	// the server asks for one (its --tls-client-ca). They are read again
	// when they change on disk, so a renewed certificate needs no restart.
	CertFile, KeyFile string
	// InsecureSkipVerify accepts any server certificate. Anyone on the
	// path can then read and change the traffic, token included.
	InsecureSkipVerify bool
}

// Validate checks that o names a usable combination.
func (o ClientOptions) Validate() error {
	switch {
	case (o.CertFile == "") != (o.KeyFile == ""):
		return errors.New("tls: --tls-cert and --tls-key go together")
	case o.InsecureSkipVerify && o.CAFile != "":
		return errors.New("tls: --tls-ca and --tls-insecure-skip-verify exclude each other (with a CA the certificate can be verified)")
	}
	return nil
}

// Client returns the TLS configuration of a client: it reads the CA file
// and the client certificate now, so a wrong path fails at start rather
// than at the first connection.
func Client(o ClientOptions) (*tls.Config, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.InsecureSkipVerify}
	if o.CAFile != "" {
		var err error
		if cfg.RootCAs, err = CertPool("tls: --tls-ca", o.CAFile); err != nil {
			return nil, err
		}
	}
	if o.CertFile != "" {
		kp := &keyPair{certFile: o.CertFile, keyFile: o.KeyFile}
		if err := kp.load(); err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = kp.get
	}
	return cfg, nil
}

// keyPair is a client certificate read again when its files change: the
// agent and the canary run for months, client certificates for days.
type keyPair struct {
	certFile, keyFile string
	mu                sync.Mutex
	cert              *tls.Certificate
	certMod, keyMod   time.Time
}

func (k *keyPair) load() error {
	cm, km := modTime(k.certFile), modTime(k.keyFile)
	cert, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return fmt.Errorf("tls: client certificate %s and key %s: %w", k.certFile, k.keyFile, err)
	}
	k.cert, k.certMod, k.keyMod = &cert, cm, km
	return nil
}

// get is called at each handshake in which the server asks for a
// certificate. A pair that fails to load (a renewal half written) keeps
// the previous one; the next handshake tries again.
func (k *keyPair) get(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !modTime(k.certFile).Equal(k.certMod) || !modTime(k.keyFile).Equal(k.keyMod) {
		_ = k.load()
	}
	return k.cert, nil
}

func modTime(path string) time.Time {
	st, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}

// Explain adds to an error of a TLS handshake with a server what the user
// can do about it; other errors come back as they are. The result wraps
// err.
func Explain(err error) error {
	if hint := explain(err); hint != "" {
		return fmt.Errorf("%w (%s)", err, hint)
	}
	return err
}

func explain(err error) string {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		rec      tls.RecordHeaderError
	)
	switch {
	case err == nil:
		return ""
	case errors.As(err, &unknown):
		return "the server's certificate is not signed by a CA this command trusts: give its CA with --tls-ca " +
			"(CHRONOSTREAM_TLS_CA); a server started with --tls-self-signed can only be reached with --tls-insecure-skip-verify"
	case errors.As(err, &hostname):
		return "the server's certificate is not for this name: use one it lists in --server"
	case errors.As(err, &invalid):
		return "the server's certificate is expired, not yet valid or not for a server"
	case errors.As(err, &rec):
		return "the server does not speak TLS there: use an http:// or ws:// URL, or point at its TLS port"
	case strings.Contains(err.Error(), "tls: certificate required"), strings.Contains(err.Error(), "tls: bad certificate"),
		strings.Contains(err.Error(), "tls: unknown certificate authority"):
		return "the server wants a client certificate it trusts: give one with --tls-cert and --tls-key"
	}
	return ""
}

// ExplainTransport makes tr's TLS handshake errors say what to do
// (Explain). Without a client certificate, a connection to an https
// server that is reset or closed before any answer gets a hint too: a
// server that requires a certificate ends the connection after the
// handshake, and its alert saying why is often lost to the reset.
func ExplainTransport(tr *http.Transport) http.RoundTripper {
	c := tr.TLSClientConfig
	return explainTransport{rt: tr, cert: c != nil && (c.GetClientCertificate != nil || len(c.Certificates) > 0)}
}

type explainTransport struct {
	rt   http.RoundTripper
	cert bool // a client certificate is configured
}

func (e explainTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := e.rt.RoundTrip(r)
	if err == nil || Permanent(err) {
		return resp, Explain(err)
	}
	if !e.cert && r.URL.Scheme == "https" && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF)) {
		err = fmt.Errorf("%w (if the server requires client certificates, give one with --tls-cert and --tls-key)", err)
	}
	return resp, err
}

// Permanent reports whether err is a failure of a TLS handshake that
// trying again will not cure: a certificate one side does not accept, or
// the server not speaking TLS at all.
func Permanent(err error) bool { return explain(err) != "" }
