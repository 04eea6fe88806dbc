// Package forward is the Fluent Forward protocol v1 (Fluentd's in_forward,
// Fluent Bit's forward output, fluent-logger libraries): a pure decoder of
// its msgpack messages in every mode (Message, Forward, PackedForward and
// gzip CompressedPackedForward), and a TCP transport that stores each record
// as one log event, answers the chunk option with an ack once the records
// are durable, and authenticates clients with the HELO/PING/PONG handshake
// when a shared key is configured.
package forward

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/chronostream/chronostream/internal/jsonev"
	"github.com/klauspost/compress/gzip"
	"github.com/tinylib/msgp/msgp"
)

// Reasons label rejected input in metrics and logs.
const (
	ReasonMalformed       = "malformed"         // not msgpack, or not a Forward message
	ReasonTooLarge        = "message_too_large" // message, or its decompressed entries, over the limit
	ReasonTooManyRecords  = "too_many_records"
	ReasonBadTime         = "invalid_time"
	ReasonBadCompression  = "invalid_compression"
	ReasonRecordTooLarge  = "record_too_large" // one record: dropped, the message goes on
	ReasonInvalidName     = "invalid_name"     // a tag that cannot name a story: its records are dropped
	ReasonUnauthenticated = "unauthenticated"
	ReasonAuthFailed      = "auth_failed"
	ReasonIncomplete      = "incomplete_message"
	ReasonStalled         = "stalled_message"    // a message that stopped arriving: the connection is cut
	ReasonUnsupported     = "unsupported_signal" // metrics or traces from Fluent Bit: acknowledged and dropped
	ReasonRatePaused      = "rate_paused"        // a message held (not lost) until its client's rate admits it
	ReasonRateLimited     = "rate_limited"       // a chunk refused after RateWait: not stored, not acked, connection closed
)

// ErrShort says b does not hold a whole message yet.
var ErrShort = errors.New("forward: incomplete message")

// Error is a message the decoder refuses, with the reason it is counted by.
type Error struct {
	Reason string
	Msg    string
}

func (e *Error) Error() string { return "forward: " + e.Msg }

