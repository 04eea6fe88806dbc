// Package store is chronostream's log: chronicles are JetStream streams,
// stories are subjects inside them, and each JetStream message is a block (a
// batch of one story's events, see codec.go). Appends are group-committed
// per story; an append is acknowledged only after JetStream has stored the
// block (and, with the embedded server's default sync mode, fsynced it).
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chronostream/chronostream/event"
)

// Subject and stream naming. A chronicle named c is the stream
// streamPrefix+EncodeName(c), holding subjects subjectPrefix.EncodeName(c).EncodeName(story).
const (
	streamPrefix  = "CS_"
	subjectPrefix = "cs"
)

// Block headers.
const (
	hdrCount = "Cs-N"      // events in the block
	hdrTotal = "Cs-Total"  // events in the story up to and including this block
	hdrBytes = "Cs-Bytes"  // block payload bytes in the story up to and including this block
	hdrPrev  = "Cs-Prev"   // stream sequence of the story's previous block (0: none)
	hdrPrevN = "Cs-Prev-N" // events in the story's previous block (absent from blocks of older versions)
	hdrT0    = "Cs-T0"     // smallest event time in the block
	hdrT1    = "Cs-T1"     // largest event time in the block
	// Largest event time in the story up to and including this block: it
	// never decreases along a story, so a binary search on it finds the
	// first block that can hold events at or after a time, however out of
	// order the events arrived.
	hdrTMax = "Cs-TMax"
)

// Retention bounds a chronicle. Zero means unlimited.
type Retention struct {
	MaxAge    time.Duration `json:"max_age"`
	MaxBytes  int64         `json:"max_bytes"`
	MaxEvents int64         `json:"max_events"`
}

// Options configure a Store.
type Options struct {
	// Conn is a connection to a JetStream-enabled NATS server. Required.
	Conn *nats.Conn
	// Replicas of each chronicle's stream (1 unless clustered).
	Replicas int
	// Retention applied to chronicles created on first write.
	Retention Retention
	// MaxBlockBytes bounds a block's payload; it must fit the server's max payload.
	MaxBlockBytes int
	// AutoCreate makes the first write to an unknown chronicle create it.
	AutoCreate bool
	// Exclusive says this process is the log's only writer (the embedded,
	// unclustered server). Appends then skip JetStream's per-story
	// optimistic-concurrency check, which makes the server load the story's
	// previous block on every append. Leave it false whenever other
	// chronostream nodes may write to the same NATS deployment.
	Exclusive bool
	// MemoryStorage keeps chronicles in memory (tests and benchmarks only).
	MemoryStorage bool
	Logger        *slog.Logger
	Registerer    prometheus.Registerer
}

// sourcesBucket is the KV bucket of source records.
const sourcesBucket = "CS_SOURCES"

// Errors callers map to responses.
var (
	ErrNotFound      = errors.New("not found")
	ErrTooLarge      = errors.New("too large")
	ErrClosed        = errors.New("store closed")
	ErrSlowConsumer  = errors.New("slow consumer: the reader fell too far behind")
	ErrInvalidCursor = errors.New("invalid cursor")
	ErrInvalidName   = errors.New("invalid name")
)

// Store is the log.
type Store struct {
	opts    Options
	js      jetstream.JetStream
	log     *slog.Logger
	metrics *metrics

	mu         sync.Mutex
	writers    map[string]*storyWriter
	chronicles map[string]bool // known to exist
	closed     bool
	wg         sync.WaitGroup
	stop       chan struct{}

	sources jetstream.KeyValue
}

// Open connects the store to JetStream and starts its background work.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Conn == nil {
		return nil, errors.New("store: Options.Conn is required")
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	maxPayload := int(opts.Conn.MaxPayload())
	if opts.MaxBlockBytes <= 0 {
		opts.MaxBlockBytes = 1 << 20
	}
	// Leave room for headers.
	if limit := maxPayload - 4096; opts.MaxBlockBytes > limit {
		opts.MaxBlockBytes = limit
	}
	if opts.MaxBlockBytes < 64<<10 {
		return nil, fmt.Errorf("store: the NATS server's max_payload (%d bytes) is too small; need at least 68 KiB", maxPayload)
	}
	js, err := jetstream.New(opts.Conn)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s := &Store{
		opts:       opts,
		js:         js,
		log:        opts.Logger,
		metrics:    newMetrics(opts.Registerer),
		writers:    make(map[string]*storyWriter),
		chronicles: make(map[string]bool),
		stop:       make(chan struct{}),
	}
	storage := jetstream.FileStorage
	if opts.MemoryStorage {
		storage = jetstream.MemoryStorage
	}
	s.sources, err = s.createBucket(ctx, jetstream.KeyValueConfig{
		Bucket:      sourcesBucket,
		Description: "chronostream sources: one entry per ingest request or connection",
		History:     1,
		TTL:         30 * 24 * time.Hour,
		Storage:     storage,
		Replicas:    opts.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("store: sources bucket: %w", err)
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(s.ReplicationCollector())
	}
	s.wg.Add(1)
	go s.retentionLoop()
	return s, nil
}

