package canary

import (
	"context"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"
	"github.com/tinylib/msgp/msgp"

	"github.com/chronostream/chronostream/internal/tlsconf"
)

// forwardWriter sends Fluent Forward messages with fluent-logger-golang,
// each with a chunk id that the server acknowledges once durable. The
// library's own retries are off (MaxRetry 1): every resend is the
// canary's, so it knows which events may be stored twice.
//
// The library (v1.10) cannot verify a server's certificate against a
// private CA, present a client certificate, or authenticate with the
// handshake (fluent-logger-golang issues #112 and #118). When the server
// wants any of these, the library talks to a tunnel instead, which carries
// each of its connections to the server over one the canary dialled and
// authenticated itself; the events and acks on it are still the
// library's.
type forwardWriter struct {
	c      *Canary
	tag    string
	f      *fluent.Fluent
	tunnel *tunnel // nil: the library connects to the server itself
}

func (c *Canary) newForwardWriter(tag string) (*forwardWriter, error) {
	w := &forwardWriter{c: c, tag: tag}
	if _, _, err := splitHostPort(c.cfg.ForwardAddr); err != nil {
		return nil, err
	}
	if c.cfg.ForwardTLS || c.cfg.ForwardSharedKey != "" {
		t, err := newTunnel(c.dialForward)
		if err != nil {
			return nil, fmt.Errorf("canary forward: %w", err)
		}
		w.tunnel = t
	}
	return w, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("canary: --forward %q: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", 0, fmt.Errorf("canary: --forward %q: %w", addr, err)
	}
	return host, p, nil
}

func (w *forwardWriter) connect() error {
	cfg := fluent.Config{MaxRetry: 1, RequestAck: true,
		Timeout: 5 * time.Second, WriteTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second}
	if w.tunnel != nil {
		cfg.FluentNetwork, cfg.FluentSocketPath = "unix", w.tunnel.path
		w.tunnel.takeErr() // a new connection: an older failure is not its
	} else {
		cfg.FluentHost, cfg.FluentPort, _ = splitHostPort(w.c.cfg.ForwardAddr)
	}
	// New connects (a failure there stored nothing); a failure of Post
	// then is after the connection was made.
	f, err := fluent.New(cfg)
	if err != nil {
		return &net.OpError{Op: "dial", Net: "tcp", Err: err}
	}
	w.f = f
	return nil
}

func (w *forwardWriter) write(ctx context.Context, batch []payload) error {
	if w.f == nil {
		if err := w.connect(); err != nil {
			return err
		}
	}
	for i, p := range batch {
		if err := w.f.PostWithTime(w.tag, p.sent, w.c.jsonPayload("forward", p)); err != nil {
			w.f.Close()
			w.f = nil
			// The library's error says little ("failed to write after 1
			// attempts"); the tunnel knows when the server was not reached.
			if w.tunnel != nil {
				if terr := w.tunnel.takeErr(); terr != nil {
					err = terr
				}
			}
			// Each message before this one was acknowledged on its own.
			return &partialError{acked: i, err: err}
		}
	}
	return nil
}

