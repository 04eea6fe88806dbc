package canary

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
	"github.com/chronostream/chronostream/internal/tlsconf"
	"github.com/chronostream/chronostream/internal/tlsconf/tlstest"
)

// TestEveryProtocolAgainstASecuredServer: the canary's five protocols
// against a server with TLS from a private CA, client certificates
// required, a token and a Forward shared key with a user: Forward goes
// through the tunnel (TLS, the handshake), OTLP over https with the same
// roots and certificate.
func TestEveryProtocolAgainstASecuredServer(t *testing.T) {
	ca := tlstest.NewCA(t, "canary")
	srv, cli := ca.Server(t, "hub"), ca.Client(t, "canary")
	s := servertest.RunServer(t, server.Options{AutoCreate: true, ForwardAddr: "127.0.0.1:0",
		TLS:    tlsconf.Options{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: ca.File},
		Tokens: []string{"tok"}, ForwardSharedKey: "key", ForwardUsername: "u", ForwardPassword: "p"})
	cfg, err := tlsconf.Client(tlsconf.ClientOptions{CAFile: ca.File, CertFile: cli.CertFile, KeyFile: cli.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	_, sum := runCanary(t, Config{Server: "https://" + s.Addr(), Token: "tok", Protocols: Protocols, Rate: 20,
		Duration: 2 * time.Second, Sweep: 500 * time.Millisecond, ForwardAddr: s.ForwardAddr(),
		TLS: cfg, ForwardTLS: true, ForwardSharedKey: "key", ForwardUsername: "u", ForwardPassword: "p"})
	for _, p := range Protocols {
		n := sum.Protocols[p]
		if n.Acked == 0 || n.Acked != n.Sent || n.ReadSeen != n.Acked || n.Missing != 0 {
			t.Errorf("%s: %+v", p, n)
		}
	}
}

// TestForwardHandshakeChecksTheServer: the client's half of the handshake
// against servers that answer each way: a PONG that accepts but does not
// prove the server knows the key is refused (a server that does not know
// it must not be taken for the real one); a refusal carries the server's
// reason; nonces sent as str (Fluentd) or bin (chronostream) both do.
func TestForwardHandshakeChecksTheServer(t *testing.T) {
	const key = "shared"
	for _, tc := range []struct {
		name      string
		strNonce  bool
		ok        bool
		badDigest bool
		want      string // "" for success
	}{
		{name: "bin nonce", ok: true},
		{name: "str nonce (Fluentd)", strNonce: true, ok: true},
		{name: "digest does not prove the key", ok: true, badDigest: true, want: "does not prove"},
		{name: "refused", ok: false, want: "refused by the server: go away"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeForward(t, key, tc.strNonce, tc.ok, tc.badDigest)
			c := &Canary{cfg: Config{ForwardAddr: addr, ForwardSharedKey: key}}
			conn, err := c.dialForward(context.Background())
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				conn.Close()
				return
			}
			if err == nil {
				conn.Close()
				t.Fatal("accepted")
			}
			if !errors.Is(err, errRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want a refusal saying %q", err, tc.want)
			}
		})
	}
}

// TestForwardTLSNotTrusted: a Forward listener whose certificate the
// canary does not trust is a refusal that names --tls-ca, not a dial
// error to retry for ever.
func TestForwardTLSNotTrusted(t *testing.T) {
	ca := tlstest.NewCA(t, "fwd")
	pair := ca.Server(t, "hub")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair.TLS}})
	if err != nil {
		t.Fatal(err)
	}
	testutil.ServeEach(t, ln, func(conn net.Conn) { _ = conn.(*tls.Conn).Handshake() })
	c := &Canary{cfg: Config{ForwardAddr: ln.Addr().String(), ForwardTLS: true}}
	_, err = c.dialForward(context.Background())
	if !errors.Is(err, errRefused) || !strings.Contains(err.Error(), "--tls-ca") {
		t.Errorf("error %v, want a refusal naming --tls-ca", err)
	}
}

// fakeForward serves one handshake per connection as the test asks.
func fakeForward(t *testing.T, key string, strNonce, ok, badDigest bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testutil.ServeEach(t, ln, func(conn net.Conn) {
		nonce := []byte("0123456789abcdef")
		b := msgp.AppendArrayHeader(nil, 2)
		b = msgp.AppendString(b, "HELO")
		b = msgp.AppendMapHeader(b, 2)
		b = msgp.AppendString(b, "nonce")
		if strNonce {
			b = msgp.AppendString(b, string(nonce))
		} else {
			b = msgp.AppendBytes(b, nonce)
		}
		b = msgp.AppendString(b, "keepalive")
		b = msgp.AppendBool(b, true)
		if _, err := conn.Write(b); err != nil {
			return
		}
		r := msgp.NewReader(conn)
		if n, err := r.ReadArrayHeader(); err != nil || n != 6 {
			return
		}
		word, _ := r.ReadString()
		_, _ = r.ReadString() // hostname
		salt, _ := r.ReadBytes(nil)
		for range 3 { // key digest, username, password digest
			_ = r.Skip()
		}
		if word != "PING" {
			return
		}
		d := digest(salt, []byte("fake"), nonce, []byte(key))
		if badDigest {
			d = digest(salt, []byte("fake"), nonce, []byte("not the key"))
		}
		reason := ""
		if !ok {
			reason, d = "go away", ""
		}
		b = msgp.AppendArrayHeader(nil, 5)
		b = msgp.AppendString(b, "PONG")
		b = msgp.AppendBool(b, ok)
		b = msgp.AppendString(b, reason)
		b = msgp.AppendString(b, "fake")
		b = msgp.AppendString(b, d)
		_, _ = conn.Write(b)
		_, _ = io.Copy(io.Discard, conn) // closed by the client: nothing lost to a reset
	})
	return ln.Addr().String()
}
