package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chronostream/chronostream/internal/tlsconf"
)

type tailConfig struct {
	remote     remoteConfig
	chronicle  string
	story      string
	after      string
	from       string
	output     choice
	kind       stringList
	tags       stringList
	cursorFile string
}

var tailGroups = []string{groupServer, groupTail, groupOps}

func newTailFlags(c *tailConfig) (*flag.FlagSet, []option) {
	var opts []option
	fs, add := newClientFlags("tail", &c.remote, &opts)
	declare(fs, add, (*stringValue)(&c.chronicle), option{name: "chronicle", short: "r", metavar: "NAME", group: groupTail,
		usage: "Chronicle to follow (or the first argument)."})
	declare(fs, add, (*stringValue)(&c.story), option{name: "story", short: "s", metavar: "NAME", group: groupTail,
		usage: "Story to follow (or the second argument); without one, every story of the chronicle."})
	declare(fs, add, (*stringValue)(&c.after), option{name: "after", metavar: "SEQ", group: groupTail,
		usage: "Start after this cursor (the seq printed when a previous tail stopped); 0 is from the\noldest event kept. Default: only events stored from now on."})
	declare(fs, add, (*stringValue)(&c.from), option{name: "from", metavar: "TIME", group: groupTail,
		usage: "Start at the events ingested at or after TIME: RFC 3339, Unix ns, or an age such as 10m."})
	c.output = choice{value: "pretty", choices: []string{"pretty", "json"}}
	declare(fs, add, &c.output, option{name: "output", short: "o", metavar: "pretty|json", group: groupTail,
		usage: "pretty: one line per event (time, story, kind, tags, then fields or the body);\njson: the API's event objects, one per line (NDJSON)."})
	declare(fs, add, &c.kind, option{name: "kind", metavar: "KIND", group: groupTail, list: true,
		usage: "Only events of this kind (repeatable: any of them)."})
	declare(fs, add, &c.tags, option{name: "tag", metavar: "KEY=VALUE", group: groupTail, list: true,
		usage: "Only events with this tag (repeatable; the same key twice is either value)."})
	declare(fs, add, (*stringValue)(&c.cursorFile), option{name: "cursor-file", metavar: "FILE", group: groupTail,
		usage: "Keep the cursor in FILE: resume after it when it exists (unless --after or --from), and\nsave it on exit and on every reconnect."})
	return fs, opts
}

func runTail(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	c := &tailConfig{}
	fs, opts := newTailFlags(c)
	pos, warnings, err := parseCommand("tail", fs, opts, &c.remote, args, environ)
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(stdout, `Usage: chronostream tail [flags] [CHRONICLE [STORY]]

Follows a story, or every story of a chronicle, as the server stores events
(Server-Sent Events; nothing polls). On a dropped connection or a server restart
it reconnects and resumes exactly after the last event it printed. On exit
(Ctrl-C) it prints the cursor on stderr: run it again with --after CURSOR to
continue where it stopped, or use --cursor-file.

    chronostream tail host-1 cpu_usage
    chronostream tail -o json --after 1300001 app
`, fs, opts, tailGroups)
		return exitOK
	}
	if err == nil {
		switch {
		case len(pos) > 2:
			err = fmt.Errorf("unexpected argument %q (tail takes CHRONICLE and STORY)", pos[2])
		case len(pos) > 0 && c.chronicle != "":
			err = errors.New("the chronicle is given twice (argument and --chronicle)")
		case len(pos) > 1 && c.story != "":
			err = errors.New("the story is given twice (argument and --story)")
		}
	}
	if err == nil {
		if len(pos) > 0 {
			c.chronicle = pos[0]
		}
		if len(pos) > 1 {
			c.story = pos[1]
		}
		if c.chronicle == "" {
			err = errors.New("which chronicle? (tail CHRONICLE [STORY])")
		}
	}
	if err == nil && c.after != "" {
		if _, perr := strconv.ParseUint(c.after, 10, 64); perr != nil {
			err = fmt.Errorf("--after %q: want a cursor (an unsigned integer)", c.after)
		}
	}
	if err == nil && c.from != "" {
		c.from, err = resolveFrom(c.from, time.Now())
	}
	for _, t := range c.tags {
		if err == nil && !strings.Contains(t, "=") {
			err = fmt.Errorf("--tag %q: want KEY=VALUE", t)
		}
	}
	if err != nil {
		return usageError(stderr, "tail", err)
	}
	printWarnings(stderr, "tail", warnings)
	if c.cursorFile != "" && c.after == "" && c.from == "" {
		if b, err := os.ReadFile(c.cursorFile); err == nil {
			if s := strings.TrimSpace(string(b)); s != "" {
				if _, err := strconv.ParseUint(s, 10, 64); err == nil {
					c.after = s
				}
			}
		}
	}
	t := &tailer{cfg: c, out: bufio.NewWriter(stdout), stderr: stderr, cursor: c.after,
		hc: c.remote.httpClient(nil)}
	code := t.run(ctx)
	t.out.Flush()
	t.saveCursor()
	if t.cursor != "" {
		fmt.Fprintf(stderr, "chronostream tail: cursor %s (resume with --after %s)\n", t.cursor, t.cursor)
	}
	return code
}

