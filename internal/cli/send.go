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
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/term"

	"github.com/chronostream/chronostream/client"
)

type sendConfig struct {
	remote    remoteConfig
	chronicle string
	story     string
	lines     bool
	kind      string
	progress  choice
	timeout   duration
}

var sendGroups = []string{groupServer, groupSend, groupOps}

func newSendFlags(c *sendConfig) (*flag.FlagSet, []option) {
	var opts []option
	fs, add := newClientFlags("send", &c.remote, &opts)
	declare(fs, add, (*stringValue)(&c.chronicle), option{name: "chronicle", short: "r", metavar: "NAME", group: groupSend,
		usage: "Chronicle to write to (default: the server's --default-chronicle)."})
	declare(fs, add, (*stringValue)(&c.story), option{name: "story", short: "s", metavar: "NAME", group: groupSend,
		usage: "Story to write to (default: the server's --default-story)."})
	fs.BoolVar(&c.lines, "lines", false, "")
	add(option{name: "lines", metavar: "BOOL", group: groupSend,
		usage: "Input is plain text: each line is sent as a log event {\"msg\": LINE}, exactly as read\n(without its line end). Default: each line is one JSON value (NDJSON)."})
	declare(fs, add, (*stringValue)(&c.kind), option{name: "kind", metavar: "KIND", group: groupSend,
		usage: "Kind of every event (log, metric, trace, annotation, event), overriding the events' own."})
	c.progress = choice{value: "auto", choices: []string{"auto", "always", "never"}}
	declare(fs, add, &c.progress, option{name: "progress", metavar: "auto|always|never", group: groupSend,
		usage: "Progress bar on stderr: auto shows it when stderr is a terminal."})
	c.timeout = duration(time.Minute)
	declare(fs, add, &c.timeout, option{name: "timeout", metavar: "DURATION", group: groupSend,
		usage: "After the input ends, how long to wait for the server to acknowledge everything sent."})
	return fs, opts
}

func runSend(ctx context.Context, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &sendConfig{}
	fs, opts := newSendFlags(c)
	files, warnings, err := parseCommand("send", fs, opts, &c.remote, args, environ)
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(stdout, `Usage: chronostream send [flags] [FILE...]

Sends events read from the files (or stdin; "-" is stdin too) to a chronostream
server, in order, and reports how many were sent once the server has acknowledged
them all (durable). Input is NDJSON (one JSON value per line), or plain text lines
with --lines. Blank lines are skipped. Delivery is at least once, and the server
removes duplicates, so a lost connection or a server restart neither loses nor
doubles events.

    app --json | chronostream send -r app -s orders
    chronostream send --lines -r logs -s nginx /var/log/nginx/access.log
`, fs, opts, sendGroups)
		return exitOK
	}
	if err != nil {
		return usageError(stderr, "send", err)
	}
	printWarnings(stderr, "send", warnings)
	if len(files) == 0 {
		files = []string{"-"}
	}
	// The kind override travels in the URL's query, which the client keeps.
	servers := make([]string, len(c.remote.servers))
	for i, s := range c.remote.servers {
		u, err := url.Parse(s)
		if err != nil {
			fmt.Fprintf(stderr, "chronostream send: --server %q: %v\n", s, err)
			return exitUsage
		}
		if c.kind != "" {
			q := u.Query()
			q.Set("kind", c.kind)
			u.RawQuery = q.Encode()
		}
		servers[i] = u.String()
	}
	copts := []client.Option{client.Chronicle(c.chronicle), client.Story(c.story), client.HTTPClient(c.remote.httpClient(nil))}
	if c.remote.token != "" {
		copts = append(copts, client.Token(c.remote.token))
	}
	if len(servers) > 1 {
		copts = append(copts, client.Failover(servers[1:]...))
	}
	cl, err := client.New(servers[0], copts...)
	if err != nil {
		fmt.Fprintf(stderr, "chronostream send: %v\n", err)
		return exitUsage
	}

	var total int64 // bytes of the regular files, for the bar (0: unknown)
	for _, f := range files {
		if f == "-" {
			total = 0
			break
		}
		st, err := os.Stat(f)
		if err != nil {
			_ = cl.Close(context.Background())
			fmt.Fprintf(stderr, "chronostream send: %v\n", err)
			return exitFailure
		}
		total += st.Size()
	}
	show := c.progress.value == "always" || c.progress.value == "auto" && isTerminal(stderr)
	bar := newProgress(stderr, total, show, cl)

	sendErr := func() error {
		for _, name := range files {
			var r io.Reader = stdin
			if name != "-" {
				f, err := os.Open(name)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			if err := sendLines(ctx, cl, r, name, c.lines, &bar.read); err != nil {
				return err
			}
		}
		return nil
	}()
	cctx, cancel := context.WithTimeout(context.Background(), time.Duration(c.timeout))
	if ctx.Err() != nil { // interrupted: do not wait long for the rest
		cancel()
		cctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	}
	closeErr := cl.Close(cctx)
	cancel()
	bar.stop()
	st := cl.Stats()
	target := c.chronicle + "/" + c.story
	if c.chronicle == "" && c.story == "" {
		target = "the server's default story"
	}
	fmt.Fprintf(stdout, "sent %d events to %s\n", st.Acked, target)
	code := exitOK
	if st.Rejected > 0 {
		fmt.Fprintf(stderr, "chronostream send: the server refused %d events (too large, or invalid for it)\n", st.Rejected)
		code = exitFailure
	}
	if sendErr != nil && ctx.Err() == nil {
		fmt.Fprintf(stderr, "chronostream send: %v\n", sendErr)
		code = exitFailure
	}
	if closeErr != nil {
		fmt.Fprintf(stderr, "chronostream send: %d of %d events not acknowledged: %v\n", int64(st.Accepted)-int64(st.Acked), st.Accepted, closeErr)
		code = exitFailure
	}
	if ctx.Err() != nil && code == exitOK {
		fmt.Fprintf(stderr, "chronostream send: interrupted after %d events\n", st.Acked)
	}
	return code
}

