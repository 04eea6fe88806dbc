package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/chronostream/chronostream/event"
)

// ChronicleInfo describes a chronicle.
type ChronicleInfo struct {
	Name      string    `json:"name"`
	Retention Retention `json:"retention"`
	Stories   int       `json:"stories"`
	Events    uint64    `json:"events"`
	Bytes     uint64    `json:"bytes"`
	FirstSeq  uint64    `json:"first_seq"`
	LastSeq   uint64    `json:"last_seq"`
	Replicas  int       `json:"replicas"`
	Created   time.Time `json:"created"`
}

// StoryInfo describes a story of a chronicle.
type StoryInfo struct {
	Name      string    `json:"name"`
	Events    uint64    `json:"events"`
	Bytes     uint64    `json:"bytes"`
	FirstSeq  uint64    `json:"first_seq"`
	LastSeq   uint64    `json:"last_seq"`
	FirstTime time.Time `json:"first_time"`
	LastTime  time.Time `json:"last_time"`
}

// chronicleMeta is kept in the stream's description: the chronicle's real
// name and what JetStream's own limits cannot express.
type chronicleMeta struct {
	Chronicle string `json:"chronicle"`
	MaxEvents int64  `json:"max_events,omitempty"`
}

func (s *Store) streamConfig(name string, r Retention, replicas int) jetstream.StreamConfig {
	meta, _ := json.Marshal(chronicleMeta{Chronicle: name, MaxEvents: r.MaxEvents})
	// Blocks arrive compressed (see codec.go): JetStream's own compression,
	// which rereads and rewrites each finished file, would only add work.
	storage := jetstream.FileStorage
	if s.opts.MemoryStorage {
		storage = jetstream.MemoryStorage
	}
	maxBytes := r.MaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	return jetstream.StreamConfig{
		Name:        streamName(name),
		Description: string(meta),
		Subjects:    []string{chronicleSubjects(name)},
		Storage:     storage,
		Replicas:    replicas,
		MaxAge:      r.MaxAge,
		MaxBytes:    maxBytes,
		Discard:     jetstream.DiscardOld,
		AllowDirect: true,
	}
}

// ErrNoPlacement says the cluster cannot place a chronicle's replicas now:
// fewer nodes are up (or exist) than the chronicle has replicas.
var ErrNoPlacement = errors.New("the cluster cannot place the chronicle's replicas")

// isNoPlacement recognizes JetStream's answers when it lacks nodes for
// the replicas asked for.
func isNoPlacement(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	// nats-server's codes: 10005 no suitable peers for placement, 10023
	// insufficient resources (nats.go names neither).
	switch apiErr.ErrorCode {
	case 10005, 10023, jsNotClustered:
		return true
	}
	return false
}

// jsNotClustered is nats-server's answer to replicas > 1 on a server that
// is not clustered: no wait makes room for them.
const jsNotClustered = 10074

func isNotClustered(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jsNotClustered
}

// ErrInvalidReplicas is a replica count below 1.
var ErrInvalidReplicas = errors.New("replicas must be at least 1")

// CreateChronicle creates a chronicle, or changes the retention of an
// existing one. A new chronicle has Options.Replicas replicas; an existing
// one keeps its own.
func (s *Store) CreateChronicle(ctx context.Context, name string, r Retention) error {
	return s.createChronicle(ctx, name, r, 0)
}

// CreateChronicleReplicas is CreateChronicle that also sets how many
// JetStream replicas hold the chronicle (at most the cluster's size):
// JetStream moves an existing chronicle to the new count.
func (s *Store) CreateChronicleReplicas(ctx context.Context, name string, r Retention, replicas int) error {
	if replicas < 1 {
		return fmt.Errorf("%w: %w, not %d", ErrInvalidName, ErrInvalidReplicas, replicas)
	}
	return s.createChronicle(ctx, name, r, replicas)
}

// createChronicle creates or updates a chronicle; replicas 0 means the
// store's default for a new chronicle and the current count for an
// existing one (an update must not move an R3 chronicle to a node's R1).
func (s *Store) createChronicle(ctx context.Context, name string, r Retention, replicas int) error {
	if err := event.ValidateChronicle(name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidName, err)
	}
	if r.MaxAge < 0 || r.MaxBytes < 0 || r.MaxEvents < 0 {
		return fmt.Errorf("%w: retention limits must not be negative", ErrInvalidName)
	}
	if replicas == 0 {
		replicas = s.opts.Replicas
		if str, err := s.js.Stream(ctx, streamName(name)); err == nil {
			replicas = str.CachedInfo().Config.Replicas
		} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("store: create chronicle %q: %w", name, err)
		}
	}
	if replicas > 1 {
		// JetStream answers once the replicas have elected a leader.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, PlacementTimeout)
		defer cancel()
	}
	if _, err := s.js.CreateOrUpdateStream(ctx, s.streamConfig(name, r, replicas)); isNoPlacement(err) {
		return fmt.Errorf("chronicle %q: %w: %d replicas need %d nodes up (%w)", name, ErrNoPlacement, replicas, replicas, err)
	} else if err != nil {
		return fmt.Errorf("store: create chronicle %q: %w", name, err)
	}
	s.mu.Lock()
	s.chronicles[name] = true
	s.mu.Unlock()
	return nil
}

