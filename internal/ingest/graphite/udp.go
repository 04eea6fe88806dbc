package graphite

import (
	"bytes"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/chronostream/chronostream/internal/ingest"
)

// UDP: one goroutine reads datagrams into a window, and hands it, when its
// time is up or it is full, to a second goroutine that decodes and appends
// it and waits until it is durable, in order. Reading never waits for the
// log unless udpWindows windows are all in flight: a UDP sender cannot be
// slowed down, and what the socket's buffer cannot hold meanwhile is lost.
// Those losses are counted from the kernel's drop count of the socket
// (udp_overflow, Linux only: udpdrops_linux.go).

// Defaults of the Server's UDP fields.
const (
	// defaultUDPWindows is how many windows exist: one being read into,
	// the others queued or being appended.
	defaultUDPWindows = 4
	// defaultUDPWindowBytes closes a window early once it holds this much.
	defaultUDPWindowBytes = 4 << 20
	// defaultUDPReadBuffer is the receive buffer asked of the kernel (which
	// caps it at net.core.rmem_max).
	defaultUDPReadBuffer = 4 << 20
)

// udpWindow holds datagrams as read, for the appending goroutine.
type udpWindow struct {
	buf    []byte
	dgrams []udpDatagram
	lines  int // an upper bound: newlines plus one per datagram
}

type udpDatagram struct {
	end int   // offset in buf of the datagram's end
	at  int64 // time of receipt, Unix ns
}

func (w *udpWindow) add(p []byte, at int64) {
	w.buf = append(w.buf, p...)
	w.dgrams = append(w.dgrams, udpDatagram{end: len(w.buf), at: at})
	w.lines += bytes.Count(p, []byte{'\n'}) + 1
}

func (w *udpWindow) reset() {
	w.buf, w.dgrams, w.lines = w.buf[:0], w.dgrams[:0], 0
}

// serveUDP reads datagrams until the end of shutdown's drain. Each
// datagram holds whole lines; its last line needs no terminator.
func (s *Server) serveUDP(r *reader) {
	queued := make(chan *udpWindow, s.udpWindows)
	free := make(chan *udpWindow, s.udpWindows)
	appended := make(chan struct{})
	go func() {
		defer close(appended)
		for w := range queued {
			r.appendWindow(w)
			w.reset()
			free <- w
		}
	}()
	defer func() {
		close(queued)
		<-appended
		r.pollDrops(true) // before Close: the count goes with the socket
		s.udp.Close()
		r.finish()
	}()

	made := 0
	get := func() *udpWindow {
		select {
		case w := <-free:
			return w
		default:
		}
		if made < s.udpWindows {
			made++
			return &udpWindow{}
		}
		return <-free // every window is in flight: the log is behind
	}
	var cur *udpWindow
	var curStart time.Time
	handOff := func() {
		if cur != nil {
			queued <- cur
			cur = nil
		}
	}
	read := func(p []byte) (int, error) {
		n, _, err := s.udp.ReadFromUDPAddrPort(p)
		if m := s.cfg.Metrics; m != nil && n > 0 {
			m.IngestBytes.WithLabelValues(MetricProtocol).Add(float64(n))
		}
		return n, err
	}
	buf := make([]byte, 64<<10) // the largest UDP payload fits
	for {
		if r.givingUp() {
			handOff()
			r.countUnread(read, buf, nil, false, true)
			return
		}
		r.arm(cur != nil, curStart)
		n, err := read(buf)
		if n > 0 {
			if cur == nil {
				cur = get()
				curStart = time.Now()
			}
			cur.add(buf[:n], time.Now().UnixNano())
			if cur.lines >= s.cfg.FlushLines || len(cur.buf) >= s.udpWindowBytes {
				handOff()
			}
		}
		switch {
		case err == nil:
		case ingest.IsTimeout(err) && cur != nil:
			handOff() // the window's time is up, or a drain found a pause
		case ingest.IsTimeout(err) && r.draining && !r.givingUp():
			return // a drain's read waited drainGrace for nothing
		case ingest.IsTimeout(err):
			// Woken by stop or abort: the loop arms the drain or gives up.
		case errors.Is(err, net.ErrClosed):
			handOff()
			return
		default:
			// ICMP errors and the like concern one datagram, not the socket.
			s.warn.Warn("graphite: UDP read failed", "err", err)
		}
	}
}

// appendWindow decodes a window's datagrams into appends and waits until
// they are durable. Once the server gave up waiting (s.ctx ended), its
// lines are counted as canceled without being appended.
func (r *reader) appendWindow(w *udpWindow) {
	s := r.s
	if s.ctx.Err() != nil {
		c := lineCounter{}
		for i, d := range w.dgrams {
			from := 0
			if i > 0 {
				from = w.dgrams[i-1].end
			}
			c.feed(w.buf[from:d.end])
			c.end()
		}
		if m := s.cfg.Metrics; m != nil && c.n > 0 {
			m.IngestErrors.WithLabelValues(MetricProtocol, "canceled").Add(float64(c.n))
		}
		return
	}
	from := 0
	for _, d := range w.dgrams {
		Lines(w.buf[from:d.end], func(line []byte) {
			if len(line) > s.cfg.MaxLineBytes {
				r.reject(ReasonLineTooLong, "line longer than "+strconv.Itoa(s.cfg.MaxLineBytes)+" bytes", line)
				return
			}
			r.add(line, d.at)
		})
		from = d.end
		if r.lines >= s.cfg.FlushLines {
			r.flush()
		}
	}
	r.flush()
	r.pollDrops(false)
}

// pollDrops counts the datagrams the kernel dropped on the socket since
// the last look, as udp_overflow; without force at most once per
// FlushInterval.
func (r *reader) pollDrops(force bool) {
	s := r.s
	if s.udpInode == 0 {
		return
	}
	now := time.Now()
	if !force && now.Sub(r.dropsPolled) < s.cfg.FlushInterval {
		return
	}
	r.dropsPolled = now
	d, ok := udpDrops(s.udpInode)
	if !ok || d <= r.drops {
		return
	}
	lost := d - r.drops
	r.drops = d
	if m := s.cfg.Metrics; m != nil {
		m.IngestErrors.WithLabelValues(MetricProtocol, ReasonUDPOverflow).Add(float64(lost))
	}
	s.warn.Warn("graphite: the kernel dropped UDP datagrams: its receive buffer was full", "datagrams", lost,
		"reason", ReasonUDPOverflow, "hint", "raise net.core.rmem_max, or send over TCP")
}
