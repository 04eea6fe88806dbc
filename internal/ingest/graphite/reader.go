package graphite

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/store"
)

// reader turns the lines of one TCP connection, or of the UDP listener,
// into appends: lines go into a window (one ingest.Pipeline) that is closed
// — appended and waited for — FlushInterval after its first line, after
// FlushLines lines, or when the sender goes away.
//
// On TCP the connection's goroutine closes its windows itself: waiting for
// one before reading on is the back-pressure, so that TCP senders slow down
// rather than the server buffering without bound. UDP has no back-pressure
// (the kernel drops what its buffer cannot hold), so its reader hands
// windows to an appending goroutine and reads on (udp.go).
//
// Shutdown (stop) turns reading into draining: every read then waits at
// most drainGrace, a window whose time is up is still closed and reading
// goes on, and the reader is done once a read waited drainGrace for
// nothing with no window open. If the drain is given up (Shutdown's
// context ended, or maxDrain passed), what can still be read is counted as
// shutdown_unread rather than dropped silently.
type reader struct {
	s    *Server
	conn net.Conn // nil for UDP
	src  store.Source
	// setDeadline is the socket's SetReadDeadline.
	setDeadline func(time.Time) error

	// mu orders stop and abort with arm, so that a read armed before the
	// stop is never taken for a drained, quiet one.
	mu        sync.Mutex
	stopping  bool
	stoppedAt time.Time
	counting  bool // counting what is left: abort leaves the deadline alone
	// draining says that the last read was armed for the drain (reader's
	// goroutine only).
	draining bool
	// stallEnd, when set, is when the TCP line being received has
	// stopped arriving too long: a line that stops in its middle holds a
	// connection and its buffer (slowloris), so it is cut then (reader's
	// goroutine only).
	stallEnd time.Time

	// The window and what it is appended to: the TCP reader's goroutine,
	// or the UDP listener's appending goroutine, and finish after either.
	recorded bool // the source is in the log
	// client records a TCP connection's source, its client's (nil: UDP,
	// whose listener is one source).
	client      *ingest.ClientGate
	pipe        *ingest.Pipeline
	lines       int // lines added to pipe
	windowStart time.Time
	stored      uint64
	drops       uint64 // UDP: the socket's drop count last seen
	dropsPolled time.Time

	sample     Sample
	names      map[string]string // interned metric names: no allocation per line
	namesBytes int               // what names holds, roughly
}

// maxInternedBytes bounds the interned names of one reader (a name is up to
// 1 KiB); past it the table starts over, so a sender of ever-new names
// cannot grow it without bound. internOverhead is what a map entry costs
// beyond the name's bytes, roughly.
const (
	maxInternedBytes = 4 << 20
	internOverhead   = 64
)

// maxDrain bounds how long shutdown drains one sender that never pauses
// for drainGrace; what it has sent by then is counted, not stored.
const maxDrain = 5 * time.Second

func (s *Server) newReader(src store.Source, conn net.Conn) *reader {
	r := &reader{s: s, conn: conn, src: src, names: map[string]string{}}
	if conn != nil {
		r.setDeadline = conn.SetReadDeadline
	} else if s.udp != nil {
		r.setDeadline = s.udp.SetReadDeadline
	}
	return r
}

// stop turns the reader's reading into draining (see reader). It wakes a
// read that is waiting; the reader then arms its reads for the drain.
func (r *reader) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping {
		return
	}
	r.stopping, r.stoppedAt = true, time.Now()
	_ = r.setDeadline(r.stoppedAt)
}

// abort wakes a read once the server gave up waiting (s.ctx ended): the
// reader then counts what is left and returns.
func (r *reader) abort() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.counting {
		_ = r.setDeadline(time.Now())
	}
}

// givingUp reports whether the drain is over without having read all:
// shutdown's context ended, or maxDrain passed.
func (r *reader) givingUp() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopping && (r.s.ctx.Err() != nil || time.Since(r.stoppedAt) >= maxDrain)
}

