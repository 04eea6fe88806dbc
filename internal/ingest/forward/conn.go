package forward

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/store"
)

// conn serves one client connection: it cuts the stream into messages,
// decodes each whole, and adds its records to a window (one
// ingest.Pipeline). A message with the chunk option closes the window —
// appends it and waits until it is durable — before its ack is written; a
// window of messages without it is closed FlushInterval after its first
// record, after FlushRecords records, or when the client goes away.
// Waiting for the window before reading on is the back-pressure.
type conn struct {
	s    *Server
	nc   net.Conn
	src  store.Source
	stop ingest.StopSignal
	hs   *handshake // non-nil until the handshake is done
	// who is the client's rate (nil: none), shared by its connections.
	who *auth.Principal

	dec *Decoder
	msg Message
	// partial says the buffer holds the start of a message; lastByte is
	// when the connection last sent something. A message that stops
	// arriving holds a connection and its buffer (slowloris): it is cut
	// after the server's stall timeout.
	partial  bool
	lastByte time.Time

	recorded    bool // the source is in the log
	pipe        *ingest.Pipeline
	added       int // records added to pipe
	windowStart time.Time
	stored      uint64
	lastChron   string // interned target of the last tag
	lastTag     string
	lastStory   string
}

func (s *Server) newConn(nc net.Conn) *conn {
	return &conn{s: s, nc: nc, dec: NewDecoder(s.lim),
		src: store.Source{ID: store.NewSourceID(), Protocol: Protocol, Remote: nc.RemoteAddr().String(), Start: time.Now().UTC()}}
}

// Stop asks the connection to finish by at.
func (c *conn) Stop(at time.Time) {
	c.stop.Stop(at)
	_ = c.nc.SetReadDeadline(at)
}

func (c *conn) deadline() time.Time {
	var dl time.Time
	if c.hs != nil {
		dl = c.hs.deadline
	} else if c.pipe != nil {
		dl = c.windowStart.Add(c.s.cfg.FlushInterval)
	}
	if c.partial && c.s.stall > 0 {
		if end := c.lastByte.Add(c.s.stall); dl.IsZero() || end.Before(dl) {
			dl = end
		}
	}
	return c.stop.Deadline(dl)
}

// stalled reports whether the message being received stopped arriving
// for longer than the stall timeout.
func (c *conn) stalled() bool {
	return c.partial && c.s.stall > 0 && time.Since(c.lastByte) >= c.s.stall
}

const minBuf = 64 << 10

// maxPreAuth bounds what a client may have buffered before its handshake
// is done: a PING is a few hundred bytes.
const maxPreAuth = 4 << 10

// testHookFrame, when set (by tests), is called on every framing attempt.
var testHookFrame func()

// testHookDecode, when set (by tests), is called before a message is decoded.
var testHookDecode func()

