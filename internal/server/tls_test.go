package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"
	influxdb2 "github.com/influxdata/influxdb-client-go/v2"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
	"github.com/chronostream/chronostream/internal/tlsconf"
	"github.com/chronostream/chronostream/internal/tlsconf/tlstest"
)

func countStory(t *testing.T, s *server.Server, chronicle, story string) int {
	t.Helper()
	n := 0
	_, err := s.Store().Read(context.Background(), store.Query{Chronicle: chronicle, Story: story},
		func(*event.Event) error { n++; return nil }, nil)
	if err != nil {
		return 0 // not created yet
	}
	return n
}

// TestTLSListeners serves HTTP, Fluent Forward and Graphite TCP over TLS
// from certificate files and writes through each with a real client: Go's
// TLS client, influxdb-client-go over https, fluent-logger-golang with
// network "tls" (it cannot take a CA, only skip verification), and
// Graphite lines over crypto/tls. A plaintext client is refused.
func TestTLSListeners(t *testing.T) {
	const token = "tls-admin-token"
	ca := tlstest.NewCA(t, "listeners")
	pair := ca.Server(t, "server")
	s := servertest.RunServer(t, server.Options{Tokens: []string{token}, AutoCreate: true,
		ForwardAddr: "127.0.0.1:0", GraphiteAddr: "127.0.0.1:0",
		TLS: tlsconf.Options{CertFile: pair.CertFile, KeyFile: pair.KeyFile}})
	clientTLS := &tls.Config{RootCAs: ca.Pool}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS}, Timeout: 30 * time.Second}
	base := "https://" + s.Addr()

	// Go's TLS client.
	req, _ := http.NewRequest("POST", base+"/write?db=tls", strings.NewReader("m v=1\n"))
	req.Header.Set("Authorization", "Token "+token)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.TLS == nil {
		t.Fatalf("https /write: %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
	// Go's server answers a plaintext request on a TLS port with a 400.
	if resp, err := http.Get("http://" + s.Addr() + "/health"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plaintext HTTP to the TLS port: %d, want 400", resp.StatusCode)
		}
	}

	// influxdb-client-go over https.
	ic := influxdb2.NewClientWithOptions(base, token, influxdb2.DefaultOptions().SetTLSConfig(clientTLS))
	defer ic.Close()
	if err := ic.WriteAPIBlocking("org", "tls").WriteRecord(context.Background(), "influx v=2"); err != nil {
		t.Fatalf("influxdb-client-go over https: %v", err)
	}
	if n := countStory(t, s, "tls", "influx"); n != 1 {
		t.Errorf("influx story: %d events, want 1", n)
	}

	// fluent-logger-golang over TLS, waiting for each ack.
	host, port := splitHostPort(t, s.ForwardAddr())
	fl, err := fluent.New(fluent.Config{FluentNetwork: "tls", FluentHost: host, FluentPort: port,
		TlsInsecureSkipVerify: true, RequestAck: true, Timeout: 10 * time.Second, WriteTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := fl.Post("tls.app", map[string]any{"i": i}); err != nil {
			t.Fatalf("fluent-logger-golang over TLS: %v", err)
		}
	}
	fl.Close()
	if n := countStory(t, s, "logs", "tls.app"); n != 3 {
		t.Errorf("forward story: %d events, want 3", n)
	}

	// Graphite plaintext lines inside TLS.
	tcp, _ := s.GraphiteAddr()
	conn, err := tls.Dial("tcp", tcp, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "tls.graphite 42 %d\n", time.Now().Unix())
	conn.Close()
	testutil.Eventually(t, 10*time.Second, func() bool { return countStory(t, s, "metrics", "tls.graphite") == 1 },
		"the Graphite line sent over TLS is stored")
}

// TestTLSClientCertificate: with --tls-client-ca, an https client without
// a certificate of that CA cannot connect, one with it can (tokens still
// apply on top).
func TestTLSClientCertificate(t *testing.T) {
	ca := tlstest.NewCA(t, "mtls")
	pair := ca.Server(t, "server")
	s := servertest.RunServer(t, server.Options{
		TLS: tlsconf.Options{CertFile: pair.CertFile, KeyFile: pair.KeyFile, ClientCAFile: ca.File}})
	get := func(certs ...tls.Certificate) (int, error) {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, Certificates: certs}}}
		resp, err := hc.Get("https://" + s.Addr() + "/health")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := get(); err == nil {
		t.Errorf("without a client certificate: %d", code)
	}
	if code, err := get(tlstest.NewCA(t, "other").Client(t, "mallory").TLS); err == nil {
		t.Errorf("with another CA's certificate: %d", code)
	}
	if code, err := get(ca.Client(t, "alice").TLS); err != nil || code != 200 {
		t.Errorf("with the CA's client certificate: %d %v", code, err)
	}
}

// TestTLSSelfSigned: --tls-self-signed serves https at once; a client that
// trusts the served certificate verifies it.
func TestTLSSelfSigned(t *testing.T) {
	s := servertest.RunServer(t, server.Options{TLS: tlsconf.Options{SelfSigned: true}})
	pool := x509PoolOf(s.TLSCertificate())
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get("https://" + s.Addr() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/health: %d", resp.StatusCode)
	}
}

func splitHostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	u, err := url.Parse("tcp://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(u.Port())
	return u.Hostname(), p
}

func x509PoolOf(c *tls.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Leaf)
	return p
}