func fail(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// Frame returns the length of the first whole msgpack value of b: the
// transport cuts its stream into messages with it before decoding one. It
// returns ErrShort when b ends inside the value.
func Frame(b []byte) (int, error) {
	rest, err := msgp.Skip(b)
	if err != nil {
		if errors.Is(err, msgp.ErrShortBytes) {
			return 0, ErrShort
		}
		return 0, fail(ReasonMalformed, "not msgpack: %v", err)
	}
	return len(b) - len(rest), nil
}

// Kind says what a message is.
type Kind uint8

// The kinds of message.
const (
	KindEvents    Kind = iota
	KindHeartbeat      // a msgpack nil: nothing to do
	KindPing           // the client's half of the handshake
)

// Mode is how a message carries its events.
type Mode uint8

// The event modes of the protocol.
const (
	ModeMessage Mode = iota
	ModeForward
	ModePackedForward
	ModeCompressedPackedForward
)

var modeNames = [...]string{"Message", "Forward", "PackedForward", "CompressedPackedForward"}

func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// Options are a message's options.
type Options struct {
	// Chunk is the id the client wants acknowledged ({"ack": Chunk}) once
	// the message's events are stored; empty when it wants none.
	Chunk string
	// Size is the number of events the client says the message holds, -1
	// when it does not say.
	Size int64
	// Compressed is the compression of PackedForward entries: "gzip", or
	// empty (or "text") for none.
	Compressed string
	// Signal is Fluent Bit's fluent_signal option: 0 (or absent) for
	// logs, 1 metrics, 2 traces. Only logs are decoded: the entries of
	// other signals (cmetrics and ctraces payloads, not [time, record]) are
	// skipped, and the message is acknowledged and counted as
	// ReasonUnsupportedSignal, so the client does not resend it forever.
	Signal int64
}

// Entry is one event of a message.
type Entry struct {
	// Time is the event time in Unix nanoseconds; 0 when the client sent
	// time 0 (the log then takes the time of receipt).
	Time int64
	// Record is the record re-encoded as one JSON object.
	Record []byte
}

// Ping is the client's PING of the handshake.
type Ping struct {
	Hostname      string
	SharedKeySalt []byte
	SharedKeyHash string // hex SHA-512 of salt, hostname, nonce and key
	Username      string
	PasswordHash  string // hex SHA-512 of the auth salt, username and password
}

// Message is one decoded message. Its slices are valid until the next
// Decode with the same Decoder.
type Message struct {
	Kind    Kind
	Mode    Mode
	Tag     []byte
	Entries []Entry
	// Dropped counts records left out for their size (over
	// Limits.MaxRecordBytes once re-encoded as JSON).
	Dropped int
	Options Options
	Ping    Ping
}

// Limits bound what one message can make the decoder hold.
type Limits struct {
	// MaxMessageBytes bounds a message as received, and the entries of a
	// CompressedPackedForward message once decompressed.
	MaxMessageBytes int
	// MaxRecords bounds the events of one message.
	MaxRecords int
	// MaxRecordBytes bounds one record re-encoded as JSON: a larger record
	// is dropped and counted in Message.Dropped, not refused with its
	// message (a client would resend it forever).
	MaxRecordBytes int
}

// DefaultLimits are the limits used for zero fields.
var DefaultLimits = Limits{MaxMessageBytes: 32 << 20, MaxRecords: 1 << 20, MaxRecordBytes: 1 << 20}

// maxDepth bounds the nesting of a record: JSON readers recurse.
const maxDepth = 64

// Decoder decodes messages, reusing its buffers from one to the next. It is
// not safe for concurrent use.
type Decoder struct {
	lim     Limits
	arena   []byte // JSON records of the current message
	entries []Entry
	gz      *gzip.Reader
	unz     bytes.Buffer
	scratch []byte
}

// NewDecoder returns a decoder enforcing lim (zero fields: DefaultLimits).
func NewDecoder(lim Limits) *Decoder {
	if lim.MaxMessageBytes <= 0 {
		lim.MaxMessageBytes = DefaultLimits.MaxMessageBytes
	}
	if lim.MaxRecords <= 0 {
		lim.MaxRecords = DefaultLimits.MaxRecords
	}
	if lim.MaxRecordBytes <= 0 {
		lim.MaxRecordBytes = DefaultLimits.MaxRecordBytes
	}
	return &Decoder{lim: lim}
}

// Decode decodes msg, one whole msgpack value (see Frame), into m. A
// message is decoded entirely before any of it is returned: a malformed
// message yields an *Error and no entries.
func (d *Decoder) Decode(msg []byte, m *Message) error {
	*m = Message{Entries: d.entries[:0], Options: Options{Size: -1}}
	d.arena = d.arena[:0]
	if len(msg) > d.lim.MaxMessageBytes {
		return fail(ReasonTooLarge, "message of %d bytes, the limit is %d", len(msg), d.lim.MaxMessageBytes)
	}
	err := d.decode(msg, m)
	d.entries = m.Entries[:0]
	if err != nil {
		m.Entries = m.Entries[:0]
		var fe *Error
		if errors.As(err, &fe) {
			return fe
		}
		return fail(ReasonMalformed, "%v", err)
	}
	// Keep a huge message's buffers from staying with the connection.
	if cap(d.arena) > 4*d.lim.MaxRecordBytes+(4<<20) {
		d.arena = nil
	}
	return nil
}

func (d *Decoder) decode(b []byte, m *Message) error {
	if msgp.IsNil(b) {
		m.Kind = KindHeartbeat
		if len(b) != 1 {
			return fail(ReasonMalformed, "%d bytes after a heartbeat", len(b)-1)
		}
		return nil
	}
	n, b, err := msgp.ReadArrayHeaderBytes(b)
	if err != nil {
		return fail(ReasonMalformed, "a message is an array: %v", err)
	}
	tag, b, err := readStr(b)
	if err != nil {
		return fail(ReasonMalformed, "the first element (tag) is not a string: %v", err)
	}
	if n == 6 && string(tag) == "PING" {
		m.Kind = KindPing
		return readPing(b, &m.Ping)
	}
	if n < 2 || n > 4 {
		return fail(ReasonMalformed, "a message of %d elements", n)
	}
	m.Tag = tag
	second := b
	// Options come last; read them first, so that compression and the
	// declared size are known before the entries are decoded.
	rest, err := msgp.Skip(second)
	if err != nil {
		return fail(ReasonMalformed, "entries: %v", err)
	}
	switch t := msgp.NextType(second); {
	case t == msgp.ArrayType:
		if n > 3 {
			return fail(ReasonMalformed, "a Forward message of %d elements", n)
		}
		if n == 3 {
			if rest, err = readOptions(rest, &m.Options); err != nil {
				return err
			}
		}
		if err := endOfMessage(rest); err != nil {
			return err
		}
		m.Mode = ModeForward
		if m.Options.Signal != 0 {
			return nil
		}
		return d.forward(second, m)
	case t == msgp.StrType || t == msgp.BinType:
		if n > 3 {
			return fail(ReasonMalformed, "a PackedForward message of %d elements", n)
		}
		if n == 3 {
			if rest, err = readOptions(rest, &m.Options); err != nil {
				return err
			}
		}
		if err := endOfMessage(rest); err != nil {
			return err
		}
		packed, _, err := readStr(second)
		if err != nil {
			return fail(ReasonMalformed, "entries: %v", err)
		}
		m.Mode = ModePackedForward
		if m.Options.Signal != 0 {
			return nil
		}
		switch m.Options.Compressed {
		case "", "text":
		case "gzip":
			m.Mode = ModeCompressedPackedForward
			if packed, err = d.gunzip(packed); err != nil {
				return err
			}
		default:
			return fail(ReasonBadCompression, "unknown compression %q", m.Options.Compressed)
		}
		return d.packed(packed, m)
	default:
		// Message mode: [tag, time, record, option?].
		if n < 3 {
			return fail(ReasonMalformed, "a Message of %d elements", n)
		}
		m.Mode = ModeMessage
		rec, err := msgp.Skip(rest)
		if err != nil {
			return fail(ReasonMalformed, "record: %v", err)
		}
		if n == 4 {
			if rec, err = readOptions(rec, &m.Options); err != nil {
				return err
			}
		}
		if err := endOfMessage(rec); err != nil {
			return err
		}
		if err := d.checkSize(m, 1); err != nil {
			return err
		}
		_, err = d.entry(second, m)
		return err
	}
}

func endOfMessage(rest []byte) error {
	if len(rest) != 0 {
		return fail(ReasonMalformed, "%d bytes after the message's last element", len(rest))
	}
	return nil
}

func (d *Decoder) checkSize(m *Message, n int) error {
	if n > d.lim.MaxRecords {
		return fail(ReasonTooManyRecords, "%d events in a message, the limit is %d", n, d.lim.MaxRecords)
	}
	if m.Options.Size >= 0 && m.Options.Size != int64(n) && m.Mode != ModePackedForward && m.Mode != ModeCompressedPackedForward {
		return fail(ReasonMalformed, "option size is %d but the message holds %d events", m.Options.Size, n)
	}
	return nil
}

// forward decodes Forward mode's array of [time, record] entries.
func (d *Decoder) forward(b []byte, m *Message) error {
	n, b, err := msgp.ReadArrayHeaderBytes(b)
	if err != nil {
		return fail(ReasonMalformed, "entries: %v", err)
	}
	if err := d.checkSize(m, int(n)); err != nil {
		return err
	}
	for range n {
		if b, err = d.pair(b, m); err != nil {
			return err
		}
	}
	return nil
}

// packed decodes a PackedForward stream: [time, record] entries one after
// the other.
func (d *Decoder) packed(b []byte, m *Message) error {
	if m.Options.Size > int64(d.lim.MaxRecords) {
		return fail(ReasonTooManyRecords, "option size is %d, the limit is %d events", m.Options.Size, d.lim.MaxRecords)
	}
	var err error
	for len(b) > 0 {
		if len(m.Entries)+m.Dropped >= d.lim.MaxRecords {
			return fail(ReasonTooManyRecords, "more than %d events in a message", d.lim.MaxRecords)
		}
		if b, err = d.pair(b, m); err != nil {
			return err
		}
	}
	if n := int64(len(m.Entries) + m.Dropped); m.Options.Size >= 0 && m.Options.Size != n {
		return fail(ReasonMalformed, "option size is %d but the entries hold %d events", m.Options.Size, n)
	}
	return nil
}

// pair decodes one [time, record] entry.
func (d *Decoder) pair(b []byte, m *Message) ([]byte, error) {
	n, b, err := msgp.ReadArrayHeaderBytes(b)
	if err != nil {
		return b, fail(ReasonMalformed, "an entry is an array: %v", err)
	}
	if n != 2 {
		return b, fail(ReasonMalformed, "an entry of %d elements, not [time, record]", n)
	}
	return d.entry(b, m)
}

// entry decodes time and record. The time may be Fluent Bit's header of
// an event with metadata, [time, {metadata}] (its forward output sends it
// so with Retain_metadata_in_forward_mode): a non-empty metadata map is
// kept in the record, under MetadataKey.
func (d *Decoder) entry(b []byte, m *Message) ([]byte, error) {
	var meta []byte
	var t int64
	var err error
	if msgp.NextType(b) == msgp.ArrayType {
		var n uint32
		if n, b, err = msgp.ReadArrayHeaderBytes(b); err != nil {
			return b, fail(ReasonMalformed, "event header: %v", err)
		}
		if n != 2 {
			return b, fail(ReasonMalformed, "an event header of %d elements, not [time, metadata]", n)
		}
		if t, b, err = readTime(b); err != nil {
			return b, err
		}
		if msgp.NextType(b) != msgp.MapType {
			return b, fail(ReasonMalformed, "event metadata is a map, not %v", msgp.NextType(b))
		}
		meta = b
		if b, err = msgp.Skip(b); err != nil {
			return b, fail(ReasonMalformed, "event metadata: %v", err)
		}
		if len(meta) > 0 && (meta[0] == 0x80) { // an empty map
			meta = nil
		}
	} else if t, b, err = readTime(b); err != nil {
		return b, err
	}
	if msgp.NextType(b) != msgp.MapType {
		return b, fail(ReasonMalformed, "a record is a map, not %v", msgp.NextType(b))
	}
	off := len(d.arena)
	rec := b
	d.arena, b, err = d.value(d.arena, b, 0, off+d.lim.MaxRecordBytes)
	if err == errOverLimit {
		// Encoding stopped as soon as the record was past the limit: the
		// rest of it is skipped, not encoded (a 30 MiB string of NULs would
		// be 180 MiB of JSON escapes).
		d.arena = d.arena[:off]
		m.Dropped++
		if b, err = msgp.Skip(rec); err != nil {
			return b, fail(ReasonMalformed, "record: %v", err)
		}
		return b, nil
	}
	if err == nil && meta != nil {
		d.arena, err = d.appendMeta(d.arena, off, meta)
	}
	if err == errOverLimit {
		d.arena = d.arena[:off]
		m.Dropped++
		return b, nil
	}
	if err != nil {
		return b, err
	}
	if len(d.arena)-off > d.lim.MaxRecordBytes {
		d.arena = d.arena[:off]
		m.Dropped++
		return b, nil
	}
	m.Entries = append(m.Entries, Entry{Time: t, Record: d.arena[off:len(d.arena):len(d.arena)]})
	return b, nil
}

func (d *Decoder) gunzip(b []byte) ([]byte, error) {
	var err error
	if d.gz == nil {
		d.gz, err = gzip.NewReader(bytes.NewReader(b))
	} else {
		err = d.gz.Reset(bytes.NewReader(b))
	}
	if err != nil {
		return nil, fail(ReasonBadCompression, "gzip: %v", err)
	}
	d.unz.Reset()
	n, err := d.unz.ReadFrom(io.LimitReader(d.gz, int64(d.lim.MaxMessageBytes)+1))
	if err != nil {
		return nil, fail(ReasonBadCompression, "gzip: %v", err)
	}
	if n > int64(d.lim.MaxMessageBytes) {
		return nil, fail(ReasonTooLarge, "entries larger than %d bytes once decompressed", d.lim.MaxMessageBytes)
	}
	out := d.unz.Bytes()
	if d.unz.Cap() > 4<<20 {
		// Do not keep a huge buffer with the connection; the entries are
		// re-encoded into the arena before the next Decode.
		d.unz = bytes.Buffer{}
	}
	return out, nil
}

// readStr reads a str or a bin without copying.
func readStr(b []byte) ([]byte, []byte, error) {
	switch msgp.NextType(b) {
	case msgp.StrType:
		return msgp.ReadStringZC(b)
	case msgp.BinType:
		return msgp.ReadBytesZC(b)
	}
	if len(b) == 0 {
		return nil, b, msgp.ErrShortBytes
	}
	return nil, b, fmt.Errorf("want a string, got %v", msgp.NextType(b))
}

// readExt reads an extension value without copying.
func readExt(b []byte) (typ int8, data, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, b, msgp.ErrShortBytes
	}
	var sz, off int
	switch b[0] {
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16
		sz, off = 1<<(b[0]-0xd4), 2
	case 0xc7: // ext 8
		if len(b) < 3 {
			return 0, nil, b, msgp.ErrShortBytes
		}
		sz, off = int(b[1]), 3
	case 0xc8: // ext 16
		if len(b) < 4 {
			return 0, nil, b, msgp.ErrShortBytes
		}
		sz, off = int(binary.BigEndian.Uint16(b[1:])), 4
	case 0xc9: // ext 32
		if len(b) < 6 {
			return 0, nil, b, msgp.ErrShortBytes
		}
		sz, off = int(binary.BigEndian.Uint32(b[1:])), 6
	default:
		return 0, nil, b, errors.New("not an extension")
	}
	if len(b) < off || sz > len(b)-off {
		return 0, nil, b, msgp.ErrShortBytes
	}
	return int8(b[off-1]), b[off : off+sz], b[off+sz:], nil
}

