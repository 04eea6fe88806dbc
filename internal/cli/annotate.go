package cli

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/jsonev"
	"github.com/chronostream/chronostream/internal/sink/grafana"
	"github.com/chronostream/chronostream/internal/tlsconf"
)

// annotate records one annotation event (docs/annotations.md):
// a point, or the start or end of a region, for the grafana sink and the
// web UI to draw.

const groupAnnotate = "Annotation"

type annotateConfig struct {
	remote    remoteConfig
	chronicle string
	story     string
	tags      annotationTags
	title     string
	start     string
	end       string
	at        string
	atEnd     string
	activity  string
	timeout   duration
}

var annotateGroups = []string{groupServer, groupAnnotate, groupOps}

func newAnnotateFlags(c *annotateConfig) (*flag.FlagSet, []option) {
	var opts []option
	fs, add := newClientFlags("annotate", &c.remote, &opts)
	declare(fs, add, (*stringValue)(&c.chronicle), option{name: "chronicle", short: "r", metavar: "NAME", group: groupAnnotate,
		usage: "Chronicle to record the annotation in (required)."})
	c.story = "annotations"
	declare(fs, add, (*stringValue)(&c.story), option{name: "story", short: "s", metavar: "NAME", group: groupAnnotate,
		usage: "Story to record it in."})
	declare(fs, add, &c.tags, option{name: "tag", metavar: "KEY=VALUE|TAG", group: groupAnnotate, list: true,
		usage: "A tag of the annotation (repeatable); Grafana shows KEY=VALUE as KEY:VALUE and a plain\nTAG as it is."})
	declare(fs, add, (*stringValue)(&c.title), option{name: "title", metavar: "TITLE", group: groupAnnotate,
		usage: "A title (Grafana shows it as the text's first line)."})
	declare(fs, add, (*stringValue)(&c.start), option{name: "start", metavar: "ID", group: groupAnnotate,
		usage: "Open the region ID (an experiment, a deploy): the grafana sink draws it from here to\nthe matching --end ID."})
	declare(fs, add, (*stringValue)(&c.end), option{name: "end", metavar: "ID", group: groupAnnotate,
		usage: "Close the region ID opened by --start ID (TEXT is optional)."})
	declare(fs, add, (*stringValue)(&c.at), option{name: "time", metavar: "TIME", group: groupAnnotate,
		usage: "When it happened: RFC 3339, Unix time (s, ms, us or ns) or an age such as 5m.\nDefault: when the server stores it."})
	declare(fs, add, (*stringValue)(&c.atEnd), option{name: "time-end", metavar: "TIME", group: groupAnnotate,
		usage: "Make this one annotation a region ending at TIME (as --time)."})
	declare(fs, add, (*stringValue)(&c.activity), option{name: "activity", metavar: "action|probe", group: groupAnnotate,
		usage: "A chaos experiment's activity type; a grafana sink with only_actions skips probes."})
	c.timeout = duration(30 * time.Second)
	declare(fs, add, &c.timeout, option{name: "timeout", metavar: "DURATION", group: groupAnnotate,
		usage: "How long to keep trying while the server is unreachable or busy."})
	return fs, opts
}

// annotationTags is the repeatable --tag: KEY=VALUE, or a plain TAG (a
// tag with an empty value, which the grafana sink sends as TAG).
type annotationTags map[string]string

func (t *annotationTags) Set(v string) error {
	k, val, _ := strings.Cut(v, "=")
	if k == "" {
		return fmt.Errorf("want KEY=VALUE or TAG, not %q", v)
	}
	if *t == nil {
		*t = annotationTags{}
	}
	(*t)[k] = val
	return nil
}

func (t *annotationTags) String() string {
	if t == nil {
		return ""
	}
	var parts []string
	for _, k := range sortedMapKeys(*t) {
		parts = append(parts, k+"="+(*t)[k])
	}
	return strings.Join(parts, ",")
}

func runAnnotate(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	c := &annotateConfig{}
	fs, opts := newAnnotateFlags(c)
	pos, warnings, err := parseCommand("annotate", fs, opts, &c.remote, args, environ)
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(stdout, `Usage: chronostream annotate [flags] -r CHRONICLE TEXT...
       chronostream annotate [flags] -r CHRONICLE --start ID TEXT...
       chronostream annotate [flags] -r CHRONICLE --end ID [TEXT...]

Records an annotation: an event of kind annotation in the story (default
"annotations") of CHRONICLE, which a grafana sink turns into a Grafana
annotation and the web UI draws on charts. --start ID and --end ID mark a
region (a chaos experiment, a deploy): one region annotation from the start to
the end. It exits once the server has stored the event (durable); a retry after
a lost answer is stored once.

    chronostream annotate -r prod --tag service=api --title Deploy "v2.3.1 rolled out"
    chronostream annotate -r prod --start exp-42 --activity action "kill one pod"
    chronostream annotate -r prod --end exp-42
`, fs, opts, annotateGroups)
		return exitOK
	}
	if err == nil {
		printWarnings(stderr, "annotate", warnings)
		var body []byte
		if body, err = c.event(strings.Join(pos, " "), time.Now()); err == nil {
			return c.post(ctx, body, stdout, stderr)
		}
	}
	return usageError(stderr, "annotate", err)
}

