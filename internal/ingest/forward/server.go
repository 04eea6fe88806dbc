package forward

import (
	"context"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/store"
)

// Protocol names this transport's sources and metrics.
const Protocol = "forward"

// Defaults of Config.
const (
	DefaultChronicle        = "logs"
	DefaultFlushInterval    = 100 * time.Millisecond
	DefaultFlushRecords     = 16384
	DefaultHandshakeTimeout = 10 * time.Second
	// drainGrace is how long shutdown keeps reading what clients already
	// sent before the last flush.
	drainGrace = 100 * time.Millisecond
	ackTimeout = 10 * time.Second
)

// Config configures the Forward transport. Config.DefaultChronicle is the
// chronicle of every tag (DefaultChronicle when empty), unless
// TagChronicle; Limits.MaxBodyBytes bounds a message (also once
// decompressed) and Limits.MaxEventBytes a record.
type Config struct {
	ingest.Config
	// TagChronicle maps a tag's first dot-separated segment to the
	// chronicle and the rest to the story (see Target).
	TagChronicle bool
	// SharedKey, when set, makes every client authenticate with the
	// handshake (HELO, PING, PONG) before it may send events.
	SharedKey string
	// Username and Password, when set (with SharedKey), are the
	// credentials the handshake also requires.
	Username, Password string
	// Listen, if set, wraps the listener: connection caps, TLS (Fluent
	// Bit's tls on, Fluentd's <transport tls>).
	Listen func(net.Listener) net.Listener
	// Hostname is the server's name in PONG; os.Hostname() when empty.
	Hostname string
	// MaxRecords bounds the events of one message (DefaultLimits.MaxRecords).
	MaxRecords int
	// FlushInterval bounds how long a record of a message without the
	// chunk option waits before it is appended; FlushRecords appends a
	// connection's window early after this many records.
	FlushInterval time.Duration
	FlushRecords  int
	// HandshakeTimeout bounds the wait for a client's PING.
	HandshakeTimeout time.Duration
	Batch            ingest.BatchOptions
	// Rate bounds the events and bytes a second of each client address
	// (its MaxTails is ignored; zero: no limit). A message over it waits,
	// unread further, and one that asks for an ack is refused after
	// RateWait (DefaultRateWait when zero): see conn.pace.
	Rate     auth.Limits
	RateWait time.Duration
}

// Server is the Fluent Forward listener (TCP).
type Server struct {
	cfg Config
	lim Limits
	// stall is how long a message may stop arriving, in its middle,
	// before the connection is cut (Limits.BodyReadTimeout; 0: never).
	stall    time.Duration
	appender *ingest.Appender
	warn     *ingest.ThrottledLogger
	ln       net.Listener
	conns    ingest.ConnSet
	clients  *clients // per-address rates (nil: none)

	ctx    context.Context // bounds durability waits; canceled when Shutdown gives up
	cancel context.CancelFunc
	// stopping is canceled when Shutdown starts: it ends rate waits, so
	// the waiting messages are stored before the connections close.
	stopping context.Context
	stop     context.CancelFunc
}

// New validates cfg and returns a server that is not listening yet.
func New(cfg Config) (*Server, error) {
	if cfg.DefaultChronicle == "" {
		cfg.DefaultChronicle = DefaultChronicle
	}
	cfg.Config = cfg.Config.WithDefaults()
	if cfg.Log == nil {
		return nil, errors.New("forward: a log is required")
	}
	if err := event.ValidateChronicle(cfg.DefaultChronicle); err != nil {
		return nil, fmt.Errorf("forward: chronicle: %w", err)
	}
	if (cfg.Username != "" || cfg.Password != "") && cfg.SharedKey == "" {
		return nil, errors.New("forward: a username and password need a shared key (the handshake carries them)")
	}
	if cfg.Password != "" && cfg.Username == "" {
		// The handshake checks the password only with a username: without
		// one, any client would pass.
		return nil, errors.New("forward: a password needs a username")
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
		if cfg.Hostname == "" {
			cfg.Hostname = "chronostream"
		}
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.FlushRecords <= 0 {
		cfg.FlushRecords = DefaultFlushRecords
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.RateWait <= 0 {
		cfg.RateWait = DefaultRateWait
	}
	stall := cfg.Limits.BodyReadTimeout
	if stall == 0 {
		stall = ingest.DefaultBodyReadTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopping, stop := context.WithCancel(context.Background())
	return &Server{
		cfg:   cfg,
		stall: max(stall, 0),
		lim: Limits{MaxMessageBytes: int(cfg.Limits.MaxBodyBytes), MaxRecords: cfg.MaxRecords,
			MaxRecordBytes: ingest.EventLimit(cfg.Log, cfg.Limits.MaxEventBytes, store.NewSourceID())},
		appender: ingest.NewAppender(cfg.Log, cfg.Batch),
		warn:     ingest.NewThrottledLogger(cfg.Logger, time.Second),
		clients:  newClients(cfg.Rate),
		ctx:      ctx,
		cancel:   cancel,
		stopping: stopping,
		stop:     stop,
	}, nil
}

// Target returns the chronicle and story of a tag: the rule shared by
// every protocol whose records carry a Fluent tag (ingest.TagTarget). By
// default every tag is a story of the configured chronicle; with
// TagChronicle, "app.web.access" is story "web.access" of chronicle "app".
func (s *Server) Target(tag string) (chronicle, story string) {
	return ingest.TagTarget(tag, s.cfg.DefaultChronicle, s.cfg.TagChronicle)
}

// Start listens on addr and serves until Shutdown.
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("forward: listen: %w", err)
	}
	if s.cfg.Listen != nil {
		ln = s.cfg.Listen(ln)
	}
	s.ln = ln
	s.conns.Add(func() {
		ingest.AcceptLoop(ln, s.warn, "forward", func(nc net.Conn) {
			c := s.newConn(nc)
			if !s.conns.Go(c, c.serve) {
				nc.Close()
			}
		})
	})
	return nil
}

// Addr is the bound address (useful with port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops accepting, reads for a moment what clients already sent,
// stores every whole message received (acknowledging those that ask) and
// waits until it is durable (or ctx ends), then closes every connection.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.ln != nil {
		s.ln.Close()
	}
	s.stop()
	s.conns.Close(time.Now().Add(drainGrace))
	defer s.cancel()
	if err := s.conns.Wait(ctx, s.cancel); err != nil {
		return fmt.Errorf("forward: shutdown: %w", err)
	}
	return nil
}