// Largest Unix seconds whose nanoseconds fit an int64 (year 2262).
const maxUnixSeconds = math.MaxInt64/1_000_000_000 - 1

// readTime reads an event time: the EventTime extension (type 0: seconds
// and nanoseconds, big-endian uint32 each), integer seconds, or (as
// Fluentd accepts) float seconds.
func readTime(b []byte) (int64, []byte, error) {
	switch msgp.NextType(b) {
	case msgp.IntType:
		s, rest, err := msgp.ReadInt64Bytes(b)
		if err != nil {
			return 0, b, fail(ReasonMalformed, "time: %v", err)
		}
		if s < 0 || s > maxUnixSeconds {
			return 0, b, fail(ReasonBadTime, "time %d is out of range", s)
		}
		return s * 1e9, rest, nil
	case msgp.UintType:
		s, rest, err := msgp.ReadUint64Bytes(b)
		if err != nil {
			return 0, b, fail(ReasonMalformed, "time: %v", err)
		}
		if s > maxUnixSeconds {
			return 0, b, fail(ReasonBadTime, "time %d is out of range", s)
		}
		return int64(s) * 1e9, rest, nil
	case msgp.Float64Type, msgp.Float32Type:
		f, rest, err := msgp.ReadFloat64Bytes(b)
		if err != nil {
			return 0, b, fail(ReasonMalformed, "time: %v", err)
		}
		if !(f >= 0 && f <= maxUnixSeconds) {
			return 0, b, fail(ReasonBadTime, "time %v is out of range", f)
		}
		sec, frac := math.Modf(f)
		return int64(sec)*1e9 + int64(math.Round(frac*1e9)), rest, nil
	case msgp.ExtensionType, msgp.TimeType, msgp.Complex64Type, msgp.Complex128Type:
		typ, data, rest, err := readExt(b)
		if err != nil {
			return 0, b, fail(ReasonMalformed, "time: %v", err)
		}
		if typ != 0 || len(data) != 8 {
			return 0, b, fail(ReasonBadTime, "time is an extension of type %d and %d bytes, not EventTime (type 0, 8 bytes)", typ, len(data))
		}
		sec, ns := binary.BigEndian.Uint32(data), binary.BigEndian.Uint32(data[4:])
		if ns >= 1e9 {
			return 0, b, fail(ReasonBadTime, "EventTime with %d nanoseconds", ns)
		}
		return int64(sec)*1e9 + int64(ns), rest, nil
	}
	if len(b) == 0 {
		return 0, b, fail(ReasonMalformed, "time: %v", msgp.ErrShortBytes)
	}
	return 0, b, fail(ReasonBadTime, "time is a %v, not an integer or EventTime", msgp.NextType(b))
}