// arm sets the deadline of the next read: the end of the open window
// (windowOpen, opened at start), and while draining drainGrace from now.
func (r *reader) arm(windowOpen bool, start time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var dl time.Time
	if windowOpen {
		dl = start.Add(r.s.cfg.FlushInterval)
	}
	if !r.stallEnd.IsZero() && (dl.IsZero() || r.stallEnd.Before(dl)) {
		dl = r.stallEnd
	}
	r.draining = r.stopping
	if r.stopping {
		now := time.Now()
		d := now.Add(drainGrace)
		if end := r.stoppedAt.Add(maxDrain); end.Before(d) {
			d = end
		}
		if r.s.ctx.Err() != nil {
			d = now
		}
		if dl.IsZero() || d.Before(dl) {
			dl = d
		}
	}
	_ = r.setDeadline(dl)
}

// countUnread is the end of a drain given up: it reads what the socket
// still holds, for at most drainGrace, and counts its lines as
// shutdown_unread. pending is what was read of a line not yet complete;
// skip says the rest of the current line was already counted. pending may
// lie in buf: it is counted before buf is read into.
func (r *reader) countUnread(read func([]byte) (int, error), buf, pending []byte, skip, datagrams bool) {
	r.mu.Lock()
	r.counting = true
	r.mu.Unlock()
	c := lineCounter{skip: skip}
	c.feed(pending)
	end := time.Now().Add(drainGrace)
	for time.Now().Before(end) {
		dl := time.Now().Add(5 * time.Millisecond)
		if dl.After(end) {
			dl = end
		}
		_ = r.setDeadline(dl)
		n, err := read(buf)
		c.feed(buf[:n])
		if datagrams {
			c.end()
		}
		if err != nil && (!ingest.IsTimeout(err) || n == 0) {
			break
		}
	}
	c.end()
	if c.n == 0 {
		return
	}
	if m := r.s.cfg.Metrics; m != nil {
		m.IngestErrors.WithLabelValues(MetricProtocol, ReasonShutdownUnread).Add(float64(c.n))
	}
	r.s.warn.Warn("graphite: shutdown gave up draining; lines received but not stored", "protocol", r.src.Protocol,
		"remote", r.src.Remote, "lines", c.n, "reason", ReasonShutdownUnread)
}

// lineCounter counts the non-blank lines of a stream fed in pieces.
type lineCounter struct {
	n      int
	inLine bool // the current line has a non-space byte
	skip   bool // the current line is not to be counted
}

func (c *lineCounter) feed(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		seg := p
		if i >= 0 {
			seg = p[:i]
		}
		if !c.skip && !c.inLine && len(bytes.TrimSpace(seg)) > 0 {
			c.inLine = true
		}
		if i < 0 {
			return
		}
		c.end()
		p = p[i+1:]
	}
}

// end ends the current line (a datagram's last line needs no newline).
func (c *lineCounter) end() {
	if c.inLine {
		c.n++
	}
	c.inLine, c.skip = false, false
}