// handshake state of a connection.
type handshake struct {
	nonce, authSalt []byte
	deadline        time.Time
}

func (s *Server) helo(c *conn) error {
	h := &handshake{nonce: make([]byte, 16), deadline: time.Now().Add(s.cfg.HandshakeTimeout)}
	_, _ = rand.Read(h.nonce)
	if s.cfg.Username != "" {
		h.authSalt = make([]byte, 16)
		_, _ = rand.Read(h.authSalt)
	}
	// ["HELO", {"nonce": bin, "auth": bin (empty: no user auth), "keepalive": true}]
	b := msgp.AppendArrayHeader(nil, 2)
	b = msgp.AppendString(b, "HELO")
	b = msgp.AppendMapHeader(b, 3)
	b = msgp.AppendString(b, "nonce")
	b = msgp.AppendBytes(b, h.nonce)
	b = msgp.AppendString(b, "auth")
	b = msgp.AppendBytes(b, h.authSalt)
	b = msgp.AppendString(b, "keepalive")
	b = msgp.AppendBool(b, true)
	c.hs = h
	return c.write(b)
}

// pong checks a PING and answers it. A failed check is answered too (with
// the reason), and then the connection is closed.
func (s *Server) pong(c *conn, p *Ping) error {
	h := c.hs
	reason := ""
	if !hashEqual(p.SharedKeyHash, digest(p.SharedKeySalt, []byte(p.Hostname), h.nonce, []byte(s.cfg.SharedKey))) {
		reason = "shared key mismatch"
	} else if s.cfg.Username != "" && (p.Username != s.cfg.Username ||
		!hashEqual(p.PasswordHash, digest(h.authSalt, []byte(p.Username), []byte(s.cfg.Password)))) {
		reason = "username/password mismatch"
	}
	// ["PONG", auth_result, reason, server_hostname, shared_key_hexdigest].
	// A failed check is answered as Fluentd does, with an empty hostname
	// and digest: the digest proves the server knows the key, and sent to
	// a client that does not, it would let it find the key offline (the
	// salt and nonce are known to it).
	b := msgp.AppendArrayHeader(nil, 5)
	b = msgp.AppendString(b, "PONG")
	b = msgp.AppendBool(b, reason == "")
	b = msgp.AppendString(b, reason)
	if reason != "" {
		b = msgp.AppendString(b, "")
		b = msgp.AppendString(b, "")
	} else {
		b = msgp.AppendString(b, s.cfg.Hostname)
		b = msgp.AppendString(b, digest(p.SharedKeySalt, []byte(s.cfg.Hostname), h.nonce, []byte(s.cfg.SharedKey)))
	}
	werr := c.write(b)
	if reason != "" {
		return fail(ReasonAuthFailed, "handshake of %q failed: %s", p.Hostname, reason)
	}
	c.hs = nil
	c.src.Headers = map[string][]string{"Hostname": {p.Hostname}}
	if p.Username != "" {
		c.src.Headers["Username"] = []string{p.Username}
	}
	return werr
}

func digest(parts ...[]byte) string {
	h := sha512.New()
	for _, p := range parts {
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func hashEqual(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(got)), []byte(want)) == 1
}