// readOptions reads the option map (nil is no options). Unknown options
// are ignored, as Fluentd ignores them.
func readOptions(b []byte, o *Options) ([]byte, error) {
	if msgp.IsNil(b) {
		return b[1:], nil
	}
	n, b, err := msgp.ReadMapHeaderBytes(b)
	if err != nil {
		return b, fail(ReasonMalformed, "options are a map: %v", err)
	}
	for range n {
		var k []byte
		if k, b, err = readStr(b); err != nil {
			return b, fail(ReasonMalformed, "option name: %v", err)
		}
		switch string(k) {
		case "chunk":
			var v []byte
			if v, b, err = readStr(b); err != nil {
				return b, fail(ReasonMalformed, "option chunk: %v", err)
			}
			o.Chunk = string(v)
		case "compressed":
			var v []byte
			if v, b, err = readStr(b); err != nil {
				return b, fail(ReasonMalformed, "option compressed: %v", err)
			}
			o.Compressed = string(v)
		case "fluent_signal":
			var v int64
			if v, b, err = msgp.ReadInt64Bytes(b); err != nil {
				return b, fail(ReasonMalformed, "option fluent_signal is not an integer")
			}
			o.Signal = v
		case "size":
			var v int64
			if v, b, err = msgp.ReadInt64Bytes(b); err != nil || v < 0 {
				return b, fail(ReasonMalformed, "option size is not a count")
			}
			o.Size = v
		default:
			if b, err = msgp.Skip(b); err != nil {
				return b, fail(ReasonMalformed, "option %q: %v", k, err)
			}
		}
	}
	return b, nil
}

