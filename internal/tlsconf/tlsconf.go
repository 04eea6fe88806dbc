// Package tlsconf is the TLS of the server's listeners (HTTP, Fluent
// Forward, Graphite TCP): a certificate and key read from files and read
// again on SIGHUP (certificates renewed by certbot or cert-manager are
// picked up without a restart, and connections in progress keep theirs),
// an optional CA whose certificates clients must present (mutual TLS),
// and a self-signed certificate made in memory for quick test setups; and
// the TLS of the commands that talk to a server (client.go).
package tlsconf

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

// Options say where the certificate comes from. The zero value is no TLS.
type Options struct {
	CertFile, KeyFile string
	// ClientCAFile, if set, makes clients authenticate with a certificate
	// signed by one of its CAs (PEM); others fail the handshake.
	ClientCAFile string
	// SelfSigned makes a certificate in memory for localhost, 127.0.0.1,
	// ::1 and the host's name, valid for a year: clients must skip
	// verification or trust it explicitly. For tests and trials only.
	SelfSigned bool
}

// Enabled reports whether o asks for TLS.
func (o Options) Enabled() bool { return o.CertFile != "" || o.KeyFile != "" || o.SelfSigned }

// Validate checks that o names a usable combination.
func (o Options) Validate() error {
	switch {
	case o.SelfSigned && (o.CertFile != "" || o.KeyFile != ""):
		return errors.New("tls: --tls-self-signed and --tls-cert/--tls-key exclude each other")
	case (o.CertFile == "") != (o.KeyFile == "") && !o.SelfSigned:
		return errors.New("tls: --tls-cert and --tls-key go together")
	case o.ClientCAFile != "" && !o.Enabled():
		return errors.New("tls: --tls-client-ca needs a certificate (--tls-cert and --tls-key, or --tls-self-signed)")
	}
	return nil
}

// Config holds the current certificate; it is safe for concurrent use.
type Config struct {
	opts Options
	log  *slog.Logger
	cert atomic.Pointer[tls.Certificate]
	tls  *tls.Config
}

// New loads the certificate (or makes the self-signed one) and the client
// CAs.
func New(o Options, log *slog.Logger) (*Config, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Config{opts: o, log: log}
	if o.SelfSigned {
		cert, err := SelfSigned(time.Now())
		if err != nil {
			return nil, err
		}
		c.cert.Store(&cert)
	} else if err := c.Reload(); err != nil {
		return nil, err
	}
	c.tls = &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Read at each handshake: a reload applies to new connections.
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.cert.Load(), nil },
		NextProtos:     []string{"h2", "http/1.1"},
	}
	if o.ClientCAFile != "" {
		pool, err := CertPool("tls: client CA", o.ClientCAFile)
		if err != nil {
			return nil, err
		}
		c.tls.ClientCAs, c.tls.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// CertPool reads the PEM certificates of a CA file into a pool; what names
// the file's setting in the errors. A file with no certificate in it is an
// error, not an empty pool that would trust nothing.
func CertPool(what, file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s %s: no PEM certificate in it", what, file)
	}
	return pool, nil
}

// TLS is the configuration to serve with (shared by every listener).
func (c *Config) TLS() *tls.Config { return c.tls }

// Certificate is the certificate served now.
func (c *Config) Certificate() *tls.Certificate { return c.cert.Load() }

// Reload reads the certificate and key files again; on error the current
// certificate stays.
func (c *Config) Reload() error {
	if c.opts.SelfSigned {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(c.opts.CertFile, c.opts.KeyFile)
	if err != nil {
		return fmt.Errorf("tls: loading %s and %s: %w", c.opts.CertFile, c.opts.KeyFile, err)
	}
	c.cert.Store(&cert)
	return nil
}

// ReloadOnSIGHUP reloads the files on each SIGHUP until ctx ends. With a
// self-signed certificate there is nothing to reload, but SIGHUP is still
// taken: its default action would end the server without a shutdown.
func (c *Config) ReloadOnSIGHUP(ctx context.Context) {
	OnSIGHUP(ctx, func() {
		if c.opts.SelfSigned {
			c.log.Info("SIGHUP: a self-signed certificate has nothing to reload")
			return
		}
		if err := c.Reload(); err != nil {
			c.log.Error("TLS certificate not reloaded; serving the previous one", "err", err)
			return
		}
		c.log.Info("TLS certificate reloaded", "cert", c.opts.CertFile)
	})
}

// OnSIGHUP calls f on each SIGHUP until ctx ends, in a goroutine of its own,
// instead of letting the signal end the process. SIGHUP is taken before it
// returns, so a signal sent right after is not lost.
func OnSIGHUP(ctx context.Context, f func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				f()
			}
		}
	}()
}

// Listener wraps ln so that its connections speak TLS.
func (c *Config) Listener(ln net.Listener) net.Listener { return tls.NewListener(ln, c.tls) }

// SelfSigned makes an ECDSA P-256 certificate for localhost, the loopback
// addresses and the host's name, valid from an hour before now for a year.
func SelfSigned(now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: %w", err)
	}
	names := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		names = append(names, h)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"chronostream self-signed"}, CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