// probe connects once before the run, so that a setting the server
// refuses (the key, a certificate) stops the canary at once with the
// reason rather than as a stream of refused batches.
func (w *forwardWriter) probe(ctx context.Context) error {
	conn, err := w.c.dialForward(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if w.c.cfg.ForwardSharedKey == "" {
		// A server with a shared key greets with HELO; one without waits.
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		var b [1]byte
		if n, _ := conn.Read(b[:]); n > 0 {
			return fmt.Errorf("%w: forward %s: the server wants the handshake: give its key with --forward-shared-key", errRefused, w.c.cfg.ForwardAddr)
		}
	}
	return nil
}

func (w *forwardWriter) close(context.Context) error {
	var err error
	if w.f != nil {
		err = w.f.Close()
	}
	if w.tunnel != nil {
		w.tunnel.close()
	}
	return err
}

// dialForward connects to the Forward listener, over TLS when configured,
// and authenticates with the handshake when a shared key is configured.
// A failure before the connection is ready is a dial error (nothing was
// sent); one that retrying will not cure (a certificate not trusted, the
// key refused) wraps errRefused.
func (c *Canary) dialForward(ctx context.Context) (net.Conn, error) {
	addr := c.cfg.ForwardAddr
	d := &net.Dialer{Timeout: 5 * time.Second}
	var conn net.Conn
	var err error
	if c.cfg.ForwardTLS {
		conn, err = (&tls.Dialer{NetDialer: d, Config: c.cfg.TLS}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err == nil && c.cfg.ForwardSharedKey != "" {
		if err = c.forwardHandshake(conn); err != nil {
			conn.Close()
		}
	}
	switch {
	case err == nil:
		return conn, nil
	case errors.Is(err, errRefused):
		return nil, err
	case tlsconf.Permanent(err):
		return nil, fmt.Errorf("%w: forward %s: %w", errRefused, addr, tlsconf.Explain(err))
	default:
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("forward %s: %w", addr, err)}
	}
}

// handshakeTimeout bounds the whole handshake: the server sends HELO at
// once and answers PING at once.
const handshakeTimeout = 10 * time.Second

// forwardHandshake is the client's half of the Forward protocol's
// handshake: read HELO, send PING with the shared key's digest (and the
// user's, when the HELO asks for one), and check the PONG, including the
// server's own digest of the key, so a server that does not know the key
// is not taken for the real one.
func (c *Canary) forwardHandshake(conn net.Conn) error {
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	defer conn.SetDeadline(time.Time{})
	// Nothing follows PONG until the client sends events, so this reader
	// buffers nothing that belongs to the library.
	r := msgp.NewReader(io.LimitReader(conn, 64<<10))
	r.SetMaxStringLength(4 << 10)
	nonce, authSalt, err := readHELO(r)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("forward handshake: no HELO from the server within %v: has it a --forward-shared-key, and does it want TLS (--forward-tls)?", handshakeTimeout)
	}
	if err != nil {
		return fmt.Errorf("forward handshake: HELO: %w", err)
	}
	host, _ := os.Hostname()
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	user, passDigest := "", ""
	if len(authSalt) > 0 {
		if c.cfg.ForwardUsername == "" {
			return fmt.Errorf("%w: forward handshake: the server wants a username and password (--forward-username, --forward-password)", errRefused)
		}
		user = c.cfg.ForwardUsername
		passDigest = digest(authSalt, []byte(user), []byte(c.cfg.ForwardPassword))
	}
	// ["PING", hostname, shared_key_salt, sha512_hex(salt, hostname, nonce, key), username, sha512_hex(auth_salt, username, password)]
	b := msgp.AppendArrayHeader(nil, 6)
	b = msgp.AppendString(b, "PING")
	b = msgp.AppendString(b, host)
	b = msgp.AppendBytes(b, salt)
	b = msgp.AppendString(b, digest(salt, []byte(host), nonce, []byte(c.cfg.ForwardSharedKey)))
	b = msgp.AppendString(b, user)
	b = msgp.AppendString(b, passDigest)
	if _, err := conn.Write(b); err != nil {
		return fmt.Errorf("forward handshake: PING: %w", err)
	}
	ok, reason, serverHost, serverDigest, err := readPONG(r)
	if err != nil {
		return fmt.Errorf("forward handshake: PONG: %w", err)
	}
	if !ok {
		return fmt.Errorf("%w: forward handshake refused by the server: %s (check --forward-shared-key, --forward-username, --forward-password)", errRefused, reason)
	}
	want := digest(salt, []byte(serverHost), nonce, []byte(c.cfg.ForwardSharedKey))
	if subtle.ConstantTimeCompare([]byte(serverDigest), []byte(want)) != 1 {
		return fmt.Errorf("%w: forward handshake: the server's PONG does not prove it knows the shared key", errRefused)
	}
	return nil
}

func digest(parts ...[]byte) string {
	h := sha512.New()
	for _, p := range parts {
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// readHELO reads ["HELO", {"nonce": bin, "auth": bin, "keepalive": bool}].
// Fluentd sends the nonce and salt as str, chronostream as bin: both do.
func readHELO(r *msgp.Reader) (nonce, authSalt []byte, err error) {
	if err := readHead(r, "HELO", 2); err != nil {
		return nil, nil, err
	}
	n, err := r.ReadMapHeader()
	if err != nil {
		return nil, nil, err
	}
	for range n {
		k, err := r.ReadString()
		if err != nil {
			return nil, nil, err
		}
		switch k {
		case "nonce":
			nonce, err = readBlob(r)
		case "auth":
			authSalt, err = readBlob(r)
		default:
			err = r.Skip()
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%q: %w", k, err)
		}
	}
	if len(nonce) == 0 {
		return nil, nil, errors.New("no nonce")
	}
	return nonce, authSalt, nil
}

// readPONG reads ["PONG", auth_result, reason, server_hostname, shared_key_hexdigest].
func readPONG(r *msgp.Reader) (ok bool, reason, host, hexDigest string, err error) {
	if err = readHead(r, "PONG", 5); err != nil {
		return
	}
	if ok, err = r.ReadBool(); err != nil {
		return
	}
	if reason, err = r.ReadString(); err != nil {
		return
	}
	if host, err = r.ReadString(); err != nil {
		return
	}
	hexDigest, err = r.ReadString()
	return
}

// readHead reads the header of a handshake message: an array of n
// elements whose first is the word.
func readHead(r *msgp.Reader, word string, n uint32) error {
	sz, err := r.ReadArrayHeader()
	if err != nil {
		return err
	}
	got, err := r.ReadString()
	if err != nil {
		return err
	}
	if got != word || sz != n {
		return fmt.Errorf("want a %d-element %s, got %d elements starting %q (is a shared key configured on the server?)", n, word, sz, got)
	}
	return nil
}

func readBlob(r *msgp.Reader) ([]byte, error) {
	t, err := r.NextType()
	if err != nil {
		return nil, err
	}
	if t == msgp.StrType {
		return r.ReadStringAsBytes(nil)
	}
	return r.ReadBytesLimit(nil, 4<<10)
}

// tunnel carries the connections fluent-logger-golang makes to a unix
// socket in a private directory (no other user can reach it) to the
// Forward listener, each over a connection that dial made (TLS, the
// handshake). When dial fails, the library's connection is closed and the
// failure kept for the writer (takeErr): the library only reports that
// its write failed.
type tunnel struct {
	dir, path string
	ln        net.Listener
	dial      func(context.Context) (net.Conn, error)
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	mu  sync.Mutex
	err error // why the last connection was not carried
}

func newTunnel(dial func(context.Context) (net.Conn, error)) (*tunnel, error) {
	dir, err := os.MkdirTemp("", "chronostream-canary-")
	if err != nil {
		return nil, err
	}
	t := &tunnel{dir: dir, path: filepath.Join(dir, "forward.sock"), dial: dial}
	if t.ln, err = net.Listen("unix", t.path); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.wg.Go(t.accept)
	return t, nil
}

func (t *tunnel) accept() {
	for {
		local, err := t.ln.Accept()
		if err != nil {
			return // closed
		}
		t.wg.Go(func() { t.carry(local) })
	}
}

func (t *tunnel) carry(local net.Conn) {
	defer local.Close()
	up, err := t.dial(t.ctx)
	if err != nil {
		// Kept before local is closed: the writer, seeing its write fail,
		// finds it.
		t.mu.Lock()
		t.err = err
		t.mu.Unlock()
		return
	}
	defer up.Close()
	stop := context.AfterFunc(t.ctx, func() { up.Close() })
	defer stop()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(up, local)
	go pipe(local, up)
	<-done // either side gone: close both, which ends the other copy
	local.Close()
	up.Close()
	<-done
}

func (t *tunnel) takeErr() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	err := t.err
	t.err = nil
	return err
}

func (t *tunnel) close() {
	t.cancel()
	t.ln.Close()
	t.wg.Wait()
	os.RemoveAll(t.dir)
}