// readPing reads the rest of ["PING", hostname, shared_key_salt,
// shared_key_hexdigest, username, password_hexdigest].
func readPing(b []byte, p *Ping) error {
	var f [5][]byte
	var err error
	for i := range f {
		if f[i], b, err = readStr(b); err != nil {
			return fail(ReasonMalformed, "PING element %d: %v", i+2, err)
		}
	}
	if err := endOfMessage(b); err != nil {
		return err
	}
	*p = Ping{Hostname: string(f[0]), SharedKeySalt: bytes.Clone(f[1]), SharedKeyHash: string(f[2]),
		Username: string(f[3]), PasswordHash: string(f[4])}
	return nil
}

// MetadataKey is the member of a record that holds the metadata of a
// Fluent Bit event sent as [[time, {metadata}], record].
const MetadataKey = "_metadata"

// appendMeta adds the metadata map meta to the JSON object the arena holds
// from off: {...} becomes {...,"_metadata":{...}}.
func (d *Decoder) appendMeta(out []byte, off int, meta []byte) ([]byte, error) {
	out = out[:len(out)-1] // the record's '}'
	if len(out)-off > 1 {
		out = append(out, ',')
	}
	out = jsonev.AppendString(out, []byte(MetadataKey))
	out = append(out, ':')
	out, _, err := d.value(out, meta, 1, off+d.lim.MaxRecordBytes)
	if err != nil {
		return out, err
	}
	return append(out, '}'), nil
}