// event returns the annotation's JSON body, following the convention the
// grafana sink reads (its Field* names).
func (c *annotateConfig) event(text string, now time.Time) ([]byte, error) {
	if c.chronicle == "" {
		return nil, errors.New("a chronicle is required (-r NAME)")
	}
	if err := event.ValidateChronicle(c.chronicle); err != nil {
		return nil, err
	}
	if err := event.ValidateStory(c.story); err != nil {
		return nil, err
	}
	body := map[string]any{"kind": event.KindAnnotation.String()}
	switch {
	case c.start != "" && c.end != "":
		return nil, errors.New("--start and --end: one event opens or closes a region, not both")
	case (c.start != "" || c.end != "") && c.atEnd != "":
		return nil, errors.New("--time-end makes one annotation a region; it does not go with --start or --end")
	case c.start != "":
		body[grafana.FieldRegion], body[grafana.FieldPhase] = c.start, grafana.PhaseStart
	case c.end != "":
		body[grafana.FieldRegion], body[grafana.FieldPhase] = c.end, grafana.PhaseEnd
	}
	if strings.TrimSpace(text) == "" && c.end == "" {
		return nil, errors.New("the annotation's TEXT is required")
	}
	if text != "" {
		body[grafana.FieldText] = text
	}
	if c.title != "" {
		body[grafana.FieldTitle] = c.title
	}
	switch c.activity {
	case "":
	case "action", "probe":
		body[grafana.FieldActivity] = c.activity
	default:
		return nil, fmt.Errorf("--activity %q: want action or probe", c.activity)
	}
	if len(c.tags) > 0 {
		body["tags"] = map[string]string(c.tags)
	}
	var start int64
	if c.at != "" {
		t, err := unixNanos(c.at, now)
		if err != nil {
			return nil, fmt.Errorf("--time: %w", err)
		}
		start, body["time"] = t, t
	}
	if c.atEnd != "" {
		t, err := unixNanos(c.atEnd, now)
		if err != nil {
			return nil, fmt.Errorf("--time-end: %w", err)
		}
		if t < cmp.Or(start, now.UnixNano()) {
			return nil, errors.New("--time-end is before the annotation's time")
		}
		body[grafana.FieldTimeEnd] = t
	}
	return json.Marshal(body)
}

// unixNanos reads TIME as tail's --from does (RFC 3339, Unix ns or an
// age), and Unix times of any unit as ingest does.
func unixNanos(s string, now time.Time) (int64, error) {
	v, err := resolveFrom(s, now)
	if err != nil {
		return 0, fmt.Errorf("%q: want RFC 3339, Unix time or an age such as 5m", s)
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UnixNano(), nil
	}
	i, _ := strconv.ParseInt(v, 10, 64)
	if ns, ok := jsonev.UnixInt(i); ok {
		return ns, nil
	}
	return 0, fmt.Errorf("%q is not a Unix time after 1970", s)
}

// post stores the event through the events API, trying the servers in
// turn until one has stored it or the timeout passes. The request names a
// client stream of its own (index 0), so that a retry after a lost answer
// is recognised by the server and stored once.
func (c *annotateConfig) post(ctx context.Context, body []byte, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(c.timeout))
	defer cancel()
	var id [8]byte
	_, _ = rand.Read(id[:])
	stream := "annotate-" + hex.EncodeToString(id[:])
	hc := c.remote.httpClient(nil)
	hc.Timeout = 10 * time.Second
	var lastErr error
	for attempt := 0; ; attempt++ {
		server := httpBase(c.remote.servers[attempt%len(c.remote.servers)])
		target := server + "/api/v1/chronicles/" + url.PathEscape(c.chronicle) + "/stories/" + url.PathEscape(c.story) + "/events"
		seq, err := postOnce(ctx, hc, target, c.remote.token, stream, body)
		if err == nil {
			what := "annotation"
			switch {
			case c.start != "":
				what = "region " + strconv.Quote(c.start) + " opened"
			case c.end != "":
				what = "region " + strconv.Quote(c.end) + " closed"
			}
			if seq != 0 {
				fmt.Fprintf(stdout, "%s: stored in %s/%s at seq %d\n", what, c.chronicle, c.story, seq)
			} else {
				fmt.Fprintf(stdout, "%s: stored in %s/%s\n", what, c.chronicle, c.story)
			}
			return exitOK
		}
		var fatal *errFatal
		if errors.As(err, &fatal) {
			fmt.Fprintf(stderr, "chronostream annotate: %s refused the annotation: %s\n", server, fatal.msg)
			return exitFailure
		}
		if tlsconf.Permanent(err) && len(c.remote.servers) == 1 {
			fmt.Fprintf(stderr, "chronostream annotate: not stored: %v\n", err)
			return exitFailure
		}
		lastErr = err
		delay := min(200*time.Millisecond<<min(attempt, 5), 5*time.Second)
		select {
		case <-ctx.Done():
			fmt.Fprintf(stderr, "chronostream annotate: not stored: %v\n", lastErr)
			return exitFailure
		case <-time.After(delay):
		}
	}
}

// postOnce sends the event once. An answer that retrying cannot change (a
// 4xx other than 408 and 429) is an *errFatal.
func postOnce(ctx context.Context, hc *http.Client, target, token, stream string, body []byte) (seq uint64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, &errFatal{msg: err.Error()}
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("X-Chronostream-Stream", stream)
	req.Header.Set("X-Chronostream-Index", "0")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusOK:
		var r struct {
			FirstSeq uint64 `json:"first_seq"`
		}
		_ = json.Unmarshal(answer, &r)
		return r.FirstSeq, nil
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return 0, fmt.Errorf("%s: %s", resp.Status, problemDetail(answer))
	default:
		return 0, &errFatal{code: resp.StatusCode, msg: resp.Status + ": " + problemDetail(answer)}
	}
}
