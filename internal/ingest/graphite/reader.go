package graphite

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/store"
)

// reader turns the lines of one TCP connection, or of the UDP listener,
// into appends: lines go into a window (one ingest.Pipeline) that is closed
// — appended and waited for — FlushInterval after its first line, after
// FlushLines lines, or when the sender goes away. Waiting for the window
// before reading on is the back-pressure: TCP senders slow down, rather
// than the server buffering without bound.
type reader struct {
	s    *Server
	conn net.Conn // nil for UDP
	src  store.Source

	// stopAt (Unix ns) is when shutdown wants the reader gone; stopping
	// is set after it, so a reader that sees stopping sees stopAt.
	stopAt   atomic.Int64
	stopping atomic.Bool

	recorded    bool // the source is in the log
	pipe        *ingest.Pipeline
	lines       int // lines added to pipe
	windowStart time.Time
	stored      uint64

	sample Sample
	names  map[string]string // interned metric names: no allocation per line
}

// maxInterned bounds the interned names of one reader; past it the table
// starts over, so a sender of ever-new names cannot grow it without bound.
const maxInterned = 1 << 16

func (s *Server) newReader(src store.Source, conn net.Conn) *reader {
	return &reader{s: s, conn: conn, src: src, names: map[string]string{}}
}

// stop asks the reader to finish by at: it reads until then, appends what
// it has and returns.
func (r *reader) stop(at time.Time) {
	r.stopAt.Store(at.UnixNano())
	r.stopping.Store(true)
	if r.conn != nil {
		_ = r.conn.SetReadDeadline(at)
	} else {
		_ = r.s.udp.SetReadDeadline(at)
	}
}

// deadline is when the current read must return: the end of the window,
// or shutdown's, whichever is first (zero: none).
func (r *reader) deadline() time.Time {
	var dl time.Time
	if r.pipe != nil {
		dl = r.windowStart.Add(r.s.cfg.FlushInterval)
	}
	if r.stopping.Load() {
		at := time.Unix(0, r.stopAt.Load())
		if dl.IsZero() || at.Before(dl) {
			dl = at
		}
	}
	return dl
}

// arm sets the read deadline. stop may run concurrently: if it did so
// between our reading of stopping and our setting of the deadline, ours
// would overwrite its deadline, so look again after setting it.
func (r *reader) arm(set func(time.Time) error) {
	before := r.stopping.Load()
	_ = set(r.deadline())
	if !before && r.stopping.Load() {
		_ = set(r.deadline())
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// serveTCP reads one connection until EOF, an error or shutdown. A bad
// line is counted and skipped; the connection stays open.
func (s *Server) serveTCP(r *reader) {
	defer r.finish()
	defer r.conn.Close()
	limit := s.cfg.MaxLineBytes
	buf := make([]byte, max(64<<10, limit+2)) // a longest line and its CRLF fit
	start, end := 0, 0                        // unconsumed bytes
	discarding := false                       // skipping the rest of an overlong line
	for {
		n, err := r.readTCP(buf[end:])
		now := time.Now().UnixNano()
		end += n
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
		case isTimeout(err) && !r.stopping.Load():
			r.flush() // the window's time is up
		case errors.Is(err, io.EOF):
			// A last line without a terminator is a line: senders such as
			// `echo -n ... | nc` end that way.
			if start < end && !discarding {
				r.add(TrimCR(buf[start:end]), now)
			}
			return
		default:
			// Shutdown's deadline, a reset, or the server closing: what
			// is left is a line cut short, not one to store.
			if start < end && !discarding {
				r.reject(ReasonIncompleteLine, "connection ended inside a line", buf[start:end])
			}
			return
		}
	}
}

func (r *reader) readTCP(p []byte) (int, error) {
	r.arm(r.conn.SetReadDeadline)
	n, err := r.conn.Read(p)
	if m := r.s.cfg.Metrics; m != nil && n > 0 {
		m.IngestBytes.WithLabelValues(MetricProtocol).Add(float64(n))
	}
	return n, err
}

// serveUDP reads datagrams until shutdown. Each datagram holds whole
// lines; its last line needs no terminator.
func (s *Server) serveUDP(r *reader) {
	defer r.finish()
	defer s.udp.Close()
	buf := make([]byte, 64<<10) // the largest UDP payload fits
	for {
		r.arm(s.udp.SetReadDeadline)
		n, _, err := s.udp.ReadFromUDPAddrPort(buf)
		now := time.Now().UnixNano()
		if n > 0 {
			if m := s.cfg.Metrics; m != nil {
				m.IngestBytes.WithLabelValues(MetricProtocol).Add(float64(n))
			}
			Lines(buf[:n], func(line []byte) {
				if len(line) > s.cfg.MaxLineBytes {
					r.reject(ReasonLineTooLong, "line longer than "+strconv.Itoa(s.cfg.MaxLineBytes)+" bytes", line)
					return
				}
				r.add(line, now)
			})
			if r.lines >= s.cfg.FlushLines {
				r.flush()
			}
		}
		switch {
		case err == nil:
		case isTimeout(err) && !r.stopping.Load():
			r.flush()
		case isTimeout(err) || errors.Is(err, net.ErrClosed):
			return
		default:
			// ICMP errors and the like concern one datagram, not the socket.
			s.warn.Warn("graphite: UDP read failed", "err", err)
		}
	}
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
	name, ok := r.names[string(s.Name)]
	if !ok {
		if len(r.names) >= maxInterned {
			clear(r.names)
		}
		name = string(s.Name)
		r.names[name] = name
	}
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

// gate records the source before the first append of the connection.
func (r *reader) gate() error {
	if r.recorded {
		return nil
	}
	ctx, cancel := context.WithTimeout(r.s.ctx, 10*time.Second)
	defer cancel()
	if err := r.s.cfg.Log.PutSource(ctx, r.src); err != nil {
		return err
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
		return "canceled"
	}
	return "store_unavailable"
}
