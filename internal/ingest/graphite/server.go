package graphite

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/store"
)

// Protocols name the sources this transport records; metrics are labelled
// MetricProtocol for both.
const (
	ProtocolTCP    = "graphite-tcp"
	ProtocolUDP    = "graphite-udp"
	MetricProtocol = "graphite"
)

// Defaults of Config.
const (
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultFlushLines    = 16384
	// drainGrace is the pause in what senders send that ends shutdown's
	// drain of a connection (or of the UDP listener): each read of the
	// drain waits at most this long.
	drainGrace = 100 * time.Millisecond
)

// graphiteBatch sizes the pipeline's batches for Graphite's shape: many
// metric names (stories) with a sample or a few each per interval, so many
// small batches in flight rather than a few large ones.
var graphiteBatch = ingest.BatchOptions{Events: 256, Bytes: 16 << 10, InFlight: 256}

// Config configures the Graphite transport. Config.DefaultChronicle is the
// chronicle every sample goes to.
type Config struct {
	ingest.Config
	// Listen, if set, wraps the TCP listener (connection caps, TLS); UDP
	// stays plaintext and uncapped.
	Listen func(net.Listener) net.Listener
	// MaxLineBytes bounds a line (without its terminator); 0 means
	// DefaultMaxLineBytes. A longer line is counted and skipped.
	MaxLineBytes int
	// FlushInterval bounds how long a received line waits before it is
	// appended: Graphite has no acknowledgement, so this only trades
	// appends per second for latency. 0 means DefaultFlushInterval.
	FlushInterval time.Duration
	// FlushLines flushes a connection's window early after this many lines.
	FlushLines int
	// Batch sizes the pipelined appends; zero fields take this package's
	// defaults, tuned for many metric names per connection.
	Batch ingest.BatchOptions
}

// Server is the Graphite plaintext listener, TCP and UDP on one port.
// Durability is best effort after receipt: Graphite has no
// acknowledgement, so a sender cannot learn whether a line was stored.
// Lines are appended within FlushInterval of their arrival, and Shutdown
// appends what was received before it returns.
type Server struct {
	cfg      Config
	appender *ingest.Appender
	warn     *ingest.ThrottledLogger
	// stall is how long a TCP line may stop arriving, in its middle,
	// before the connection is cut (Limits.BodyReadTimeout; 0: never).
	stall time.Duration

	tcp       net.Listener
	udp       *net.UDPConn
	udpReader *reader
	udpInode  uint64 // names the socket in /proc/net/udp; 0: drops not counted

	// UDP windows and receive buffer (defaults in udp.go).
	udpWindows, udpWindowBytes, udpReadBuffer int

	ctx    context.Context // bounds durability waits; canceled when Shutdown gives up
	cancel context.CancelFunc

	mu      sync.Mutex
	conns   map[*reader]struct{}
	closing bool
	wg      sync.WaitGroup
}

