package remote

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest/lineproto"
)

// wireEvent is an event as the read API and the tail encode it
// (docs/api.md).
type wireEvent struct {
	Seq        uint64                     `json:"seq"`
	Time       string                     `json:"time"`
	Story      string                     `json:"story"`
	Kind       string                     `json:"kind"`
	Tags       map[string]string          `json:"tags"`
	Fields     map[string]json.RawMessage `json:"fields"`
	Body       json.RawMessage            `json:"body"`
	BodyBase64 *string                    `json:"body_base64"`
	Source     string                     `json:"source"`
}

// DecodeEvent rebuilds an event from the API's JSON so that a sink sees
// what it would see reading the log in the server. The API prints fields
// as JSON, where 2.0 and 2 look alike; so the body (kept verbatim) is
// the source of truth where there is one: a JSON body keeps its format
// (its fields are derived from it again, as in the server), and a text
// body that is the story's line of line protocol is expanded as the line
// it was stored as. Only fields of other events come from "fields", with
// every number a float (the type of Graphite's and Trendlines' samples).
func DecodeEvent(data []byte) (event.Event, error) {
	var w wireEvent
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&w); err != nil {
		return event.Event{}, fmt.Errorf("remote: event: %w", err)
	}
	if w.Seq == 0 {
		return event.Event{}, errors.New("remote: event without a seq")
	}
	t, err := time.Parse(time.RFC3339Nano, w.Time)
	if err != nil {
		return event.Event{}, fmt.Errorf("remote: event %d: time: %w", w.Seq, err)
	}
	kind, err := event.ParseKind(w.Kind)
	if err != nil {
		return event.Event{}, fmt.Errorf("remote: event %d: %w", w.Seq, err)
	}
	if err := event.ValidateStory(w.Story); err != nil {
		return event.Event{}, fmt.Errorf("remote: event %d: %w", w.Seq, err)
	}
	e := event.Event{Seq: w.Seq, Time: t.UnixNano(), Story: w.Story, Kind: kind, Source: w.Source}
	if len(w.Tags) > 0 {
		e.Tags = w.Tags
	}
	switch {
	case w.BodyBase64 != nil:
		if e.Body, err = base64.StdEncoding.DecodeString(*w.BodyBase64); err != nil {
			return event.Event{}, fmt.Errorf("remote: event %d: body_base64: %w", w.Seq, err)
		}
	case len(w.Body) > 0 && w.Body[0] == '"':
		var s string
		if err := json.Unmarshal(w.Body, &s); err != nil {
			return event.Event{}, fmt.Errorf("remote: event %d: body: %w", w.Seq, err)
		}
		e.Body = []byte(s)
		if kind == event.KindMetric && isStoryLine(e.Body, w.Story) {
			e.Format = event.FormatLine
			e.Tags = nil // derived from the line, exactly
			return e, nil
		}
	case len(w.Body) > 0 && !bytes.Equal(w.Body, []byte("null")):
		e.Body, e.Format = []byte(w.Body), event.FormatJSON
		return e, nil // fields are derived from the body
	}
	for k, raw := range w.Fields {
		v, err := fieldValue(raw)
		if err != nil {
			return event.Event{}, fmt.Errorf("remote: event %d: field %q: %w", w.Seq, k, err)
		}
		if e.Fields == nil {
			e.Fields = make(map[string]event.Value, len(w.Fields))
		}
		e.Fields[k] = v
	}
	return e, nil
}

// isStoryLine reports whether body is a line of line protocol whose
// measurement is the story (how line-protocol ingest stores each line).
func isStoryLine(body []byte, story string) bool {
	m, _, err := lineproto.Parse(body, lineproto.Nanosecond, 1)
	return err == nil && string(m) == story
}

func fieldValue(raw json.RawMessage) (event.Value, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return event.Value{}, errors.New("empty")
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return event.Value{}, err
		}
		return event.String(s), nil
	case 't', 'f':
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return event.Value{}, err
		}
		return event.Bool(b), nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return event.Value{}, fmt.Errorf("not a number, string or boolean: %.40s", raw)
	}
	return event.Float(f), nil
}