// Close stops background work after in-flight appends finish.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	writers := make([]*storyWriter, 0, len(s.writers))
	for _, w := range s.writers {
		writers = append(writers, w)
	}
	s.mu.Unlock()
	for _, w := range writers {
		w.drain()
	}
	close(s.stop)
	s.wg.Wait()
	return nil
}

// MaxBlockBytes is the largest encoded size of one event the store accepts.
func (s *Store) MaxBlockBytes() int { return s.opts.MaxBlockBytes }

func streamName(chronicle string) string { return streamPrefix + event.EncodeName(chronicle) }

func storySubject(chronicle, story string) string {
	return subjectPrefix + "." + event.EncodeName(chronicle) + "." + event.EncodeName(story)
}

func chronicleSubjects(chronicle string) string {
	return subjectPrefix + "." + event.EncodeName(chronicle) + ".*"
}

// storyFromSubject returns the story name of a block's subject.
func storyFromSubject(subj string) (string, error) {
	i := len(subj) - 1
	for i >= 0 && subj[i] != '.' {
		i--
	}
	return event.DecodeName(subj[i+1:])
}

func headerUint(h nats.Header, key string) uint64 {
	v, _ := strconv.ParseUint(h.Get(key), 10, 64)
	return v
}

func headerInt(h nats.Header, key string) int64 {
	v, _ := strconv.ParseInt(h.Get(key), 10, 64)
	return v
}

func isNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) ||
		errors.Is(err, jetstream.ErrKeyNotFound)
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// sleep waits d or until the store closes; it reports whether to go on.
func (s *Store) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.stop:
		return false
	}
}

// orderedConsumer creates an ordered consumer and returns a cleanup that
// deletes it. Ordered consumers are ephemeral but outlive their reader for
// their inactivity threshold, and a stream holds at most 1000 consumers by
// default: without the deletion, a dashboard polling reads would exhaust it.
func (s *Store) orderedConsumer(ctx context.Context, stream string, cfg jetstream.OrderedConsumerConfig) (jetstream.Consumer, func(), error) {
	cfg.InactiveThreshold = 10 * time.Second // a backstop if the deletion fails
	cons, err := s.js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	cleanup := func() {
		info := cons.CachedInfo()
		if info == nil {
			return
		}
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.js.DeleteConsumer(dctx, stream, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			s.log.Debug("store: deleting a reader's consumer failed", "stream", stream, "consumer", info.Name, "err", err)
		}
	}
	return cons, cleanup, nil
}

// PlacementTimeout bounds one attempt to create replicated streams or
// buckets. JetStream answers a creation once the replicas have elected a
// leader, but only to one of several nodes creating the same bucket at
// once: the others hear nothing, and AwaitPlacement tries again (the
// bucket then exists) after this.
const PlacementTimeout = 5 * time.Second

// createBucket creates (or updates) one of the store's KV buckets.
func (s *Store) createBucket(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return AwaitPlacement(ctx, s.log, "bucket "+cfg.Bucket, cfg.Replicas, func(ctx context.Context) (jetstream.KeyValue, error) {
		return s.js.CreateOrUpdateKeyValue(ctx, cfg)
	})
}

// AwaitPlacement runs create (which makes a replicated stream or bucket)
// until it succeeds or ctx ends, while a JetStream cluster cannot place
// replicas yet: a freshly formed cluster times out or answers "insufficient
// resources" until its nodes know of each other, and a node starting among
// peers still electing has no leader to ask. With one replica, the first
// attempt decides. Each attempt may take PlacementTimeout: the answer to a
// creation waits for the new replicas to elect their leader, which takes
// longer than JetStream's default 5 s request timeout.
func AwaitPlacement[T any](ctx context.Context, log *slog.Logger, what string, replicas int, create func(context.Context) (T, error)) (T, error) {
	warned := time.Now()
	for {
		actx, cancel := context.WithTimeout(ctx, PlacementTimeout)
		v, err := create(actx)
		cancel()
		if err == nil || replicas <= 1 || ctx.Err() != nil || isNotClustered(err) {
			return v, err
		}
		if time.Since(warned) > 5*time.Second {
			warned = time.Now()
			log.Warn("waiting for the JetStream cluster to place replicas", "what", what, "replicas", replicas, "err", err)
		}
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, fmt.Errorf("%w (last attempt: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}