// New validates cfg and returns a server that is not listening yet.
func New(cfg Config) (*Server, error) {
	cfg.Config = cfg.Config.WithDefaults()
	if cfg.Log == nil {
		return nil, errors.New("graphite: a log is required")
	}
	if err := event.ValidateChronicle(cfg.DefaultChronicle); err != nil {
		return nil, fmt.Errorf("graphite: metrics chronicle: %w", err)
	}
	if cfg.MaxLineBytes <= 0 {
		cfg.MaxLineBytes = DefaultMaxLineBytes
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.FlushLines <= 0 {
		cfg.FlushLines = DefaultFlushLines
	}
	b := cfg.Batch
	if b.Events <= 0 {
		b.Events = graphiteBatch.Events
	}
	if b.Bytes <= 0 {
		b.Bytes = max(graphiteBatch.Bytes, cfg.MaxLineBytes)
	}
	if b.InFlight <= 0 {
		b.InFlight = graphiteBatch.InFlight
	}
	ctx, cancel := context.WithCancel(context.Background())
	stall := cfg.Limits.BodyReadTimeout
	if stall == 0 {
		stall = ingest.DefaultBodyReadTimeout
	}
	return &Server{
		cfg:      cfg,
		stall:    max(stall, 0),
		appender: ingest.NewAppender(cfg.Log, b),
		warn:     ingest.NewThrottledLogger(cfg.Logger, time.Second),
		ctx:      ctx,
		cancel:   cancel,
		conns:    map[*reader]struct{}{},

		udpWindows:     defaultUDPWindows,
		udpWindowBytes: defaultUDPWindowBytes,
		udpReadBuffer:  defaultUDPReadBuffer,
	}, nil
}

// Start listens on addr, TCP and UDP on the same port, and serves until
// Shutdown. With port 0 both get one free port.
func (s *Server) Start(addr string) error {
	if err := s.listen(addr); err != nil {
		return err
	}
	_ = s.udp.SetReadBuffer(s.udpReadBuffer) // ride out bursts while windows are appended
	udpSrc := store.Source{ID: store.NewSourceID(), Protocol: ProtocolUDP, Remote: "", Chronicle: s.cfg.DefaultChronicle, Start: time.Now().UTC()}
	s.udpReader = s.newReader(udpSrc, nil)
	if ino := udpSocketInode(s.udp); ino != 0 {
		if d, ok := udpDrops(ino); ok {
			s.udpInode, s.udpReader.drops = ino, d
		}
	}
	s.wg.Add(2)
	go s.accept()
	go func() {
		defer s.wg.Done()
		s.serveUDP(s.udpReader)
	}()
	return nil
}

// listen binds both listeners. For port 0 it retries a few times, in case
// the TCP port it got is taken for UDP.
func (s *Server) listen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("graphite: address %q: %w", addr, err)
	}
	tries := 1
	if port == "0" {
		tries = 10
	}
	for i := 0; ; i++ {
		tl, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("graphite: listen TCP: %w", err)
		}
		p := strconv.Itoa(tl.Addr().(*net.TCPAddr).Port)
		ua, err := net.ResolveUDPAddr("udp", net.JoinHostPort(host, p))
		if err != nil {
			tl.Close()
			return fmt.Errorf("graphite: %w", err)
		}
		ul, err := net.ListenUDP("udp", ua)
		if err == nil {
			if s.cfg.Listen != nil { // TCP only: UDP stays as it is
				tl = s.cfg.Listen(tl)
			}
			s.tcp, s.udp = tl, ul
			return nil
		}
		tl.Close()
		if i+1 >= tries || !errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("graphite: listen UDP: %w", err)
		}
	}
}

// TCPAddr and UDPAddr are the bound addresses (useful with port 0).
func (s *Server) TCPAddr() string { return s.tcp.Addr().String() }

// UDPAddr is the bound UDP address.
func (s *Server) UDPAddr() string { return s.udp.LocalAddr().String() }

func (s *Server) accept() {
	defer s.wg.Done()
	ingest.AcceptLoop(s.tcp, s.warn, "graphite", func(c net.Conn) {
		// A TCP connection is counted in its client's source: senders
		// that connect per flush would otherwise leave a record each.
		src := store.Source{Protocol: ProtocolTCP, Remote: c.RemoteAddr().String(),
			Chronicle: s.cfg.DefaultChronicle, Start: time.Now().UTC()}
		client := s.cfg.Clients.Open(&src)
		r := s.newReader(src, c)
		r.client = client
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			c.Close() // Shutdown gave up; nothing was read of it
			return
		}
		// Accepted during shutdown (it was in the backlog, or came within
		// the drain): its lines were acknowledged by TCP, so it is drained
		// like any connection.
		closing := s.closing
		s.conns[r] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		if closing {
			r.stop()
		}
		go func() {
			defer s.wg.Done()
			s.serveTCP(r)
			s.mu.Lock()
			delete(s.conns, r)
			s.mu.Unlock()
		}()
	})
}

// Shutdown stops accepting (after taking the connections already in the
// listener's backlog), drains every connection and the UDP listener —
// reads until a sender has paused for drainGrace, appending every window
// as it goes — and waits until all is durable. If ctx ends first it stops
// waiting: what was received but not stored is counted (canceled,
// shutdown_unread), and it returns ctx's error. It closes every
// connection.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closing = true
	readers := make([]*reader, 0, len(s.conns))
	for r := range s.conns {
		readers = append(readers, r)
	}
	s.mu.Unlock()
	if tl, ok := s.tcp.(*net.TCPListener); ok {
		// Accept what is in the backlog and what arrives within the
		// grace; accept closes the listener at the deadline.
		if tl.SetDeadline(time.Now().Add(drainGrace)) != nil {
			tl.Close()
		}
	} else if s.tcp != nil {
		s.tcp.Close()
	}
	for _, r := range readers {
		r.stop()
	}
	if s.udpReader != nil {
		s.udpReader.stop()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	defer s.cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	// Give up: durability waits end (s.ctx), and readers count what is
	// left rather than read on.
	s.mu.Lock()
	s.cancel()
	readers = readers[:0]
	for r := range s.conns {
		readers = append(readers, r)
	}
	s.mu.Unlock()
	if s.tcp != nil {
		s.tcp.Close()
	}
	for _, r := range readers {
		r.abort()
	}
	if s.udpReader != nil {
		s.udpReader.abort()
	}
	<-done
	return fmt.Errorf("graphite: shutdown: %w", ctx.Err())
}
