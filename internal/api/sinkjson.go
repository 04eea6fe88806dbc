package api

import "github.com/chronostream/chronostream/event"

// EventJSON encodes events for sinks exactly as the read API and tail
// encode them, so that a receiver of a sink (a webhook) parses the same
// objects as a reader of GET …/events?format=ndjson. The zero value is
// ready; it is not safe for concurrent use.
type EventJSON struct{ x expander }

// Expand derives e's tags and fields from its body (JSON or line
// protocol) as reads do, keeping those it already has.
func (j *EventJSON) Expand(e *event.Event) { j.x.expand(e) }

// Append expands e and appends its JSON object, with no trailing newline.
func (j *EventJSON) Append(b []byte, e *event.Event) []byte {
	j.x.expand(e)
	return appendEvent(b, e, "")
}
