package tlsconf_test

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/tlsconf"
	"github.com/chronostream/chronostream/internal/tlsconf/tlstest"
)

// TestClientTrustsItsCAOnly: with --tls-ca the client verifies a server
// certificate of that CA and no other: its roots are that CA alone, not
// added to the system's; without it, a private CA's certificate is
// refused with a hint that names --tls-ca.
func TestClientTrustsItsCAOnly(t *testing.T) {
	ca, other := tlstest.NewCA(t, "private"), tlstest.NewCA(t, "other")
	pair := ca.Server(t, "hub")
	addr := serve(t, mustConfig(t, tlsconf.Options{CertFile: pair.CertFile, KeyFile: pair.KeyFile}))
	otherPair := other.Server(t, "elsewhere")
	otherAddr := serve(t, mustConfig(t, tlsconf.Options{CertFile: otherPair.CertFile, KeyFile: otherPair.KeyFile}))

	withCA := mustClient(t, tlsconf.ClientOptions{CAFile: ca.File})
	if _, err := servedSerial(t, addr, withCA); err != nil {
		t.Errorf("a certificate of the given CA: %v", err)
	}
	if _, err := servedSerial(t, otherAddr, withCA); err == nil {
		t.Errorf("a certificate of another CA was accepted")
	}
	if !withCA.RootCAs.Equal(ca.Pool) {
		t.Errorf("the roots are not the given CA alone: --tls-ca replaces the system's roots")
	}
	_, err := servedSerial(t, addr, mustClient(t, tlsconf.ClientOptions{}))
	if err == nil {
		t.Fatal("a private CA's certificate was accepted with the system's roots")
	}
	if !tlsconf.Permanent(err) || !strings.Contains(tlsconf.Explain(err).Error(), "--tls-ca") {
		t.Errorf("explained as %q", tlsconf.Explain(err))
	}
	if !errors.Is(tlsconf.Explain(err), err) {
		t.Errorf("Explain does not wrap the error")
	}
	if _, err := servedSerial(t, addr, mustClient(t, tlsconf.ClientOptions{InsecureSkipVerify: true})); err != nil {
		t.Errorf("--tls-insecure-skip-verify: %v", err)
	}
}

// TestClientCertificate: a server that requires client certificates (its
// --tls-client-ca) takes the one given by --tls-cert and --tls-key; a
// renewed certificate on disk is presented on the next connection.
func TestClientCertificate(t *testing.T) {
	ca := tlstest.NewCA(t, "mtls")
	srv := ca.Server(t, "hub")
	c := mustConfig(t, tlsconf.Options{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: ca.File})
	seen := make(chan string, 4)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.TLS.PeerCertificates[0].Subject.CommonName
	}), ErrorLog: log.New(io.Discard, "", 0)}
	go hs.Serve(c.Listener(ln))
	t.Cleanup(func() { hs.Close() })
	url := "https://" + ln.Addr().String()

	alice, bob := ca.Client(t, "alice"), ca.Client(t, "bob")
	cfg := mustClient(t, tlsconf.ClientOptions{CAFile: ca.File, CertFile: alice.CertFile, KeyFile: alice.KeyFile})
	get := func() error {
		tr := &http.Transport{TLSClientConfig: cfg.Clone(), DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		resp, err := tlsconf.ExplainTransport(tr).RoundTrip(mustRequest(t, url))
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	if cn := <-seen; cn != "alice" {
		t.Errorf("presented %q", cn)
	}
	// Renewal: the files are replaced (a later modification time).
	copyFile(t, bob.CertFile, alice.CertFile)
	copyFile(t, bob.KeyFile, alice.KeyFile)
	later := time.Now().Add(time.Minute)
	for _, f := range []string{alice.CertFile, alice.KeyFile} {
		if err := os.Chtimes(f, later, later); err != nil {
			t.Fatal(err)
		}
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	if cn := <-seen; cn != "bob" {
		t.Errorf("after renewal presented %q", cn)
	}

	// Without a certificate the connection fails and the error says what
	// to give (from the server's alert, or as a hint when the reset
	// overtook the alert).
	noCert := mustClient(t, tlsconf.ClientOptions{CAFile: ca.File})
	tr := &http.Transport{TLSClientConfig: noCert}
	resp, err := tlsconf.ExplainTransport(tr).RoundTrip(mustRequest(t, url))
	if err == nil {
		resp.Body.Close()
		t.Fatal("no client certificate, and the server answered")
	}
	if !strings.Contains(err.Error(), "--tls-cert") {
		t.Errorf("error without a hint: %v", err)
	}
}

func TestClientOptionsValidate(t *testing.T) {
	ca := tlstest.NewCA(t, "v")
	for _, tc := range []struct {
		o    tlsconf.ClientOptions
		want string
	}{
		{tlsconf.ClientOptions{CertFile: "c.pem"}, "go together"},
		{tlsconf.ClientOptions{KeyFile: "k.pem"}, "go together"},
		{tlsconf.ClientOptions{CAFile: ca.File, InsecureSkipVerify: true}, "exclude each other"},
		{tlsconf.ClientOptions{CAFile: "/nonexistent/ca.pem"}, "no such file"},
		{tlsconf.ClientOptions{CAFile: writeTemp(t, "not a certificate")}, "no PEM certificate"},
		{tlsconf.ClientOptions{CertFile: ca.File, KeyFile: ca.File}, "client certificate"},
	} {
		_, err := tlsconf.Client(tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error saying %q", tc.o, err, tc.want)
		}
	}
	cfg, err := tlsconf.Client(tlsconf.ClientOptions{})
	if err != nil || cfg.MinVersion != tls.VersionTLS12 || cfg.RootCAs != nil || cfg.InsecureSkipVerify {
		t.Errorf("zero options: %+v, %v", cfg, err)
	}
}

func mustConfig(t *testing.T, o tlsconf.Options) *tlsconf.Config {
	t.Helper()
	c, err := tlsconf.New(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustClient(t *testing.T, o tlsconf.ClientOptions) *tls.Config {
	t.Helper()
	c, err := tlsconf.Client(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustRequest(t *testing.T, u string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	f := t.TempDir() + "/file.pem"
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}
