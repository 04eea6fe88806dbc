package sink

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/chronostream/chronostream/event"
)

// Config is one sink: a section of the server's config file (converted to
// JSON, snake_case keys) or the flags of `chronostream forward`. Every
// type shares it; Settings is the type's own section, passed to its
// Factory as is.
type Config struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Chronicle string `json:"chronicle"`
	// Selection: stories (names or path.Match patterns, e.g. "cpu_*"),
	// kinds and tags (key=value, all must match). Empty selects all.
	Stories []string          `json:"stories,omitempty"`
	Kinds   []string          `json:"kinds,omitempty"`
	Tags    map[string]string `json:"tags,omitempty"`
	// Start applies when the sink has no cursor yet: "beginning" (the
	// default) or "now". WindowSec > 0 starts at the first event (in log
	// order) whose time is at or after now − WindowSec instead.
	Start     string `json:"start,omitempty"`
	WindowSec int64  `json:"window_sec,omitempty"`
	// A batch is sent when it holds BatchEvents events or BatchBytes bytes
	// (events' encoded size, estimated), or when its oldest event has
	// waited BatchAge.
	BatchEvents int      `json:"batch_events,omitempty"`
	BatchBytes  int      `json:"batch_bytes,omitempty"`
	BatchAge    Duration `json:"batch_age,omitempty"`
	// RetryMax caps the backoff between retries of a failing batch.
	RetryMax Duration `json:"retry_max,omitempty"`

	Settings json.RawMessage `json:"settings,omitempty"`
}

// Defaults.
const (
	DefaultBatchEvents = 5000
	DefaultBatchBytes  = 4 << 20
	DefaultBatchAge    = 200 * time.Millisecond
	DefaultRetryMax    = 30 * time.Second
	// MaxBatchEvents bounds what one batch (and one read-ahead chunk) holds.
	MaxBatchEvents = 100_000
	MaxBatchBytes  = 64 << 20
)

// Duration is a time.Duration that JSON gives as "1.5s" or as seconds.
type Duration time.Duration

// UnmarshalJSON accepts a Go duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			if f, ferr := strconv.ParseFloat(s, 64); ferr == nil {
				*d = Duration(f * float64(time.Second))
				return nil
			}
			return err
		}
		*d = Duration(v)
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("want a duration (\"500ms\") or seconds, got %s", b)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// MarshalJSON gives the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Validate checks the config and fills in defaults. It does not build the
// sink (New validates the type's settings).
func (c *Config) Validate() error {
	if err := ValidateName(c.Name); err != nil {
		return err
	}
	if c.Type == "" {
		return fmt.Errorf("sink %s: a type is required (one of %s)", c.Name, strings.Join(Kinds(), ", "))
	}
	if err := event.ValidateChronicle(c.Chronicle); err != nil {
		return fmt.Errorf("sink %s: chronicle: %w", c.Name, err)
	}
	for _, p := range c.Stories {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("sink %s: story pattern %q: %w", c.Name, p, err)
		}
	}
	for _, k := range c.Kinds {
		if _, err := event.ParseKind(k); err != nil {
			return fmt.Errorf("sink %s: kinds: %w", c.Name, err)
		}
	}
	switch c.Start {
	case "":
		c.Start = "beginning"
	case "beginning", "now":
	default:
		return fmt.Errorf("sink %s: start: want beginning or now, got %q", c.Name, c.Start)
	}
	if c.WindowSec < 0 {
		return fmt.Errorf("sink %s: window_sec cannot be negative", c.Name)
	}
	switch {
	case c.BatchEvents == 0:
		c.BatchEvents = DefaultBatchEvents
	case c.BatchEvents < 0 || c.BatchEvents > MaxBatchEvents:
		return fmt.Errorf("sink %s: batch_events: want 1 to %d, got %d", c.Name, MaxBatchEvents, c.BatchEvents)
	}
	switch {
	case c.BatchBytes == 0:
		c.BatchBytes = DefaultBatchBytes
	case c.BatchBytes < 0 || c.BatchBytes > MaxBatchBytes:
		return fmt.Errorf("sink %s: batch_bytes: want 1 to %d, got %d", c.Name, MaxBatchBytes, c.BatchBytes)
	}
	switch {
	case c.BatchAge == 0:
		c.BatchAge = Duration(DefaultBatchAge)
	case c.BatchAge < 0:
		return fmt.Errorf("sink %s: batch_age cannot be negative", c.Name)
	}
	switch {
	case c.RetryMax == 0:
		c.RetryMax = Duration(DefaultRetryMax)
	case c.RetryMax < 0:
		return fmt.Errorf("sink %s: retry_max cannot be negative", c.Name)
	}
	return nil
}

// DeadLetterPrefix starts the story of every sink's dead letters: events a
// destination refused go to story "_deadletter/<sink>" of the chronicle the
// sink reads, with the reason. Sinks never select these stories.
const DeadLetterPrefix = "_deadletter/"

// selection is a sink's filter on events (after their bodies are expanded).
type selection struct {
	stories []string
	kinds   []event.Kind
	tags    map[string]string
}

func newSelection(c *Config) (*selection, error) {
	s := &selection{stories: c.Stories, tags: c.Tags}
	for _, k := range c.Kinds {
		kind, err := event.ParseKind(k)
		if err != nil {
			return nil, err
		}
		s.kinds = append(s.kinds, kind)
	}
	return s, nil
}

func (s *selection) match(e *event.Event) bool {
	if strings.HasPrefix(e.Story, DeadLetterPrefix) {
		return false
	}
	if len(s.stories) > 0 && !matchStory(s.stories, e.Story) {
		return false
	}
	if len(s.kinds) > 0 && !contains(s.kinds, e.Kind) {
		return false
	}
	for k, v := range s.tags {
		if got, ok := e.Tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func matchStory(patterns []string, story string) bool {
	for _, p := range patterns {
		if p == story {
			return true
		}
		if ok, _ := path.Match(p, story); ok {
			return true
		}
	}
	return false
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

var errStopped = errors.New("sink: stopped")