// errOverLimit stops the encoding of a record that grew past its limit.
var errOverLimit = errors.New("forward: record over the limit")

// value appends the JSON encoding of the msgpack value at the start of b.
// It stops with errOverLimit once out would grow past limit bytes: a string
// is checked before it is encoded, a container before each element.
//
// The mapping: nil → null; booleans and integers as such; floats in their
// shortest form, NaN and ±Inf (which JSON lacks) → null; str → string, with
// invalid UTF-8 replaced by U+FFFD; bin → string when it is valid UTF-8,
// else the standard base64 of its bytes; arrays and maps as such, map keys
// that are not strings → their JSON text as the key; EventTime and msgpack
// timestamps → RFC 3339 strings; other extensions → {"ext": type, "data":
// base64}.
func (d *Decoder) value(out, b []byte, depth, limit int) ([]byte, []byte, error) {
	if depth > maxDepth {
		return out, b, fail(ReasonMalformed, "a record nested more than %d levels deep", maxDepth)
	}
	var err error
	switch msgp.NextType(b) {
	case msgp.NilType:
		return append(out, "null"...), b[1:], nil
	case msgp.BoolType:
		var v bool
		v, b, err = msgp.ReadBoolBytes(b)
		return strconv.AppendBool(out, v), b, err
	case msgp.IntType:
		var v int64
		v, b, err = msgp.ReadInt64Bytes(b)
		return strconv.AppendInt(out, v, 10), b, err
	case msgp.UintType:
		var v uint64
		v, b, err = msgp.ReadUint64Bytes(b)
		return strconv.AppendUint(out, v, 10), b, err
	case msgp.Float32Type:
		var v float32
		v, b, err = msgp.ReadFloat32Bytes(b)
		return appendFloat(out, float64(v), 32), b, err
	case msgp.Float64Type:
		var v float64
		v, b, err = msgp.ReadFloat64Bytes(b)
		return appendFloat(out, v, 64), b, err
	case msgp.StrType:
		var v []byte
		if v, b, err = msgp.ReadStringZC(b); err != nil {
			return out, b, err
		}
		if len(out)+len(v)+2 > limit {
			return out, b, errOverLimit
		}
		return jsonev.AppendString(out, v), b, nil
	case msgp.BinType:
		var v []byte
		if v, b, err = msgp.ReadBytesZC(b); err != nil {
			return out, b, err
		}
		if len(out)+len(v)+2 > limit {
			return out, b, errOverLimit
		}
		if utf8.Valid(v) {
			return jsonev.AppendString(out, v), b, err
		}
		out = append(out, '"')
		out = base64.StdEncoding.AppendEncode(out, v)
		return append(out, '"'), b, err
	case msgp.ArrayType:
		var n uint32
		if n, b, err = msgp.ReadArrayHeaderBytes(b); err != nil {
			return out, b, err
		}
		out = append(out, '[')
		for i := range n {
			if len(out) > limit {
				return out, b, errOverLimit
			}
			if i > 0 {
				out = append(out, ',')
			}
			if out, b, err = d.value(out, b, depth+1, limit); err != nil {
				return out, b, err
			}
		}
		return append(out, ']'), b, nil
	case msgp.MapType:
		var n uint32
		if n, b, err = msgp.ReadMapHeaderBytes(b); err != nil {
			return out, b, err
		}
		out = append(out, '{')
		for i := range n {
			if len(out) > limit {
				return out, b, errOverLimit
			}
			if i > 0 {
				out = append(out, ',')
			}
			switch msgp.NextType(b) {
			case msgp.StrType, msgp.BinType:
				var k []byte
				k, b, err = readStr(b)
				out = jsonev.AppendString(out, k)
			default:
				// A key that is not a string: its JSON text is the key.
				d.scratch, b, err = d.value(d.scratch[:0], b, depth+1, limit-len(out))
				if err == nil && len(out)+len(d.scratch) > limit {
					err = errOverLimit
				}
				if err == nil {
					out = jsonev.AppendString(out, d.scratch)
				}
			}
			if err != nil {
				return out, b, err
			}
			out = append(out, ':')
			if out, b, err = d.value(out, b, depth+1, limit); err != nil {
				return out, b, err
			}
		}
		return append(out, '}'), b, nil
	case msgp.ExtensionType, msgp.TimeType, msgp.Complex64Type, msgp.Complex128Type:
		var typ int8
		var data []byte
		if typ, data, b, err = readExt(b); err != nil {
			return out, b, err
		}
		if t, ok := extTime(typ, data); ok {
			out = append(out, '"')
			out = t.AppendFormat(out, time.RFC3339Nano)
			return append(out, '"'), b, nil
		}
		out = append(out, `{"ext":`...)
		out = strconv.AppendInt(out, int64(typ), 10)
		out = append(out, `,"data":"`...)
		out = base64.StdEncoding.AppendEncode(out, data)
		return append(out, `"}`...), b, nil
	}
	if len(b) == 0 {
		return out, b, msgp.ErrShortBytes
	}
	return out, b, fmt.Errorf("invalid msgpack byte 0x%02x", b[0])
}

