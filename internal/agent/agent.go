// Package agent is `chronostream agent`: it samples the host's CPU, memory,
// network, disks and load with gopsutil and writes them to a chronostream
// server as metric events, one story per kind of measure (ChronoStream's
// client_writer, with rates, tags and a spool).
//
// Every sample goes to an on-disk spool first (fsynced); a sender reads the
// spool in order and sends it with the client package, one client stream
// per story. The spool keeps the stream id and each event's index, so
// whatever is resent — after an outage, or after the agent itself crashed
// before the server's acknowledgement reached it — is recognised by the
// server and stored once. While the server is unreachable the spool grows
// up to its bound, then drops its oldest samples, counted and logged.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/chronostream/chronostream/client"
	"github.com/chronostream/chronostream/event"
)

// Options configure an Agent.
type Options struct {
	// Servers are the chronostream URLs (http, https, ws or wss); the
	// first is used, the others on failure, in turn.
	Servers []string
	Token   string
	// HTTPClient makes the requests and WebSocket connections (its
	// transport carries the TLS settings); a client of its own when nil.
	HTTPClient *http.Client
	// Chronicle receives the stories (default: the host name).
	Chronicle string
	// Interval between samples (default 5s).
	Interval time.Duration
	// Duration ends Run after this long; 0 runs until the context ends.
	Duration time.Duration
	// Hostname is the host tag (default: os.Hostname).
	Hostname string
	// Tags are added to every event, after host.
	Tags map[string]string

	Interfaces Filter // default: every interface but lo
	Mounts     Filter // mount points; default: every physical file system
	Devices    Filter // disk I/O devices; default: all but loop and ram devices

	// HostProc, HostSys and HostRoot point gopsutil at the host's /proc,
	// /sys and / when the agent runs in a container (empty: the agent's own).
	HostProc, HostSys, HostRoot string

	// SpoolDir holds the spool and the agent's stream id (required).
	SpoolDir string
	// SpoolMaxBytes bounds the spool (default 64 MiB); SpoolSegmentBytes
	// sizes its segments, the unit in which the oldest samples are dropped
	// (default an eighth of the bound, at most 8 MiB).
	SpoolMaxBytes     int64
	SpoolSegmentBytes int64
	// FlushTimeout bounds the time spent sending the spool at stop
	// (default 5s); what is left stays spooled for the next start.
	FlushTimeout time.Duration
	// MinBackoff and MaxBackoff bound the delay between attempts to reach
	// an unreachable server (default 200ms and 5s).
	MinBackoff, MaxBackoff time.Duration

	Logger *slog.Logger
}

// Stats are the agent's counters.
type Stats struct {
	Samples   uint64 // sampling rounds
	Spooled   uint64 // events written to the spool
	Sent      uint64 // events acknowledged by the server
	Dropped   uint64 // events dropped unsent because the spool was full
	Backlog   int    // events spooled, not yet acknowledged
	Rejected  uint64 // events the server refused for good
	Reconnect uint64 // failed requests or connections, retried
}

// Agent samples and sends until its context ends.
type Agent struct {
	opts  Options
	log   *slog.Logger
	spool *Spool
	coll  *collector

	mu      sync.Mutex
	stats   Stats
	clients map[string]*storyClient
}

type storyClient struct {
	c    *client.Client
	next uint64 // index the client gives its next event
}

