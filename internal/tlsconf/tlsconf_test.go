package tlsconf_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/tlsconf"
	"github.com/chronostream/chronostream/internal/tlsconf/tlstest"
)

// serve answers each TLS connection of ln with one byte, so a client's
// handshake completes (or fails) on its first read.
func serve(t *testing.T, c *tlsconf.Config) string {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testutil.ServeEach(t, c.Listener(raw), func(conn net.Conn) { _, _ = conn.Write([]byte{1}) })
	return raw.Addr().String()
}

// servedSerial dials addr and returns the serial number of the
// certificate it serves.
func servedSerial(t *testing.T, addr string, cfg *tls.Config) (string, error) {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	var b [1]byte
	if _, err := conn.Read(b[:]); err != nil {
		return "", err
	}
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

// TestReloadOnSIGHUP: replacing the files and sending SIGHUP serves the
// new certificate to new connections; a broken file keeps the old one.
func TestReloadOnSIGHUP(t *testing.T) {
	ca := tlstest.NewCA(t, "reload")
	first, second := ca.Server(t, "first"), ca.Server(t, "second")
	dir := t.TempDir()
	certFile, keyFile := dir+"/cert.pem", dir+"/key.pem"
	copyFile(t, first.CertFile, certFile)
	copyFile(t, first.KeyFile, keyFile)
	c, err := tlsconf.New(tlsconf.Options{CertFile: certFile, KeyFile: keyFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.ReloadOnSIGHUP(ctx)
	addr := serve(t, c)
	client := &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"}
	want := first.TLS.Leaf.SerialNumber.String()
	if got, err := servedSerial(t, addr, client); err != nil || got != want {
		t.Fatalf("serial %s, %v; want %s", got, err, want)
	}

	copyFile(t, second.CertFile, certFile)
	copyFile(t, second.KeyFile, keyFile)
	want = second.TLS.Leaf.SerialNumber.String()
	hup := func() {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	hup()
	testutil.Eventually(t, 10*time.Second, func() bool {
		got, err := servedSerial(t, addr, client)
		return err == nil && got == want
	}, "the reloaded certificate is served")

	// A half-written renewal: the current certificate stays.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(); err == nil {
		t.Fatal("reloading a broken certificate succeeded")
	}
	if got, err := servedSerial(t, addr, client); err != nil || got != want {
		t.Fatalf("after a failed reload: serial %s, %v; want %s", got, err, want)
	}
}

// TestClientCA: with a client CA, a client without a certificate, or with
// one of another CA, fails the handshake; one signed by it gets through.
func TestClientCA(t *testing.T) {
	ca, other := tlstest.NewCA(t, "clients"), tlstest.NewCA(t, "other")
	srv := ca.Server(t, "server")
	c, err := tlsconf.New(tlsconf.Options{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: ca.File}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, c)
	base := tls.Config{RootCAs: ca.Pool, ServerName: "localhost"}
	for name, certs := range map[string][]tls.Certificate{
		"none": nil, "other CA": {other.Client(t, "mallory").TLS},
	} {
		cfg := base.Clone()
		cfg.Certificates = certs
		if _, err := servedSerial(t, addr, cfg); err == nil {
			t.Errorf("client certificate %s: accepted", name)
		}
	}
	cfg := base.Clone()
	cfg.Certificates = []tls.Certificate{ca.Client(t, "alice").TLS}
	if _, err := servedSerial(t, addr, cfg); err != nil {
		t.Errorf("a client certificate of the CA: %v", err)
	}
}

// TestSelfSigned: the in-memory certificate verifies for localhost and
// 127.0.0.1 against itself.
func TestSelfSigned(t *testing.T) {
	c, err := tlsconf.New(tlsconf.Options{SelfSigned: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, c)
	pool := x509Pool(c)
	for _, name := range []string{"localhost", "127.0.0.1"} {
		if _, err := servedSerial(t, addr, &tls.Config{RootCAs: pool, ServerName: name}); err != nil {
			t.Errorf("self-signed for %s: %v", name, err)
		}
	}
	if _, err := servedSerial(t, addr, &tls.Config{ServerName: "localhost"}); err == nil {
		t.Error("the self-signed certificate verified against the system roots")
	}

	// SIGHUP is taken (its default action ends the process) and the
	// certificate stays.
	logs := &testutil.LockedBuffer{}
	c, err = tlsconf.New(tlsconf.Options{SelfSigned: true}, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.ReloadOnSIGHUP(ctx)
	before := c.Certificate()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), "nothing to reload") }, "SIGHUP handled")
	if c.Certificate() != before {
		t.Error("SIGHUP replaced the self-signed certificate")
	}
}

func TestValidate(t *testing.T) {
	for _, o := range []tlsconf.Options{
		{CertFile: "c"},
		{KeyFile: "k"},
		{SelfSigned: true, CertFile: "c", KeyFile: "k"},
		{ClientCAFile: "ca"},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v: valid", o)
		}
	}
	if _, err := tlsconf.New(tlsconf.Options{CertFile: "/nonexistent", KeyFile: "/nonexistent"}, nil); err == nil {
		t.Error("missing files: no error")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	// Write then rename, as a certificate manager does.
	if err := os.WriteFile(to+".tmp", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(to+".tmp", to); err != nil {
		t.Fatal(err)
	}
}

func x509Pool(c *tlsconf.Config) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Certificate().Leaf)
	return p
}