// extTime reads Fluent's EventTime (type 0) and msgpack's timestamp (type
// -1, in its 32-, 64- and 96-bit forms).
func extTime(typ int8, data []byte) (time.Time, bool) {
	var sec int64
	var ns uint32
	switch {
	case typ == 0 && len(data) == 8:
		sec, ns = int64(binary.BigEndian.Uint32(data)), binary.BigEndian.Uint32(data[4:])
	case typ == -1 && len(data) == 4:
		sec = int64(binary.BigEndian.Uint32(data))
	case typ == -1 && len(data) == 8:
		v := binary.BigEndian.Uint64(data)
		sec, ns = int64(v&(1<<34-1)), uint32(v>>34)
	case typ == -1 && len(data) == 12:
		ns, sec = binary.BigEndian.Uint32(data), int64(binary.BigEndian.Uint64(data[4:]))
	default:
		return time.Time{}, false
	}
	if ns >= 1e9 || sec < -62135596800 || sec > 253402300799 { // years 1–9999: RFC 3339
		return time.Time{}, false
	}
	return time.Unix(sec, int64(ns)).UTC(), true
}

func appendFloat(out []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(out, "null"...)
	}
	// As encoding/json: no exponent for ordinary magnitudes.
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21)) {
		format = 'e'
	}
	return strconv.AppendFloat(out, f, format, -1, bits)
}
