package sinkhttp_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/sink"
	"github.com/chronostream/chronostream/internal/sink/sinkhttp"
)

// writeClientCert writes a self-signed client certificate and its key.
func writeClientCert(t *testing.T, dir string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "chronostream sink"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

// A server that requires a client certificate (mutual TLS) is reached
// with the CA file and the client cert/key files, and only with them.
func TestClientCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, clientCert := writeClientCert(t, dir)
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello " + r.TLS.PeerCertificates[0].Subject.CommonName))
	}))
	pool := x509.NewCertPool()
	pool.AddCert(clientCert)
	hs.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	hs.StartTLS()
	t.Cleanup(hs.Close)
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	get := func(tl sinkhttp.TLS) (string, error) {
		c, err := sinkhttp.NewClient(tl, 5*time.Second)
		if err != nil {
			t.Fatalf("NewClient(%+v): %v", tl, err)
		}
		req, _ := sinkhttp.NewRequest(t.Context(), http.MethodGet, hs.URL+"/?token=secret", "", nil)
		body, err := sinkhttp.Do(c, req)
		return string(body), err
	}
	if body, err := get(sinkhttp.TLS{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}); err != nil || body != "hello chronostream sink" {
		t.Fatalf("with a client certificate: %q, %v", body, err)
	}
	_, err := get(sinkhttp.TLS{CAFile: caFile})
	if err == nil || sink.IsPermanent(err) {
		t.Fatalf("without a client certificate: err = %v, want a transient TLS error", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("the error quotes the URL's query: %v", err)
	}
}

func TestTLSFileErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	certFile, _, _ := writeClientCert(t, dir)
	for name, tl := range map[string]sinkhttp.TLS{
		"missing CA":       {CAFile: filepath.Join(dir, "none.pem")},
		"CA not PEM":       {CAFile: notPEM},
		"cert without key": {CertFile: certFile},
		"key not a key":    {CertFile: certFile, KeyFile: notPEM},
	} {
		if _, err := sinkhttp.NewClient(tl, 0); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := sinkhttp.NewClient(sinkhttp.TLS{}, -time.Second); err == nil {
		t.Error("negative timeout accepted")
	}
}
