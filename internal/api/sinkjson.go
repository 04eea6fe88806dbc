package api

import "github.com/chronostream/chronostream/event"

// AppendEventJSON appends e as the read API and tail encode it, with no
// trailing newline, so that a sink's receiver (a webhook) parses the same
// objects as a reader of GET …/events?format=ndjson. Tags and fields are
// those e holds: expand a verbatim body first (the sink runner does).
func AppendEventJSON(b []byte, e *event.Event) []byte { return appendEvent(b, e, "") }
