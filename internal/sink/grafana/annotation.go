package grafana

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/chronostream/chronostream/event"
)

// The annotation convention (docs/annotations.md): an event of kind annotation
// with a string field text (required) and optional title; its event tags
// and the comma-separated string field tags become Grafana tags. A region
// is one event with an int field time_end, or two events sharing a string
// field region with phase "start" then "end". The string field activity
// ("action" or "probe") is what only_actions looks at. Writers of
// annotations (chronostream annotate) use these names too.
const (
	FieldText     = "text"
	FieldTitle    = "title"
	FieldTags     = "tags"
	FieldTimeEnd  = "time_end"
	FieldRegion   = "region"
	FieldPhase    = "phase"
	FieldActivity = "activity"

	PhaseStart = "start"
	PhaseEnd   = "end"
)

// Tags chronostream adds so that it can find its annotations again after a
// retry or a restart: idTagPrefix + chronicle/seq names the event an
// annotation came from; regionTagPrefix + id names a region's start.
const (
	idTagPrefix     = "cs:"
	regionTagPrefix = "region:"
)

// Bounds on what one event can put in an annotation.
const (
	maxText   = 64 << 10
	maxTagLen = 256
)

// note is an annotation event, decoded.
type note struct {
	seq      uint64
	time     int64 // Unix ms
	timeEnd  int64 // Unix ms; 0: not a one-event region
	text     string
	tags     []string // Grafana tags from the event (not the sink's)
	region   string
	phase    string // "", PhaseStart or PhaseEnd
	activity string
}

// idTag is the tag naming the event an annotation came from.
func idTag(chronicle string, seq uint64) string {
	return idTagPrefix + chronicle + "/" + strconv.FormatUint(seq, 10)
}

func (n *note) regionTag() string { return regionTagPrefix + n.region }

// isAction reports whether only_actions lets the note through: actions,
// and annotations that are no activity at all (an experiment's region).
func (n *note) isAction() bool { return n.activity == "" || n.activity == "action" }

// noteOf decodes an event. ok is false for events that are not
// annotations (the sink skips them); err says why an annotation event
// breaks the convention (the runner dead-letters it with that reason).
// e's tags and fields must already be expanded from its body.
func noteOf(e *event.Event) (n note, ok bool, err error) {
	if e.Kind != event.KindAnnotation {
		return note{}, false, nil
	}
	n = note{seq: e.Seq, time: e.Time / 1e6}
	str := func(name string) (string, error) {
		v, has := e.Fields[name]
		if !has {
			return "", nil
		}
		if v.Type() != event.TypeString {
			return "", fmt.Errorf("field %q is %s, want a string", name, v.Type())
		}
		return v.StringValue(), nil
	}
	var title, plain string
	for _, f := range []struct {
		name string
		dst  *string
	}{{FieldText, &n.text}, {FieldTitle, &title}, {FieldTags, &plain}, {FieldRegion, &n.region}, {FieldPhase, &n.phase}, {FieldActivity, &n.activity}} {
		if *f.dst, err = str(f.name); err != nil {
			return note{}, true, err
		}
	}
	switch n.activity {
	case "", "action", "probe":
	default:
		return note{}, true, fmt.Errorf("field activity is %q, want action or probe", n.activity)
	}
	switch n.phase {
	case "":
		if n.region != "" {
			return note{}, true, errors.New("field region needs field phase (start or end)")
		}
	case PhaseStart, PhaseEnd:
		if n.region == "" {
			return note{}, true, fmt.Errorf("phase %s needs field region (the region's id)", n.phase)
		}
	default:
		return note{}, true, fmt.Errorf("field phase is %q, want start or end", n.phase)
	}
	if v, has := e.Fields[FieldTimeEnd]; has {
		if n.phase != "" {
			return note{}, true, errors.New("field time_end makes one event a region; it cannot have a phase too")
		}
		// Unix ns, as the web UI reads it: a time in another unit ends
		// before the event and is refused below, not guessed at.
		var ns int64
		switch v.Type() {
		case event.TypeInt:
			ns = v.IntValue()
		case event.TypeUint:
			ns = int64(min(v.UintValue(), 1<<63-1))
		default:
			return note{}, true, fmt.Errorf("field time_end is %s %s, want an integer (Unix ns)", v.Type(), v.Text())
		}
		n.timeEnd = ns / 1e6
		if n.timeEnd < n.time {
			return note{}, true, errors.New("field time_end is before the event's time (it is Unix nanoseconds)")
		}
	}
	if n.text == "" && n.phase != PhaseEnd {
		return note{}, true, errors.New("field text is required (a non-empty string)")
	}
	if title != "" {
		// Grafana annotations have no title: it leads the text.
		n.text = title + "\n" + n.text
	}
	if len(n.text) > maxText {
		return note{}, true, fmt.Errorf("text is %d bytes, at most %d", len(n.text), maxText)
	}
	if len(n.region) > maxTagLen {
		return note{}, true, fmt.Errorf("field region is %d bytes, at most %d", len(n.region), maxTagLen)
	}
	keys := make([]string, 0, len(e.Tags))
	for k := range e.Tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if v := e.Tags[k]; v != "" {
			n.tags = append(n.tags, k+":"+v)
		} else {
			n.tags = append(n.tags, k)
		}
	}
	for t := range strings.SplitSeq(plain, ",") {
		if t = strings.TrimSpace(t); t != "" {
			n.tags = append(n.tags, t)
		}
	}
	for _, t := range n.tags {
		if len(t) > maxTagLen {
			return note{}, true, fmt.Errorf("tag %.40q… is %d bytes, at most %d", t, len(t), maxTagLen)
		}
	}
	if len(n.tags) > maxTags/2 {
		return note{}, true, fmt.Errorf("%d tags, at most %d", len(n.tags), maxTags/2)
	}
	return n, true, nil
}