// SetRetention changes a chronicle's retention; the chronicle must exist.
func (s *Store) SetRetention(ctx context.Context, name string, r Retention) error {
	if _, err := s.Chronicle(ctx, name); err != nil {
		return err
	}
	if err := s.CreateChronicle(ctx, name, r); err != nil {
		return err
	}
	s.enforceMaxEvents(ctx, name, r.MaxEvents)
	return nil
}

// ErrNoChronicle is returned when writing to a missing chronicle with auto-create off.
var ErrNoChronicle = fmt.Errorf("%w: no such chronicle (auto-create is off)", ErrNotFound)

func (s *Store) ensureChronicle(ctx context.Context, name string) error {
	s.mu.Lock()
	known := s.chronicles[name]
	s.mu.Unlock()
	if known {
		return nil
	}
	_, err := s.js.Stream(ctx, streamName(name))
	switch {
	case err == nil:
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if !s.opts.AutoCreate {
			return ErrNoChronicle
		}
		if err := s.CreateChronicle(ctx, name, s.opts.Retention); err != nil {
			return err
		}
	default:
		return fmt.Errorf("store: %w", err)
	}
	s.mu.Lock()
	s.chronicles[name] = true
	s.mu.Unlock()
	return nil
}

func (s *Store) forgetChronicle(name string) {
	s.mu.Lock()
	delete(s.chronicles, name)
	s.mu.Unlock()
}