func (c *conn) serve() {
	key := clientKey(c.nc.RemoteAddr())
	c.who = c.s.clients.acquire(key)
	defer c.s.clients.release(key) // after finish: its flush is charged
	defer c.finish()
	defer c.nc.Close()
	if c.s.cfg.SharedKey != "" {
		if err := c.s.helo(c); err != nil {
			return
		}
	}
	maxMsg := c.s.lim.MaxMessageBytes
	buf := make([]byte, minBuf)
	start, end := 0, 0
	// The framer scans a message that arrives in pieces once, and is
	// tried only when the buffer holds what it needs to progress.
	var fr Framer
	for {
		for start < end && end-start >= fr.Need() {
			if testHookFrame != nil {
				testHookFrame()
			}
			n, err := fr.Next(buf[start:end])
			if errors.Is(err, ErrShort) {
				break
			}
			if err == nil {
				err = c.handle(buf[start : start+n])
			}
			if err != nil {
				c.reject(err)
				return
			}
			start += n
		}
		if c.hs != nil && end-start > maxPreAuth {
			// Before the handshake only a PING (well under this) may come:
			// nothing larger is buffered, let alone decoded.
			c.reject(fail(ReasonUnauthenticated, "%d bytes before the handshake (a shared key is configured)", end-start))
			return
		}
		switch {
		case start == end:
			start, end = 0, 0
			if len(buf) > 4*minBuf {
				buf = make([]byte, minBuf) // after a large message
			}
		case end-start > maxMsg:
			c.reject(fail(ReasonTooLarge, "a message longer than %d bytes", maxMsg))
			return
		case end == len(buf):
			if start > 0 {
				end = copy(buf, buf[start:end])
				start = 0
			} else {
				nb := make([]byte, min(2*len(buf), maxMsg+minBuf))
				end = copy(nb, buf[start:end])
				buf = nb
			}
		}
		c.partial = c.hs == nil && start < end // before the handshake, its deadline rules
		c.stop.Arm(c.nc.SetReadDeadline, c.deadline)
		room := buf[end:]
		if c.hs != nil {
			room = buf[end:min(len(buf), start+maxPreAuth+1)]
		}
		n, err := c.nc.Read(room)
		end += n
		if n > 0 {
			c.lastByte = time.Now()
		}
		if m := c.s.cfg.Metrics; m != nil && n > 0 {
			m.IngestBytes.WithLabelValues(Protocol).Add(float64(n))
		}
		switch {
		case err == nil:
		case ingest.IsTimeout(err) && c.hs != nil && !c.stop.Stopping():
			c.reject(fail(ReasonUnauthenticated, "no PING within %v of HELO", c.s.cfg.HandshakeTimeout))
			return
		case ingest.IsTimeout(err) && !c.stop.Stopping() && n == 0 && c.stalled():
			// The whole messages before it are stored (and acknowledged)
			// by finish; the one cut short is not.
			c.reject(fail(ReasonStalled, "%d bytes of a message, then nothing for %v", end-start, c.s.stall))
			return
		case ingest.IsTimeout(err) && !c.stop.Stopping():
			if err := c.flush(); err != nil { // the window's time is up
				return
			}
		default:
			// EOF, a reset, or shutdown's deadline: whole messages still
			// buffered are stored; what is left is a message cut short.
			for start < end {
				if c.hs != nil {
					break // nothing but a PING counts before the handshake
				}
				n, ferr := Frame(buf[start:end])
				if ferr != nil {
					break
				}
				if herr := c.handle(buf[start : start+n]); herr != nil {
					c.reject(herr)
					return
				}
				start += n
			}
			if start < end {
				c.count(ReasonIncomplete, 1)
				c.s.warn.Warn("forward: connection ended inside a message; it is not stored (nor acknowledged)",
					"remote", c.src.Remote, "bytes", end-start)
			}
			return
		}
	}
}

// handle decodes and stores one message.
func (c *conn) handle(raw []byte) error {
	m := &c.msg
	if c.hs != nil && !isPingOrHeartbeat(raw) {
		// Refused before decoding: an unauthenticated client makes the
		// server neither decode nor hold its records.
		return fail(ReasonUnauthenticated, "events before the handshake (a shared key is configured)")
	}
	if testHookDecode != nil {
		testHookDecode()
	}
	if err := c.dec.Decode(raw, m); err != nil {
		return err
	}
	switch {
	case m.Kind == KindHeartbeat:
		return nil
	case m.Kind == KindPing && c.hs != nil:
		return c.s.pong(c, &m.Ping)
	case m.Kind == KindPing:
		return fail(ReasonMalformed, "PING outside the handshake")
	case c.hs != nil:
		return fail(ReasonUnauthenticated, "events before the handshake (a shared key is configured)")
	}
	if len(m.Entries) > 0 {
		if err := c.pace(m.Options.Chunk != ""); err != nil {
			return err
		}
	}
	if m.Options.Signal != 0 {
		// Metrics or traces from Fluent Bit: acknowledged (a chunk never
		// acknowledged would be resent forever) and dropped, counted.
		c.count(ReasonUnsupported, 1)
		c.s.warn.Warn("forward: a chunk of a signal other than logs dropped (only logs are stored)",
			"remote", c.src.Remote, "tag", string(m.Tag), "fluent_signal", m.Options.Signal)
	}
	if m.Dropped > 0 {
		c.count(ReasonRecordTooLarge, m.Dropped)
		c.s.warn.Warn("forward: records larger than the event limit dropped", "remote", c.src.Remote,
			"tag", string(m.Tag), "records", m.Dropped, "limit", c.s.lim.MaxRecordBytes)
	}
	if len(m.Entries) > 0 {
		c.add(m)
	}
	if m.Options.Chunk == "" {
		if c.added >= c.s.cfg.FlushRecords {
			return c.flush()
		}
		return nil
	}
	if err := c.flush(); err != nil {
		return err
	}
	// {"ack": chunk}, only now that the records are durable.
	b := msgp.AppendMapHeader(make([]byte, 0, 8+len(m.Options.Chunk)), 1)
	b = msgp.AppendString(b, "ack")
	b = msgp.AppendString(b, m.Options.Chunk)
	return c.write(b)
}

