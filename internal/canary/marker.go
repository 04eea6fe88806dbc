package canary

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// A canary event carries its marker: the run id ("canary"), the protocol
// ("proto"), its sequence number ("seq") and its send time in Unix ns
// ("sent"). Where the marker sits depends on the protocol's mapping: JSON
// bodies (NDJSON, WebSocket, Forward) and line protocol show it in the
// event's tags and fields; an OTLP log record keeps it in the body's
// "attributes" object.
type marker struct {
	run  string
	seq  uint64
	sent time.Time
}

// Marker names in payloads.
const (
	keyRun   = "canary"
	keyProto = "proto"
	keySeq   = "seq"
	keySent  = "sent"
)

var errNoMarker = errors.New("not a canary event")

// parseEvent extracts the marker from an event as the read API and the tail
// show it. It is a pure function of its input (fuzzed).
func parseEvent(data []byte) (marker, error) {
	var ev struct {
		Tags   map[string]string          `json:"tags"`
		Fields map[string]json.RawMessage `json:"fields"`
		Body   json.RawMessage            `json:"body"`
	}
	if err := json.Unmarshal(data, &ev); err != nil {
		return marker{}, err
	}
	if m, ok := markerFrom(ev.Tags, ev.Fields); ok {
		return m, nil
	}
	var body struct {
		Attributes map[string]json.RawMessage `json:"attributes"`
	}
	if len(ev.Body) > 0 && ev.Body[0] == '{' && json.Unmarshal(ev.Body, &body) == nil {
		if m, ok := markerFrom(nil, body.Attributes); ok {
			return m, nil
		}
	}
	return marker{}, errNoMarker
}

// markerFrom reads the marker from tags (line protocol's run) or values.
func markerFrom(tags map[string]string, vals map[string]json.RawMessage) (marker, bool) {
	var m marker
	if r, ok := tags[keyRun]; ok {
		m.run = r
	} else if err := json.Unmarshal(vals[keyRun], &m.run); err != nil {
		return m, false
	}
	seq, ok := integer(vals[keySeq])
	if !ok || seq <= 0 {
		return m, false
	}
	m.seq = uint64(seq)
	if sent, ok := integer(vals[keySent]); ok && sent > 0 {
		m.sent = time.Unix(0, sent)
	}
	return m, m.run != ""
}

// integer reads a JSON integer exactly (a float64 would round a Unix ns time).
func integer(raw json.RawMessage) (int64, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	return n, err == nil
}