// Chronicles lists all chronicles, sorted by name.
func (s *Store) Chronicles(ctx context.Context) ([]ChronicleInfo, error) {
	var out []ChronicleInfo
	names := s.js.StreamNames(ctx)
	for n := range names.Name() {
		if !strings.HasPrefix(n, streamPrefix) {
			continue
		}
		name, err := event.DecodeName(strings.TrimPrefix(n, streamPrefix))
		if err != nil {
			continue
		}
		info, err := s.Chronicle(ctx, name)
		if isNotFound(err) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	if err := names.Err(); err != nil {
		return nil, fmt.Errorf("store: list chronicles: %w", err)
	}
	slices.SortFunc(out, func(a, b ChronicleInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Chronicle describes one chronicle.
func (s *Store) Chronicle(ctx context.Context, name string) (ChronicleInfo, error) {
	str, err := s.js.Stream(ctx, streamName(name))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return ChronicleInfo{}, fmt.Errorf("chronicle %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return ChronicleInfo{}, fmt.Errorf("store: %w", err)
	}
	stories, err := s.stories(ctx, name, str)
	if err != nil {
		return ChronicleInfo{}, err
	}
	info := str.CachedInfo()
	ci := chronicleInfo(name, info)
	ci.Stories = len(stories)
	// The stream state knows blocks, not events: the stories' exact seqs
	// give the first and last event (0 and 0 when the chronicle is empty).
	ci.FirstSeq, ci.LastSeq = 0, 0
	for _, st := range stories {
		ci.Events += st.Events
		if ci.FirstSeq == 0 || st.FirstSeq < ci.FirstSeq {
			ci.FirstSeq = st.FirstSeq
		}
		ci.LastSeq = max(ci.LastSeq, st.LastSeq)
	}
	return ci, nil
}

func chronicleInfo(name string, info *jetstream.StreamInfo) ChronicleInfo {
	var meta chronicleMeta
	_ = json.Unmarshal([]byte(info.Config.Description), &meta)
	maxBytes := info.Config.MaxBytes
	if maxBytes < 0 {
		maxBytes = 0
	}
	return ChronicleInfo{
		Name:      name,
		Retention: Retention{MaxAge: info.Config.MaxAge, MaxBytes: maxBytes, MaxEvents: meta.MaxEvents},
		Bytes:     info.State.Bytes,
		FirstSeq:  event.MakeSeq(info.State.FirstSeq, 1),
		LastSeq:   event.MakeSeq(info.State.LastSeq, 0),
		Replicas:  info.Config.Replicas,
		Created:   info.Created,
	}
}

// Stories lists the stories of a chronicle, sorted by name.
func (s *Store) Stories(ctx context.Context, chronicle string) ([]StoryInfo, error) {
	str, err := s.js.Stream(ctx, streamName(chronicle))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("chronicle %q: %w", chronicle, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return s.stories(ctx, chronicle, str)
}

func (s *Store) stories(ctx context.Context, chronicle string, str jetstream.Stream) ([]StoryInfo, error) {
	info, err := str.Info(ctx, jetstream.WithSubjectFilter(chronicleSubjects(chronicle)))
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	out := make([]StoryInfo, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		name, err := storyFromSubject(subj)
		if err != nil {
			continue
		}
		st, err := storyInfo(ctx, str, name, subj)
		if isNotFound(err) {
			continue // evicted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b StoryInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// storyInfo derives a story's counts from its first and last blocks: their
// cumulative headers make this exact without reading what lies between.
func storyInfo(ctx context.Context, str jetstream.Stream, name, subj string) (StoryInfo, error) {
	first, err := str.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(subj))
	if err != nil {
		return StoryInfo{}, err
	}
	last, err := str.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		return StoryInfo{}, err
	}
	lastN := headerUint(last.Header, hdrCount)
	before := headerUint(first.Header, hdrTotal) - headerUint(first.Header, hdrCount)
	bytesBefore := headerUint(first.Header, hdrBytes) - uint64(len(first.Data))
	return StoryInfo{
		Name:      name,
		Events:    headerUint(last.Header, hdrTotal) - before,
		Bytes:     headerUint(last.Header, hdrBytes) - bytesBefore,
		FirstSeq:  event.MakeSeq(first.Sequence, 1),
		LastSeq:   event.MakeSeq(last.Sequence, int(lastN)),
		FirstTime: time.Unix(0, headerInt(first.Header, hdrT0)).UTC(),
		LastTime:  time.Unix(0, headerInt(last.Header, hdrT1)).UTC(),
	}, nil
}

// retentionLoop enforces max_events, which JetStream cannot: it counts whole
// blocks, so eviction removes the oldest blocks until the chronicle holds at
// most max_events events.
func (s *Store) retentionLoop() {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stop
		cancel()
	}()
	// Counting a chronicle's events costs two reads per story, so a
	// chronicle is counted again only once something was appended to it.
	checked := map[string]uint64{} // stream name → last sequence when last enforced
	for s.sleep(ctx, time.Second) {
		s.evictIdleWriters(time.Now())
		names := s.js.StreamNames(ctx)
		for n := range names.Name() {
			if !strings.HasPrefix(n, streamPrefix) {
				continue
			}
			str, err := s.js.Stream(ctx, n)
			if err != nil {
				continue
			}
			info := str.CachedInfo()
			var meta chronicleMeta
			if json.Unmarshal([]byte(info.Config.Description), &meta) != nil || meta.MaxEvents <= 0 {
				continue
			}
			if last, ok := checked[n]; ok && last == info.State.LastSeq {
				continue
			}
			checked[n] = info.State.LastSeq
			s.enforceMaxEvents(ctx, meta.Chronicle, meta.MaxEvents)
		}
	}
}

func (s *Store) enforceMaxEvents(ctx context.Context, chronicle string, maxEvents int64) {
	if maxEvents <= 0 {
		return
	}
	str, err := s.js.Stream(ctx, streamName(chronicle))
	if err != nil {
		return
	}
	stories, err := s.stories(ctx, chronicle, str)
	if err != nil {
		s.log.Warn("retention: cannot count events", "chronicle", chronicle, "err", err)
		return
	}
	var total uint64
	for _, st := range stories {
		total += st.Events
	}
	if total <= uint64(maxEvents) {
		return
	}
	excess := total - uint64(maxEvents)
	info := str.CachedInfo()
	var evicted uint64
	seq := info.State.FirstSeq
	for ; seq <= info.State.LastSeq && evicted < excess; seq++ {
		m, err := str.GetMsg(ctx, seq)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			s.log.Warn("retention: cannot read block", "chronicle", chronicle, "seq", seq, "err", err)
			return
		}
		evicted += headerUint(m.Header, hdrCount)
	}
	// Purge keeps messages from seq on.
	if err := str.Purge(ctx, jetstream.WithPurgeSequence(seq)); err != nil {
		s.log.Warn("retention: purge failed", "chronicle", chronicle, "err", err)
		return
	}
	s.metrics.evictedEvents.Add(float64(evicted))
	s.log.Debug("retention: evicted", "chronicle", chronicle, "events", evicted, "max_events", maxEvents)
}

// DeleteChronicle removes a chronicle and all its events.
// Appends in flight finish (or fail) first, so that no writer outlives the
// deletion with a stale view of the chronicle's stories.
func (s *Store) DeleteChronicle(ctx context.Context, name string) error {
	s.mu.Lock()
	var writers []*storyWriter
	for k, w := range s.writers {
		if w.chronicle == name {
			writers = append(writers, w)
			delete(s.writers, k)
		}
	}
	s.mu.Unlock()
	for _, w := range writers {
		w.drain()
	}
	err := s.js.DeleteStream(ctx, streamName(name))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("chronicle %q: %w", name, ErrNotFound)
	}
	s.forgetChronicle(name)
	return err
}