// serveTCP reads one connection until EOF, an error or the end of
// shutdown's drain. A bad line is counted and skipped; the connection
// stays open.
func (s *Server) serveTCP(r *reader) {
	defer r.finish()
	defer r.conn.Close()
	limit := s.cfg.MaxLineBytes
	buf := make([]byte, max(64<<10, limit+2)) // a longest line and its CRLF fit
	start, end := 0, 0                        // unconsumed bytes
	discarding := false                       // skipping the rest of an overlong line
	for {
		if r.givingUp() {
			r.countUnread(r.readTCP, buf, buf[start:end], discarding, false)
			return
		}
		if (start == end && !discarding) || s.stall == 0 {
			r.stallEnd = time.Time{}
		} else if r.stallEnd.IsZero() {
			r.stallEnd = time.Now().Add(s.stall)
		}
		r.arm(r.pipe != nil, r.windowStart)
		n, err := r.readTCP(buf[end:])
		now := time.Now().UnixNano()
		end += n
		if n > 0 {
			r.stallEnd = time.Time{} // it arrives: the wait starts again
		}
		for {
			i := bytes.IndexByte(buf[start:end], '\n')
			if i < 0 {
				break
			}
			line := buf[start : start+i]
			start += i + 1
			if discarding {
				discarding = false
				continue
			}
			r.add(TrimCR(line), now)
		}
		if end-start > limit+1 { // +1: the '\r' of a CRLF may be in
			// No terminator within the limit: the line is too long. Its
			// start is counted; the rest is skipped up to the next newline.
			if !discarding {
				r.reject(ReasonLineTooLong, "line longer than "+strconv.Itoa(limit)+" bytes", buf[start:end])
				discarding = true
			}
			start, end = 0, 0
		} else if start == end {
			start, end = 0, 0
		} else if end == len(buf) {
			end = copy(buf, buf[start:end])
			start = 0
		}
		if r.lines >= s.cfg.FlushLines {
			r.flush()
		}
		switch {
		case err == nil:
		case ingest.IsTimeout(err) && n == 0 && !r.draining && !r.stallEnd.IsZero() && !time.Now().Before(r.stallEnd):
			// Stored: the whole lines before it (finish appends the
			// window). Counted: the line cut short.
			r.reject(ReasonStalledLine, "a line that stopped arriving for "+s.stall.String(), buf[start:end])
			return
		case ingest.IsTimeout(err) && r.pipe != nil:
			// The window's time is up, or a drain found a pause: append
			// the window and read on.
			r.flush()
		case ingest.IsTimeout(err) && r.draining && !r.givingUp():
			// A drain's read waited drainGrace for nothing, and all read
			// is appended: what is left is a line cut short by shutdown.
			if start < end && !discarding {
				r.reject(ReasonIncompleteLine, "connection ended inside a line", buf[start:end])
			}
			return
		case ingest.IsTimeout(err):
			// Woken by stop or abort: the loop arms the drain or gives up.
		case errors.Is(err, io.EOF):
			// A last line without a terminator is a line: senders such as
			// `echo -n ... | nc` end that way.
			if start < end && !discarding {
				r.add(TrimCR(buf[start:end]), now)
			}
			return
		default:
			// A reset, or the server closing: what is left is a line cut
			// short, not one to store.
			if start < end && !discarding {
				r.reject(ReasonIncompleteLine, "connection ended inside a line", buf[start:end])
			}
			return
		}
	}
}

func (r *reader) readTCP(p []byte) (int, error) {
	n, err := r.conn.Read(p)
	if m := r.s.cfg.Metrics; m != nil && n > 0 {
		m.IngestBytes.WithLabelValues(MetricProtocol).Add(float64(n))
	}
	return n, err
}

// add decodes one line into the current window.
func (r *reader) add(line []byte, now int64) {
	s := &r.sample
	if err := Parse(line, s); err != nil {
		if err == ErrBlank {
			return
		}
		var le *LineError
		errors.As(err, &le)
		r.reject(le.Reason, le.Msg, line)
		return
	}
	if r.pipe == nil {
		r.pipe = r.s.appender.Begin(r.s.ctx, r.gate)
		r.windowStart = time.Now()
		r.lines = 0
	}
	name := r.intern(s.Name)
	ref, err := r.pipe.Story(r.s.cfg.DefaultChronicle, name)
	if err != nil {
		r.reject(ReasonInvalidName, err.Error(), line)
		return
	}
	ev := event.Event{Time: s.Time, Kind: event.KindMetric, Format: event.FormatRaw, Source: r.src.ID,
		Fields: map[string]event.Value{"value": event.Float(s.Value)}}
	if ev.Time == 0 {
		ev.Time = now
	}
	if len(s.Tags) > 0 {
		ev.Tags = make(map[string]string, len(s.Tags))
		for _, t := range s.Tags {
			ev.Tags[string(t.Key)] = string(t.Value)
		}
	}
	r.lines++
	_ = r.pipe.Add(ref, &ev, line) // a failure is counted when the window closes
}

