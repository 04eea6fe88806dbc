// Package event is chronostream's data model: the Event stored in a story of a
// chronicle, its typed fields, and the cursor that addresses it. It has no
// dependencies beyond the standard library so that clients can import it freely.
package event

import (
	"fmt"
	"time"
)

// Kind says what an event represents. It never changes how an event is stored.
type Kind uint8

// The kinds of event. KindEvent is the default for payloads that say nothing else.
const (
	KindEvent Kind = iota
	KindLog
	KindMetric
	KindTrace
	KindAnnotation
)

var kindNames = [...]string{"event", "log", "metric", "trace", "annotation"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind returns the kind named s.
func ParseKind(s string) (Kind, error) {
	for i, n := range kindNames {
		if n == s {
			return Kind(i), nil
		}
	}
	return 0, fmt.Errorf("unknown kind %q (want one of event, log, metric, trace, annotation)", s)
}

// MarshalText encodes the kind as its name.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText decodes a kind name.
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// Event is one record of a story.
//
// Seq is assigned by the log when the event is appended and is zero before.
// Time is the event time in Unix nanoseconds; zero means "use the ingest time".
// Body is the original payload, kept verbatim; Format says how it is
// encoded. Tags and Fields may be derived from a body at read time instead
// of being stored twice.
type Event struct {
	Seq    uint64
	Time   int64
	Story  string
	Kind   Kind
	Tags   map[string]string
	Fields map[string]Value
	Body   []byte
	Format Format
	// Source is the id of the source (request or connection) the event came
	// from; empty when unknown. For a client that names its stream
	// (X-Chronostream-Stream), it is the client's stream id.
	Source string
	// Index numbers the event within its client stream when Indexed is
	// set: the client's numbering, stored with the event so that the
	// server can drop events it already holds when a client resends them.
	Index   uint64
	Indexed bool
}

// Format says how an event's Body is encoded.
type Format uint8

// Body formats.
const (
	// FormatRaw is opaque bytes (text or binary).
	FormatRaw Format = iota
	// FormatJSON is one JSON value; its members can be tags and fields.
	FormatJSON
	// FormatLine is one line of InfluxDB line protocol.
	FormatLine
)

// MaxFormat is the largest known Format.
const MaxFormat = FormatLine

// TimeValue returns Time as a time.Time in UTC.
func (e *Event) TimeValue() time.Time { return time.Unix(0, e.Time).UTC() }