// sendLines queues each line of r as one event.
func sendLines(ctx context.Context, cl *client.Client, r io.Reader, name string, plain bool, read *atomic.Int64) error {
	br := bufio.NewReaderSize(r, 256<<10)
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		read.Add(int64(len(b)))
		if len(b) > 0 {
			b = bytes.TrimSuffix(b, []byte{'\n'})
			b = bytes.TrimSuffix(b, []byte{'\r'})
			if plain {
				msg, _ := json.Marshal(map[string]string{"msg": string(b)})
				if serr := cl.Send(ctx, msg); serr != nil {
					return serr
				}
			} else if len(bytes.TrimSpace(b)) > 0 {
				if serr := cl.Send(ctx, b); serr != nil {
					if errors.Is(serr, client.ErrInvalidJSON) {
						return fmt.Errorf("%s:%d: not a JSON value (use --lines for plain text): %.80q", displayName(name), line, b)
					}
					return serr
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", displayName(name), err)
		}
	}
}

func displayName(name string) string {
	if name == "-" {
		return "stdin"
	}
	return name
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress redraws one status line on a terminal: bytes read (a bar when
// the input's size is known), events acknowledged and the rate.
type progress struct {
	w     io.Writer
	total int64
	cl    *client.Client
	read  atomic.Int64
	done  chan struct{}
	fin   chan struct{}
}

func newProgress(w io.Writer, total int64, show bool, cl *client.Client) *progress {
	p := &progress{w: w, total: total, cl: cl, done: make(chan struct{}), fin: make(chan struct{})}
	if !show {
		close(p.fin)
		return p
	}
	go func() {
		defer close(p.fin)
		start := time.Now()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.draw(start)
			case <-p.done:
				p.draw(start)
				fmt.Fprintln(p.w)
				return
			}
		}
	}()
	return p
}

func (p *progress) draw(start time.Time) {
	st := p.cl.Stats()
	rate := float64(st.Acked) / max(time.Since(start).Seconds(), 1e-3)
	line := fmt.Sprintf("%d sent, %d queued, %.0f events/s", st.Acked, st.Buffered, rate)
	if p.total > 0 {
		frac := min(float64(p.read.Load())/float64(p.total), 1)
		const width = 30
		n := int(frac * width)
		line = fmt.Sprintf("[%s%s] %3.0f%% %s", strings.Repeat("=", n), strings.Repeat(" ", width-n), 100*frac, line)
	}
	fmt.Fprintf(p.w, "\r%s\033[K", line)
}

func (p *progress) stop() {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	<-p.fin
}