// resolveFrom accepts an age (10m: that long ago) besides the server's
// RFC 3339 and Unix ns.
func resolveFrom(s string, now time.Time) (string, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d).UTC().Format(time.RFC3339Nano), nil
	}
	if _, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return s, nil
	}
	if _, err := strconv.ParseInt(s, 10, 64); err == nil {
		return s, nil
	}
	return "", fmt.Errorf("--from %q: want RFC 3339, Unix nanoseconds or an age such as 10m", s)
}

type tailer struct {
	cfg    *tailConfig
	out    *bufio.Writer
	stderr io.Writer
	hc     *http.Client
	cursor string // the last event's or heartbeat's id: resume after it
	server int
}

// errFatal marks a reply that retrying will not change.
type errFatal struct {
	code int
	msg  string
}

func (e *errFatal) Error() string { return e.msg }

func (t *tailer) url() string {
	base := httpBase(t.cfg.remote.servers[t.server%len(t.cfg.remote.servers)])
	p := "/api/v1/chronicles/" + url.PathEscape(t.cfg.chronicle)
	if t.cfg.story != "" {
		p += "/stories/" + url.PathEscape(t.cfg.story)
	}
	q := url.Values{}
	for _, k := range t.cfg.kind {
		q.Add("kind", k)
	}
	for _, kv := range t.cfg.tags {
		k, v, _ := strings.Cut(kv, "=")
		q.Add("tag."+k, v)
	}
	if t.cursor == "" && t.cfg.from != "" {
		q.Set("from", t.cfg.from)
	}
	u := base + p + "/tail"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// run follows until ctx ends or the server refuses the request for good,
// reconnecting after the cursor whenever the stream drops.
func (t *tailer) run(ctx context.Context) int {
	attempt := 0
	reported := false
	for {
		progressed, err := t.stream(ctx)
		if ctx.Err() != nil {
			return exitOK
		}
		var fe *errFatal
		if errors.As(err, &fe) {
			fmt.Fprintf(t.stderr, "chronostream tail: %s\n", fe.msg)
			return fe.code
		}
		if progressed {
			attempt, reported = 0, false
		}
		if !reported {
			fmt.Fprintf(t.stderr, "chronostream tail: %v; reconnecting\n", err)
			reported = true
		}
		t.saveCursor()
		t.server++
		d := min(100*time.Millisecond<<min(attempt, 5), 3*time.Second)
		attempt++
		select {
		case <-ctx.Done():
			return exitOK
		case <-time.After(d):
		}
	}
}

// stream reads one SSE connection until it ends. progressed says whether
// it got as far as the server's first message.
func (t *tailer) stream(ctx context.Context) (progressed bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url(), nil)
	if err != nil {
		return false, &errFatal{exitUsage, err.Error()}
	}
	req.Header.Set("Accept", "text/event-stream")
	if t.cursor != "" {
		req.Header.Set("Last-Event-ID", t.cursor)
	}
	if t.cfg.remote.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.cfg.remote.token)
	}
	resp, err := t.hc.Do(req)
	if err != nil {
		if tlsconf.Permanent(err) && len(t.cfg.remote.servers) == 1 {
			return false, &errFatal{exitFailure, err.Error()}
		}
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		msg := problemDetail(body)
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return false, &errFatal{exitFailure, fmt.Sprintf("%s: %s (check --token)", resp.Status, msg)}
		case http.StatusBadRequest:
			return false, &errFatal{exitUsage, fmt.Sprintf("%s: %s", resp.Status, msg)}
		case http.StatusNotFound:
			// The chronicle may not exist yet: wait for it.
			return false, fmt.Errorf("%s: %s", resp.Status, msg)
		}
		return false, fmt.Errorf("server replied %s: %s", resp.Status, msg)
	}
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	var id, typ string
	var data bytes.Buffer
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			t.out.Flush()
			if err == io.EOF {
				return progressed, errors.New("the server ended the stream")
			}
			return progressed, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) > 0 {
			k, v, _ := bytes.Cut(line, []byte(":"))
			v = bytes.TrimPrefix(v, []byte(" "))
			switch string(k) {
			case "id":
				id = string(v)
			case "event":
				typ = string(v)
			case "data":
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.Write(v)
			}
			continue
		}
		// A blank line dispatches the message.
		progressed = true
		switch typ {
		case "event":
			t.print(data.Bytes())
		case "gap":
			var g struct{ After, Next uint64 }
			_ = json.Unmarshal(data.Bytes(), &g)
			t.out.Flush()
			fmt.Fprintf(t.stderr, "chronostream tail: gap: the events after %d and before %d were removed by retention\n", g.After, g.Next)
		case "error":
			t.out.Flush()
			var e struct{ Reason string }
			_ = json.Unmarshal(data.Bytes(), &e)
			return true, fmt.Errorf("the server ended the tail: %s", e.Reason)
		case "heartbeat":
			t.out.Flush()
		}
		if id != "" {
			t.cursor = id
		}
		if r.Buffered() == 0 {
			t.out.Flush()
		}
		id, typ = "", ""
		data.Reset()
	}
}