// New validates opts and opens the spool.
func New(opts Options) (*Agent, error) {
	if len(opts.Servers) == 0 {
		return nil, errors.New("agent: no server")
	}
	if opts.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("agent: host name: %w", err)
		}
		opts.Hostname = h
	}
	if opts.Chronicle == "" {
		opts.Chronicle = opts.Hostname
	}
	if err := event.ValidateChronicle(opts.Chronicle); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Second
	}
	if opts.Duration < 0 {
		return nil, errors.New("agent: negative duration")
	}
	if opts.SpoolDir == "" {
		return nil, errors.New("agent: no spool directory")
	}
	if opts.SpoolMaxBytes == 0 {
		opts.SpoolMaxBytes = 64 << 20
	}
	if opts.FlushTimeout <= 0 {
		opts.FlushTimeout = 5 * time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 200 * time.Millisecond
	}
	switch {
	case opts.MaxBackoff == 0:
		opts.MaxBackoff = max(5*time.Second, opts.MinBackoff)
	case opts.MaxBackoff < opts.MinBackoff:
		return nil, fmt.Errorf("agent: the maximum retry delay %v is below the minimum %v", opts.MaxBackoff, opts.MinBackoff)
	}
	if opts.Interfaces.Include == nil && opts.Interfaces.Exclude == nil {
		opts.Interfaces.Exclude = []string{"lo"}
	}
	if opts.Devices.Include == nil && opts.Devices.Exclude == nil {
		opts.Devices.Exclude = []string{"loop*", "ram*"}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	for _, u := range opts.Servers {
		// Validate the URLs now: a client is only made once there is
		// something to send.
		c, err := client.New(u)
		if err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		_ = c.Close(context.Background())
	}
	sp, err := openSpool(opts.SpoolDir, opts.SpoolMaxBytes, opts.SpoolSegmentBytes, opts.Logger, opts.Hostname)
	if err != nil {
		return nil, err
	}
	tags := maps.Clone(opts.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	tags["host"] = opts.Hostname
	a := &Agent{opts: opts, log: opts.Logger, spool: sp, clients: map[string]*storyClient{}}
	a.coll = &collector{
		hostRoot: opts.HostRoot, tags: tags,
		interfaces: opts.Interfaces, mounts: opts.Mounts, devices: opts.Devices,
		warned: map[string]bool{},
	}
	a.coll.warn = func(what string, err error) {
		if !a.coll.warned[what] { // once per kind: it would fail every interval
			a.coll.warned[what] = true
			a.log.Warn("agent: cannot read "+what, "err", err)
		}
	}
	return a, nil
}

// Options returns the options after defaults were applied.
func (a *Agent) Options() Options { return a.opts }

// StreamID is the agent's stream id (its stories' streams derive from it).
func (a *Agent) StreamID() string { return a.spool.Stream() }

// Stats returns the agent's counters.
func (a *Agent) Stats() Stats {
	a.mu.Lock()
	s := a.stats
	for _, sc := range a.clients {
		cs := sc.c.Stats()
		s.Rejected += cs.Rejected
		s.Reconnect += cs.Reconnects
	}
	a.mu.Unlock()
	s.Dropped = a.spool.Dropped()
	s.Backlog, _ = a.spool.Len()
	return s
}

// Run samples every Interval and sends, until ctx ends or Duration has
// passed. Then it stops sampling, sends what is spooled for at most
// FlushTimeout, and closes the spool; what could not be sent stays in it
// for the next start. It returns nil after a clean stop.
func (a *Agent) Run(ctx context.Context) error {
	defer a.spool.Close()
	sendCtx, stopSend := context.WithCancel(context.Background())
	defer stopSend()
	sendDone := make(chan error, 1)
	go func() { sendDone <- a.send(sendCtx) }()

	backlog, _ := a.spool.Len()
	a.log.Info("agent started", "chronicle", a.opts.Chronicle, "host", a.opts.Hostname,
		"interval", a.opts.Interval, "servers", a.opts.Servers, "spool", a.opts.SpoolDir,
		"stream", a.spool.Stream(), "backlog", backlog)

	sampleCtx := ctx
	if a.opts.Duration > 0 {
		var cancel context.CancelFunc
		sampleCtx, cancel = context.WithTimeout(ctx, a.opts.Duration)
		defer cancel()
	}
	a.coll.ctx = hostContext(sampleCtx, a.opts.HostProc, a.opts.HostSys, a.opts.HostRoot)
	a.coll.sample(time.Now()) // the baseline for rates and CPU shares
	tick := time.NewTicker(a.opts.Interval)
	var sendErr error
loop:
	for {
		select {
		case <-sampleCtx.Done():
			break loop
		case err := <-sendDone:
			sendErr = err
			sendDone = nil
			break loop
		case now := <-tick.C:
			recs := a.coll.sample(now)
			if _, err := a.spool.Append(recs); err != nil {
				a.log.Error("agent: cannot spool a sample", "err", err)
				continue
			}
			a.mu.Lock()
			a.stats.Samples++
			a.stats.Spooled += uint64(len(recs))
			a.mu.Unlock()
		}
	}
	tick.Stop()
	a.spool.CloseWriting()
	if sendDone != nil {
		t := time.NewTimer(a.opts.FlushTimeout)
		select {
		case sendErr = <-sendDone:
		case <-t.C:
			stopSend()
			sendErr = <-sendDone
		}
		t.Stop()
	}
	st := a.Stats()
	a.log.Info("agent stopped", "samples", st.Samples, "spooled", st.Spooled, "sent", st.Sent, "unsent_spooled", st.Backlog, "dropped_spool_full", st.Dropped)
	if st.Dropped > 0 {
		a.log.Warn("agent: samples were dropped because the spool was full while the server was unreachable",
			"dropped", st.Dropped, "max_bytes", a.opts.SpoolMaxBytes)
	}
	if errors.Is(sendErr, context.Canceled) || errors.Is(sendErr, io.EOF) {
		sendErr = nil
	}
	return sendErr
}

// batchMax bounds the events taken from the spool into memory at once.
const batchMax = 1000

// send moves the spool to the server: take a batch, hand each event to its
// story's client, wait for every acknowledgement, commit, repeat. It
// returns io.EOF once the spool is closed and empty, ctx.Err() when
// stopped; unacknowledged events stay in the spool.
func (a *Agent) send(ctx context.Context) error {
	defer a.closeClients()
	for {
		changed := a.spool.Changed()
		gen := a.spool.Evictions()
		recs, pos, err := a.spool.Next(batchMax)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		touched := map[string]*storyClient{}
		rejected := a.clientRejections()
		for _, r := range recs {
			sc, err := a.clientFor(ctx, r)
			if err != nil {
				a.spool.Rewind()
				return err
			}
			if err := sc.c.Send(ctx, r.Payload); err != nil {
				a.spool.Rewind()
				return err
			}
			sc.next++
			touched[r.Story] = sc
		}
		if err := a.flush(ctx, touched, gen, recs); err != nil {
			a.spool.Rewind()
			if err == errEvicted {
				continue
			}
			return err
		}
		if err := a.spool.Commit(pos); err != nil {
			return err
		}
		// Events the server refused for good are committed (never
		// resent) but not sent: they count in Rejected.
		refused := a.clientRejections() - rejected
		a.mu.Lock()
		a.stats.Sent += uint64(len(recs)) - refused
		a.mu.Unlock()
	}
}

// errEvicted: the spool dropped events the sender was waiting to have
// acknowledged.
var errEvicted = errors.New("agent: in-flight samples dropped from the full spool")

// flush waits for the server to acknowledge every event handed to the
// clients. The clients retry on their own; an outage is logged once when
// it starts (the spool takes the samples meanwhile) and once when it ends.
// When the full spool drops events being sent, the clients are abandoned
// (errEvicted) so that the count of dropped events stays exact.
func (a *Agent) flush(ctx context.Context, touched map[string]*storyClient, gen uint64, recs []Record) error {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	acked0 := map[string]uint64{}
	for story, sc := range touched {
		st := sc.c.Stats()
		acked0[story] = st.Acked + st.Rejected
	}
	done := make(chan error, 1)
	go func() {
		for _, sc := range touched {
			// Refused events are dropped by the client (counted in
			// Rejected): the others are acknowledged, the batch is done.
			if err := sc.c.Flush(fctx); err != nil && !errors.Is(err, client.ErrRejected) {
				done <- err
				return
			}
		}
		done <- nil
	}()
	slow := time.NewTimer(max(2*a.opts.Interval, time.Second))
	defer slow.Stop()
	var start time.Time
	for {
		changed := a.spool.Changed()
		if a.spool.Evictions() != gen {
			cancel()
			<-done
			// The spool counted every evicted record it had handed
			// over as dropped; those the server acknowledged were sent.
			a.spool.Undrop(a.ackedEvicted(touched, acked0, recs))
			a.abandonClients()
			return errEvicted
		}
		select {
		case err := <-done:
			if err == nil && a.spool.Evictions() != gen {
				// Evicted while in flight, yet acknowledged: sent.
				a.spool.Undrop(a.ackedEvicted(touched, acked0, recs))
			}
			if err == nil && !start.IsZero() {
				backlog, _ := a.spool.Len()
				a.log.Info("agent: server reachable again; sending the backlog", "outage", time.Since(start).Round(time.Millisecond), "backlog", backlog)
			}
			return err
		case <-slow.C:
			start = time.Now()
			backlog, _ := a.spool.Len()
			a.log.Warn("agent: server unreachable; spooling samples until it is back", "servers", a.opts.Servers, "backlog", backlog)
		case <-changed:
		}
	}
}

// clientRejections counts the events the server refused, of the clients
// closed and the current ones.
func (a *Agent) clientRejections() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.stats.Rejected
	for _, sc := range a.clients {
		n += sc.c.Stats().Rejected
	}
	return n
}

