// Package canary writes sequence-numbered events to a chronostream server
// at a steady rate through its protocols and reads them back, through the
// live tail and the read API, counting what went missing, what arrived
// twice or out of order, and how long events took to show up (as Loki's
// canary does). It is an operator's tool (`chronostream canary`) and the
// engine of the soak test.
//
// Each protocol writes to its own story with its own client library and
// keeps its own books (a tracker). An event is missing when the server
// acknowledged it and the read sweep, which reads every position of the
// story once, has not found it a grace period later. A copy found by the
// sweep is a duplicate; it is allowed only when the canary resent the
// event after an attempt whose outcome it could not know.
package canary

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chronostream/chronostream/internal/tlsconf"
)

// Protocols are the protocols the canary can write through.
var Protocols = []string{"ndjson", "ws", "lineproto", "forward", "otlp"}

// Config says what the canary writes and where.
type Config struct {
	Server      string        // base URL of the HTTP API, http://host:port
	Token       string        // sent on every request, as each protocol does
	Chronicle   string        // chronicle of the NDJSON, WebSocket and line protocol stories
	Protocols   []string      // some of Protocols
	Rate        float64       // events per second, per protocol
	Duration    time.Duration // stop after this long (0: until ctx ends)
	Interval    time.Duration // log the counts this often
	Grace       time.Duration // an acknowledged event not read back this long after is missing
	Sweep       time.Duration // read the stories back through the read API this often
	Drain       time.Duration // at the end, how long to wait for the last acknowledgements and reads
	ForwardAddr string        // the Fluent Forward listener, host:port

	// TLS is the TLS configuration of every connection to the server:
	// HTTPS and WSS requests, the tail, OTLP, and Forward with ForwardTLS.
	// Nil: the system's roots, no client certificate.
	TLS *tls.Config
	// ForwardTLS speaks TLS to the Forward listener (a server with TLS
	// serves it on every listener).
	ForwardTLS bool
	// ForwardSharedKey authenticates with the Forward handshake (the
	// server's --forward-shared-key); ForwardUsername and ForwardPassword
	// too when the server asks for a user.
	ForwardSharedKey, ForwardUsername, ForwardPassword string

	// Where the server stores Forward and OTLP events: the Forward tag
	// CHRONICLE.forward is a story of ForwardChronicle (the server's
	// --forward-chronicle), the OTLP service.name CHRONICLE.otlp a story
	// of OTLPChronicle (the server's --otlp-chronicle).
	ForwardChronicle string
	OTLPChronicle    string

	RunID    string // identifies this run's events; random when empty
	Logger   *slog.Logger
	Registry prometheus.Registerer // where the metrics go; a private registry when nil
}