func problemDetail(body []byte) string {
	var p struct{ Detail string }
	if json.Unmarshal(body, &p) == nil && p.Detail != "" {
		return p.Detail
	}
	return strings.TrimSpace(string(body))
}

func (t *tailer) print(data []byte) {
	if t.cfg.output.value == "json" {
		t.out.Write(data)
		t.out.WriteByte('\n')
		return
	}
	var e struct {
		Time   time.Time                  `json:"time"`
		Story  string                     `json:"story"`
		Kind   string                     `json:"kind"`
		Tags   map[string]string          `json:"tags"`
		Fields map[string]json.RawMessage `json:"fields"`
		Body   json.RawMessage            `json:"body"`
	}
	if err := json.Unmarshal(data, &e); err != nil {
		t.out.Write(data)
		t.out.WriteByte('\n')
		return
	}
	b := t.out
	b.WriteString(e.Time.UTC().Format("2006-01-02T15:04:05.000Z"))
	b.WriteByte(' ')
	b.WriteString(e.Story)
	b.WriteByte(' ')
	b.WriteString(e.Kind)
	for _, k := range sortedMapKeys(e.Tags) {
		fmt.Fprintf(b, " %s=%s", k, e.Tags[k])
	}
	if len(e.Fields) > 0 {
		b.WriteString(" |")
		for _, k := range sortedMapKeys(e.Fields) {
			fmt.Fprintf(b, " %s=%s", k, e.Fields[k])
		}
	} else if len(e.Body) > 0 {
		var c bytes.Buffer
		if json.Compact(&c, e.Body) == nil {
			b.WriteString(" | ")
			b.Write(c.Bytes())
		}
	}
	b.WriteByte('\n')
}

func sortedMapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// saveCursor writes the cursor to --cursor-file (atomically).
func (t *tailer) saveCursor() {
	if t.cfg.cursorFile == "" || t.cursor == "" {
		return
	}
	tmp := t.cfg.cursorFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(t.cursor+"\n"), 0o644); err != nil {
		fmt.Fprintf(t.stderr, "chronostream tail: --cursor-file: %v\n", err)
		return
	}
	if err := os.Rename(tmp, filepath.Clean(t.cfg.cursorFile)); err != nil {
		fmt.Fprintf(t.stderr, "chronostream tail: --cursor-file: %v\n", err)
	}
}