// ackedEvicted counts the records of the batch recs that the spool evicted
// and the server had acknowledged: each story's client acknowledges its
// records in order, acked0 being its count when the batch was handed over.
func (a *Agent) ackedEvicted(touched map[string]*storyClient, acked0 map[string]uint64, recs []Record) int {
	left := map[string]uint64{}
	for story, sc := range touched {
		st := sc.c.Stats()
		left[story] = st.Acked + st.Rejected - acked0[story]
	}
	cursor := a.spool.Cursor()
	n := 0
	for _, r := range recs {
		if left[r.Story] == 0 {
			continue
		}
		left[r.Story]--
		if r.end.less(cursor) || r.end == cursor {
			n++
		}
	}
	return n
}

// abandonClients drops the clients and the events they hold, unsent.
func (a *Agent) abandonClients() {
	a.mu.Lock()
	defer a.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for story, sc := range a.clients {
		cs := sc.c.Stats()
		a.stats.Rejected += cs.Rejected
		a.stats.Reconnect += cs.Reconnects
		_ = sc.c.Close(ctx)
		delete(a.clients, story)
	}
}

// clientFor returns the client of r's story, positioned at r's index: a
// story's indexes skip where the spool dropped samples, and the stream
// must skip with them, so its client is then replaced (after its events
// are acknowledged).
func (a *Agent) clientFor(ctx context.Context, r Record) (*storyClient, error) {
	a.mu.Lock()
	sc := a.clients[r.Story]
	a.mu.Unlock()
	if sc != nil && sc.next == r.Index {
		return sc, nil
	}
	if sc != nil {
		if err := sc.c.Flush(ctx); err != nil && !errors.Is(err, client.ErrRejected) {
			return nil, err
		}
		_ = sc.c.Close(ctx)
		cs := sc.c.Stats()
		a.mu.Lock()
		a.stats.Rejected += cs.Rejected
		a.stats.Reconnect += cs.Reconnects
		delete(a.clients, r.Story)
		a.mu.Unlock()
	}
	opts := []client.Option{
		client.Chronicle(a.opts.Chronicle), client.Story(r.Story),
		client.Stream(a.spool.Stream()+"-"+r.Story, r.Index),
		client.Backoff(a.opts.MinBackoff, a.opts.MaxBackoff),
		client.BufferSize(batchMax), client.Batch(batchMax, 0),
		client.Header("X-Chronostream-Agent", a.opts.Hostname),
	}
	if a.opts.HTTPClient != nil {
		opts = append(opts, client.HTTPClient(a.opts.HTTPClient))
	}
	if a.log.Enabled(ctx, slog.LevelDebug) { // every retry: too many for the default level
		opts = append(opts, client.Logger(a.log))
	}
	if a.opts.Token != "" {
		opts = append(opts, client.Token(a.opts.Token))
	}
	if len(a.opts.Servers) > 1 {
		opts = append(opts, client.Failover(a.opts.Servers[1:]...))
	}
	c, err := client.New(a.opts.Servers[0], opts...)
	if err != nil {
		return nil, err
	}
	sc = &storyClient{c: c, next: r.Index}
	a.mu.Lock()
	a.clients[r.Story] = sc
	a.mu.Unlock()
	return sc, nil
}

func (a *Agent) closeClients() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for story, sc := range a.clients {
		cs := sc.c.Stats()
		a.stats.Rejected += cs.Rejected
		a.stats.Reconnect += cs.Reconnects
		// Everything acknowledged is committed; the rest is in the spool.
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_ = sc.c.Close(ctx)
		cancel()
		delete(a.clients, story)
	}
}