func (c *Config) setDefaults() error {
	if c.Server == "" {
		return errors.New("canary: no server URL")
	}
	c.Server = strings.TrimRight(c.Server, "/")
	if !strings.HasPrefix(c.Server, "http://") && !strings.HasPrefix(c.Server, "https://") {
		return fmt.Errorf("canary: server %q: want an http:// or https:// URL", c.Server)
	}
	if c.Chronicle == "" {
		c.Chronicle = "canary"
	}
	if len(c.Protocols) == 0 {
		c.Protocols = []string{"ndjson", "ws", "lineproto"}
	}
	for _, p := range c.Protocols {
		if !slices.Contains(Protocols, p) {
			return fmt.Errorf("canary: unknown protocol %q (want some of %s)", p, strings.Join(Protocols, ","))
		}
		if p == "forward" && c.ForwardAddr == "" {
			return errors.New("canary: the forward protocol needs the Forward listener's address")
		}
	}
	if (c.ForwardUsername != "" || c.ForwardPassword != "") && c.ForwardSharedKey == "" {
		return errors.New("canary: a Forward username and password need the shared key (the handshake carries them)")
	}
	if c.Rate <= 0 || c.Rate > 100000 {
		return fmt.Errorf("canary: rate %g/s: want more than 0 and at most 100000 per protocol", c.Rate)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Interval, 10*time.Second)
	def(&c.Grace, 10*time.Second)
	def(&c.Sweep, 5*time.Second)
	def(&c.Drain, 2*time.Minute)
	if c.ForwardChronicle == "" {
		c.ForwardChronicle = "logs"
	}
	if c.OTLPChronicle == "" {
		c.OTLPChronicle = "otel"
	}
	if c.RunID == "" {
		c.RunID = nuid.Next()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	return nil
}

// Canary is one run; New, then Run once.
type Canary struct {
	cfg    Config
	runID  string
	log    *slog.Logger
	hc     *http.Client
	m      *metrics
	protos []*protocol
}

// protocol is one protocol's writer, target story and books.
type protocol struct {
	name        string
	target      target
	tr          *tracker
	w           writer
	queue       chan payload
	sweepCursor uint64 // the last log position the read sweep has passed
	// resendCopies: a resend may store a second copy (the canary's own
	// retries); false for the Go client, whose resends the server removes.
	resendCopies bool
}

// New validates cfg and registers the metrics.
func New(ctx context.Context, cfg Config) (*Canary, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("canary: metrics: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg.TLS.Clone() // a transport writes to its own (NextProtos)
	c := &Canary{cfg: cfg, runID: cfg.RunID, log: cfg.Logger, m: m,
		hc: &http.Client{Transport: tlsconf.ExplainTransport(tr)}}
	for _, name := range cfg.Protocols {
		p := &protocol{name: name, tr: newTracker(name, cfg.Grace, m), resendCopies: name != "ndjson" && name != "ws",
			// A queue for about ten minutes of an outage: past that the
			// steady rate pauses, rather than memory growing for ever.
			queue: make(chan payload, max(1024, int(cfg.Rate*600)))}
		switch name {
		case "ndjson", "ws", "lineproto":
			p.target = target{cfg.Chronicle, name}
		case "forward":
			p.target = target{cfg.ForwardChronicle, cfg.Chronicle + ".forward"}
		case "otlp":
			p.target = target{cfg.OTLPChronicle, cfg.Chronicle + ".otlp"}
		}
		switch name {
		case "ndjson", "ws":
			p.w, err = c.newClientWriter(name, p.target)
		case "lineproto":
			p.w = &lineWriter{c: c, t: p.target}
		case "forward":
			p.w, err = c.newForwardWriter(p.target.story)
		case "otlp":
			p.w, err = c.newOTLPWriter(ctx, p.target)
		}
		if err != nil {
			return nil, err
		}
		c.protos = append(c.protos, p)
	}
	return c, nil
}

// RunID identifies this run's events in the log.
func (c *Canary) RunID() string { return c.runID }

// Summary is the outcome of a run, per protocol.
type Summary struct {
	RunID     string            `json:"run_id"`
	Protocols map[string]Counts `json:"protocols"`
	// Latency is the p50 and p99 of the tail latency, per protocol, from
	// the histogram's buckets (upper bounds).
	P50 map[string]time.Duration `json:"p50"`
	P99 map[string]time.Duration `json:"p99"`
}

// Missing is the number of acknowledged events never read back.
func (s Summary) Missing() uint64 {
	var n uint64
	for _, c := range s.Protocols {
		n += c.Missing
	}
	return n
}

// Run writes and reads until ctx ends or the configured duration passes,
// then stops writing, waits (up to Drain) for outstanding acknowledgements
// and for the read sweep to find every acknowledged event, and returns the
// summary. The error is nil unless the canary could not start.
func (c *Canary) Run(ctx context.Context) (Summary, error) {
	// Waiting for the server counts against the duration too, or a
	// server that never comes would keep the canary for ever.
	startCtx, cancel := withDuration(ctx, c.cfg.Duration)
	err := c.start(startCtx)
	cancel()
	if err != nil {
		return c.summary(true), err
	}
	// The writes get the whole duration.
	writeCtx, cancel := withDuration(ctx, c.cfg.Duration)
	defer cancel()
	c.log.Info("canary started", "run", c.runID, "server", c.cfg.Server, "protocols", strings.Join(c.cfg.Protocols, ","), "rate", c.cfg.Rate)

	// Readers run until the drain is over, writers until writeCtx ends.
	readCtx, stopReading := context.WithCancel(context.WithoutCancel(ctx))
	defer stopReading()
	drainCtx, stopDrain := context.WithCancel(context.WithoutCancel(ctx))
	defer stopDrain()
	var readers, senders sync.WaitGroup
	for _, p := range c.protos {
		readers.Go(func() { c.tail(readCtx, p, p.sweepCursor) })
		senders.Go(func() { c.send(drainCtx, p) })
		senders.Go(func() { c.generate(writeCtx, p) })
	}
	sweeps := make(chan struct{})
	sweepsDone := make(chan struct{})
	go func() {
		defer close(sweepsDone)
		c.sweepLoop(readCtx, sweeps)
	}()

	<-writeCtx.Done()
	c.log.Info("canary: stopping writes, draining", "run", c.runID)
	// The senders end once their queues are written or the drain times out.
	drainTimer := time.AfterFunc(c.cfg.Drain, stopDrain)
	senders.Wait()
	for _, p := range c.protos {
		cctx, cancel := context.WithTimeout(drainCtx, 10*time.Second)
		if err := p.w.close(cctx); err != nil {
			c.log.Warn("canary: closing the writer", "protocol", p.name, "err", err)
		}
		cancel()
	}
	// Wait for the sweep to find every acknowledged event, within the drain.
	for drainCtx.Err() == nil {
		n := 0
		for _, p := range c.protos {
			n += p.tr.unsettled()
		}
		if n == 0 {
			break
		}
		select {
		case sweeps <- struct{}{}:
		case <-drainCtx.Done():
		}
	}
	drainTimer.Stop()
	stopReading()
	<-sweepsDone
	readers.Wait()
	now := time.Now()
	for _, p := range c.protos {
		p.tr.check(now, true)
	}
	s := c.summary(true)
	c.logCounts("canary finished", s)
	return s, nil
}

func withDuration(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// start finds where each story ends now, so that the history of earlier
// runs is not read, waiting for the server if it is not up yet, and tries
// the Forward listener. A refusal, or a certificate one side does not
// accept, is the canary's configuration: it ends the run at once.
func (c *Canary) start(ctx context.Context) error {
	for _, p := range c.protos {
		for attempt := 0; ; attempt++ {
			seq, err := c.lastSeq(ctx, p.target.chronicle)
			if err == nil {
				p.sweepCursor = seq
				break
			}
			if errors.Is(err, errRefused) || tlsconf.Permanent(err) {
				return fmt.Errorf("canary: %w", err)
			}
			c.log.Warn("canary: waiting for the server", "err", err)
			if !sleep(ctx, backoff(attempt)) {
				return fmt.Errorf("canary: the server never answered: %w", err)
			}
		}
	}
	for _, p := range c.protos {
		if fw, ok := p.w.(*forwardWriter); ok {
			if err := fw.probe(ctx); errors.Is(err, errRefused) {
				return fmt.Errorf("canary: %w", err)
			} else if err != nil {
				c.log.Warn("canary: the Forward listener does not answer yet", "err", err)
			}
		}
	}
	return nil
}

// generate numbers events at the configured rate and queues them.
func (c *Canary) generate(ctx context.Context, p *protocol) {
	defer close(p.queue)
	start := time.Now()
	tick := time.NewTicker(min(100*time.Millisecond, time.Duration(float64(time.Second)/c.cfg.Rate)))
	defer tick.Stop()
	var made uint64
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			due := uint64(now.Sub(start).Seconds() * c.cfg.Rate)
			for ; made < due && ctx.Err() == nil; made++ {
				// Send times strictly increase: they are line protocol's
				// timestamps, and two points of one series with one
				// timestamp are one point in InfluxDB.
				sent := now
				if !sent.After(last) {
					sent = last.Add(time.Nanosecond)
				}
				last = sent
				seq := p.tr.newEvent(sent)
				pl := payload{seq: seq, sent: sent}
				select {
				case p.queue <- pl:
					continue
				default: // the queue is full: the rate pauses until the writer catches up
				}
				select {
				case p.queue <- pl:
				case <-ctx.Done():
					p.tr.abandon([]uint64{seq})
					return
				}
			}
		}
	}
}

// maxBatch bounds one write: what queued up during an outage goes out in
// requests of at most this many events.
const maxBatch = 500

// send writes the queue in batches, retrying each until acknowledged, until
// the queue is closed and empty or ctx ends.
func (c *Canary) send(ctx context.Context, p *protocol) {
	batch := make([]payload, 0, maxBatch)
	seqs := make([]uint64, 0, maxBatch)
	for {
		batch, seqs = batch[:0], seqs[:0]
		first, ok := <-p.queue
		if !ok {
			return
		}
		batch = append(batch, first)
	fill:
		for len(batch) < maxBatch {
			select {
			case pl, ok := <-p.queue:
				if !ok {
					break fill
				}
				batch = append(batch, pl)
			default:
				break fill
			}
		}
		for _, pl := range batch {
			seqs = append(seqs, pl.seq)
		}
		if !c.writeBatch(ctx, p, batch, seqs) {
			// Out of time: what is left was never acknowledged.
			p.tr.abandon(seqs)
			for pl := range p.queue {
				p.tr.abandon([]uint64{pl.seq})
			}
			return
		}
	}
}

// writeBatch retries one batch until it is acknowledged or refused; it
// returns false when ctx ended first.
func (c *Canary) writeBatch(ctx context.Context, p *protocol, batch []payload, seqs []uint64) bool {
	for attempt := 0; ; attempt++ {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := p.w.write(wctx, batch)
		cancel()
		if err == nil {
			p.tr.ack(seqs, time.Now())
			return true
		}
		if pe, ok := err.(*partialError); ok && pe.acked > 0 {
			p.tr.ack(seqs[:pe.acked], time.Now())
			batch, seqs = batch[pe.acked:], seqs[pe.acked:]
		}
		if errors.Is(err, errRefused) {
			c.m.errors.WithLabelValues(p.name, "refused").Inc()
			c.log.Error("canary: the server refused events for good", "protocol", p.name, "events", len(seqs), "err", err)
			p.tr.abandon(seqs)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		c.m.errors.WithLabelValues(p.name, "write").Inc()
		if attempt == 0 {
			c.log.Warn("canary: write failed, retrying", "protocol", p.name, "err", err)
		}
		if p.resendCopies && maybeDelivered(err) {
			p.tr.retried(seqs)
		}
		if !sleep(ctx, backoff(attempt)) {
			return false
		}
	}
}

// sweepLoop reads every story back every Sweep interval, or at once when
// asked on more, and logs the counts every Interval.
func (c *Canary) sweepLoop(ctx context.Context, more <-chan struct{}) {
	tick := time.NewTicker(c.cfg.Sweep)
	defer tick.Stop()
	lastLog := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-more:
		}
		start := time.Now()
		for _, p := range c.protos {
			if err := c.sweep(ctx, p); err != nil {
				if ctx.Err() != nil {
					return
				}
				c.m.errors.WithLabelValues(p.name, "read").Inc()
				c.log.Debug("canary: read sweep failed", "protocol", p.name, "err", err)
				continue
			}
			p.tr.check(start, false)
		}
		if time.Since(lastLog) >= c.cfg.Interval {
			lastLog = time.Now()
			c.logCounts("canary", c.summary(false))
		}
		if ctx.Err() == nil {
			// Between asked-for sweeps, a pause so a drain does not spin.
			sleep(ctx, 200*time.Millisecond)
		}
	}
}

// Counts returns the counts so far, per protocol.
func (c *Canary) Counts() map[string]Counts {
	out := map[string]Counts{}
	for _, p := range c.protos {
		out[p.name] = p.tr.counts(false)
	}
	return out
}

func (c *Canary) summary(final bool) Summary {
	s := Summary{RunID: c.runID, Protocols: map[string]Counts{}, P50: map[string]time.Duration{}, P99: map[string]time.Duration{}}
	for _, p := range c.protos {
		s.Protocols[p.name] = p.tr.counts(final)
		s.P50[p.name], s.P99[p.name] = c.quantiles(p.name)
	}
	return s
}

func (c *Canary) logCounts(msg string, s Summary) {
	for _, p := range c.protos {
		n := s.Protocols[p.name]
		c.log.Info(msg, "protocol", p.name, "story", p.target.String(), "sent", n.Sent, "acked", n.Acked,
			"tail", n.TailSeen, "read", n.ReadSeen, "missing", n.Missing, "dup_allowed", n.DupAllowed,
			"dup_unwanted", n.DupUnwanted, "out_of_order", n.OutOfOrder, "resent", n.Resent,
			"abandoned", n.Abandoned, "p50", s.P50[p.name], "p99", s.P99[p.name])
	}
}