func (c *conn) add(m *Message) {
	if string(m.Tag) != c.lastTag {
		c.lastTag = string(m.Tag)
		c.lastChron, c.lastStory = c.s.Target(c.lastTag)
	}
	if !c.recorded && c.src.Chronicle == "" {
		c.src.Chronicle, c.src.Story = c.lastChron, c.lastStory
	}
	if c.pipe == nil {
		c.pipe = c.s.appender.Begin(c.s.ctx, c.gate)
		c.windowStart = time.Now()
		c.added = 0
	}
	ref, err := c.pipe.Story(c.lastChron, c.lastStory)
	if err != nil {
		// A tag that cannot name a story would be refused on every resend:
		// its records are dropped and counted, the connection goes on.
		c.count(ReasonInvalidName, len(m.Entries))
		c.s.warn.Warn("forward: records of a tag that cannot name a story dropped", "remote", c.src.Remote,
			"records", len(m.Entries), "err", err)
		return
	}
	now := time.Now().UnixNano()
	size := 0
	for i := range m.Entries {
		e := &m.Entries[i]
		ev := event.Event{Time: e.Time, Kind: event.KindLog, Format: event.FormatJSON, Source: c.src.ID}
		if ev.Time == 0 {
			ev.Time = now
		}
		_ = c.pipe.Add(ref, &ev, e.Record) // a failure is counted when the window closes
		c.added++
		size += len(e.Record)
	}
	// Charged on receipt, not when the window is appended: the next
	// message, often already read, is paced by what came before it.
	c.who.Spend(len(m.Entries), size)
}

// gate records the source before the first append of the connection.
func (c *conn) gate() error {
	if c.recorded {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.s.ctx, 10*time.Second)
	defer cancel()
	if err := c.s.cfg.Log.PutSource(ctx, c.src); err != nil {
		return err
	}
	c.recorded = true
	return nil
}

// flush closes the window: appends it and waits until it is durable. It
// returns an error if any record was not stored: the connection is then
// closed, unacknowledged, so that the client sends again.
func (c *conn) flush() error {
	if c.pipe == nil {
		return nil
	}
	err := c.pipe.Close()
	stored := c.pipe.Stored()
	lost := c.added - stored
	c.pipe, c.added = nil, 0
	c.stored += uint64(stored)
	m := c.s.cfg.Metrics
	if m != nil && stored > 0 {
		m.IngestEvents.WithLabelValues(Protocol).Add(float64(stored))
	}
	if lost > 0 || err != nil {
		reason := ingest.StoreReason(err)
		c.count(reason, lost)
		c.s.warn.Warn("forward: records received but not stored; closing the connection unacknowledged",
			"remote", c.src.Remote, "records", lost, "reason", reason, "err", err)
		if err == nil {
			err = errors.New("forward: records not stored")
		}
		return err
	}
	return nil
}

// finish flushes what is left and records the source's final count.
func (c *conn) finish() {
	_ = c.flush()
	if !c.recorded {
		return
	}
	c.src.End = time.Now().UTC()
	c.src.Count = c.stored
	// Bookkeeping only: the events are durable either way.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.s.cfg.Log.PutSource(ctx, c.src); err != nil {
		c.s.warn.Warn("forward: recording the count of a source failed", "err", err)
	}
}

func (c *conn) write(b []byte) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(ackTimeout))
	_, err := c.nc.Write(b)
	return err
}

func (c *conn) count(reason string, n int) {
	if m := c.s.cfg.Metrics; m != nil && n > 0 {
		m.IngestErrors.WithLabelValues(Protocol, reason).Add(float64(n))
	}
}

// reject counts and logs (throttled) why the connection is closed. What the
// window holds is still stored by finish: it came in whole messages.
func (c *conn) reject(err error) {
	var fe *Error
	if !errors.As(err, &fe) {
		return // a store failure or a write error, counted where it happened
	}
	c.count(fe.Reason, 1)
	c.s.warn.Warn("forward: closing the connection", "remote", c.src.Remote, "reason", fe.Reason, "err", fe.Msg)
}

// isPingOrHeartbeat tells, without decoding it, whether raw is a heartbeat
// (nil) or a PING (an array of 6 elements starting with "PING").
func isPingOrHeartbeat(raw []byte) bool {
	if msgp.IsNil(raw) {
		return true
	}
	n, rest, err := msgp.ReadArrayHeaderBytes(raw)
	if err != nil || n != 6 {
		return false
	}
	tag, _, err := readStr(rest)
	return err == nil && string(tag) == "PING"
}