// intern returns name as a string, the same string for the same name as
// long as the table holds it: a repeated name costs no allocation. The
// table is bounded by bytes (maxInternedBytes) and starts over when full.
func (r *reader) intern(name []byte) string {
	if s, ok := r.names[string(name)]; ok {
		return s
	}
	cost := len(name) + internOverhead
	if r.namesBytes+cost > maxInternedBytes {
		clear(r.names)
		r.namesBytes = 0
	}
	s := string(name)
	r.names[s] = s
	r.namesBytes += cost
	return s
}

// gate records the source before the first append of the connection.
func (r *reader) gate() error {
	if r.recorded {
		return nil
	}
	if r.client != nil {
		if err := r.client.Gate(); err != nil {
			return err
		}
	} else {
		ctx, cancel := context.WithTimeout(r.s.ctx, 10*time.Second)
		defer cancel()
		if err := r.s.cfg.Log.PutSource(ctx, r.src); err != nil {
			return err
		}
	}
	r.recorded = true
	return nil
}

// flush closes the window: appends it and waits until it is durable. Lines
// the log did not take are counted by the reason it gave.
func (r *reader) flush() {
	if r.pipe == nil {
		return
	}
	err := r.pipe.Close()
	stored := r.pipe.Stored()
	lost := r.lines - stored
	r.pipe, r.lines = nil, 0
	r.stored += uint64(stored)
	m := r.s.cfg.Metrics
	if m != nil && stored > 0 {
		m.IngestEvents.WithLabelValues(MetricProtocol).Add(float64(stored))
	}
	if lost > 0 {
		reason := storeReason(err)
		if m != nil {
			m.IngestErrors.WithLabelValues(MetricProtocol, reason).Add(float64(lost))
		}
		r.s.warn.Warn("graphite: lines received but not stored", "protocol", r.src.Protocol, "remote", r.src.Remote,
			"lines", lost, "reason", reason, "err", err)
	}
}

// finish flushes what is left and records the source's final count.
func (r *reader) finish() {
	r.flush()
	if r.client != nil {
		_ = r.client.Finish(int(r.stored), nil) // a failed record failed the gate already
		return
	}
	if !r.recorded {
		return
	}
	r.src.End = time.Now().UTC()
	r.src.Count = r.stored
	// Bookkeeping only: the events are durable either way.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.s.cfg.Log.PutSource(ctx, r.src); err != nil {
		r.s.warn.Warn("graphite: recording the count of a source failed", "err", err)
	}
}

// reject counts a line that is not stored and logs it, throttled. The line
// is cut to 400 bytes in the log, as carbon does.
func (r *reader) reject(reason, msg string, line []byte) {
	if m := r.s.cfg.Metrics; m != nil {
		m.IngestErrors.WithLabelValues(MetricProtocol, reason).Inc()
	}
	if reason == ReasonNaNValue {
		return // carbon drops NaN silently; it is a value, not a fault
	}
	if len(line) > 400 {
		line = line[:400]
	}
	r.s.warn.Warn("graphite: invalid line ignored", "protocol", r.src.Protocol, "remote", r.src.Remote,
		"reason", reason, "err", msg, "line", string(line))
}

// storeReason labels a failed append for metrics.
func storeReason(err error) string {
	switch {
	case errors.Is(err, store.ErrNoChronicle):
		return "no_chronicle"
	case errors.Is(err, store.ErrInvalidName):
		return ReasonInvalidName
	case errors.Is(err, store.ErrTooLarge):
		return "event_too_large"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// Shutdown stopped waiting: the lines were handed to the log and
		// may still be stored, but nothing can confirm it any more.
		return "canceled"
	}
	return "store_unavailable"
}
