package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/store"
)

// ManagerConfig configures the sinks of a server.
type ManagerConfig struct {
	State   *State
	Source  Source
	Metrics *Metrics
	Logger  *slog.Logger
	// Node names this process in leases (a cluster runs each sink on one node).
	Node string
	// LeaseTTL: see DefaultLeaseTTL.
	LeaseTTL time.Duration
}

// Manager runs the configured sinks, each under its lease, and is what the
// API controls them through.
type Manager struct {
	cfg     ManagerConfig
	runners map[string]*Runner
	names   []string

	mu     sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// ErrUnknownSink says no sink of that name is configured here.
var ErrUnknownSink = errors.New("no such sink")

// NewManager builds every sink (a bad setting is an error now, not at the
// first delivery).
func NewManager(cfg ManagerConfig, sinks []Config) (*Manager, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	m := &Manager{cfg: cfg, runners: map[string]*Runner{}}
	for _, c := range sinks {
		if err := c.Validate(); err != nil {
			m.closeSinks()
			return nil, err
		}
		if _, dup := m.runners[c.Name]; dup {
			m.closeSinks()
			return nil, fmt.Errorf("sink %s: configured twice", c.Name)
		}
		snk, err := New(c.Type, c.Settings, cfg.Logger.With("sink", c.Name))
		if err != nil {
			m.closeSinks()
			return nil, fmt.Errorf("sink %s: %w", c.Name, err)
		}
		r, err := NewRunner(c, snk, cfg.Source, cfg.State, cfg.Metrics, cfg.Node+"/"+c.Name, cfg.Logger)
		if err != nil {
			snk.Close()
			m.closeSinks()
			return nil, err
		}
		m.runners[c.Name] = r
		m.names = append(m.names, c.Name)
	}
	slices.Sort(m.names)
	return m, nil
}

func (m *Manager) closeSinks() {
	for _, r := range m.runners {
		_ = r.sink.Close()
	}
}

// Start runs every sink in the background, each while this node holds its lease.
func (m *Manager) Start(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	m.mu.Lock()
	m.cancel = cancel
	m.mu.Unlock()
	for _, r := range m.runners {
		lease := m.cfg.State.NewLease(r.cfg.Name, m.cfg.Node, m.cfg.LeaseTTL, m.cfg.Logger)
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			lease.Run(ctx, r.Run)
		}()
	}
}

// Close stops every sink (a batch in flight is abandoned uncommitted and
// delivered again by whoever runs the sink next) and closes them.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.cancel != nil {
		m.cancel()
	}
	m.mu.Unlock()
	m.wg.Wait()
	var err error
	for _, r := range m.runners {
		err = errors.Join(err, r.sink.Close())
	}
	return err
}

// List returns the status of every configured sink, by name.
func (m *Manager) List(ctx context.Context) []Status {
	out := make([]Status, 0, len(m.names))
	for _, n := range m.names {
		s, _ := m.Status(ctx, n)
		out = append(out, s)
	}
	return out
}

// Status returns one sink's status. For a sink configured here that
// another node runs, the cursor and holder come from the state bucket.
func (m *Manager) Status(ctx context.Context, name string) (Status, error) {
	r, ok := m.runners[name]
	if !ok {
		return Status{}, fmt.Errorf("sink %q: %w", name, ErrUnknownSink)
	}
	s := r.Status()
	if s.State == "standby" || s.State == "paused" {
		if c, _, err := m.cfg.State.Cursor(ctx, name); err == nil {
			s.Cursor = c.Seq
			if c.Paused {
				s.State = "paused"
			}
		}
	}
	if s.State == "standby" {
		s.Node, _ = m.cfg.State.Holder(ctx, name)
	} else {
		s.Node = m.cfg.Node
	}
	return s, nil
}

// Cursor returns a sink's durable cursor: of a configured sink, or of one
// that `chronostream forward` keeps on this server.
func (m *Manager) Cursor(ctx context.Context, name string) (Cursor, error) {
	if err := validateCursorNames(name, ""); err != nil {
		return Cursor{}, err
	}
	c, _, err := m.cfg.State.Cursor(ctx, name)
	if errors.Is(err, ErrNoCursor) {
		return c, fmt.Errorf("sink %q has no cursor: %w", name, store.ErrNotFound)
	}
	return c, err
}

// SetPaused pauses or resumes a configured sink, on whichever node runs it.
func (m *Manager) SetPaused(ctx context.Context, name string, paused bool) (Cursor, error) {
	r, ok := m.runners[name]
	if !ok {
		return Cursor{}, fmt.Errorf("sink %q: %w", name, ErrUnknownSink)
	}
	return m.update(ctx, name, r.cfg.Chronicle, func(c *Cursor) error {
		c.Paused = paused
		return nil
	})
}

// SetCursor moves a sink's cursor to a position: a seq, "beginning",
// "now" or an RFC 3339 time (the cursor before the first event at or after
// it). The running sink reloads it; events before it are not delivered
// (again), events after it are. chronicle is needed only for a sink not
// configured here that has no cursor yet.
func (m *Manager) SetCursor(ctx context.Context, name, position, chronicle string) (Cursor, error) {
	if err := validateCursorNames(name, chronicle); err != nil {
		return Cursor{}, err
	}
	if r, ok := m.runners[name]; ok {
		if chronicle != "" && chronicle != r.cfg.Chronicle {
			return Cursor{}, fmt.Errorf("%w: sink %s reads chronicle %q, not %q", ErrBadPosition, name, r.cfg.Chronicle, chronicle)
		}
		chronicle = r.cfg.Chronicle
	}
	return m.update(ctx, name, chronicle, func(c *Cursor) error {
		seq, err := m.resolve(ctx, c.Chronicle, position)
		c.Seq = seq
		return err
	})
}

// validateCursorNames checks the sink name and, if one is given, the
// chronicle of a cursor request; the error wraps store.ErrInvalidName, which
// the API answers with 400.
func validateCursorNames(name, chronicle string) error {
	err := ValidateName(name)
	if err == nil && chronicle != "" {
		err = event.ValidateChronicle(chronicle)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", store.ErrInvalidName, err)
	}
	return nil
}

// ErrBadPosition says a cursor position cannot be understood.
var ErrBadPosition = errors.New("bad cursor position")

func (m *Manager) resolve(ctx context.Context, chronicle, position string) (uint64, error) {
	if chronicle == "" {
		return 0, fmt.Errorf("%w: a chronicle is needed for a sink with no cursor", ErrBadPosition)
	}
	switch position = strings.TrimSpace(position); {
	case position == "beginning":
		return 0, nil
	case position == "now":
		seq, err := m.cfg.Source.Head(ctx, chronicle)
		if errors.Is(err, store.ErrNotFound) {
			return 0, nil
		}
		return seq, err
	}
	if seq, err := strconv.ParseUint(position, 10, 64); err == nil {
		return seq, nil
	}
	t, err := time.Parse(time.RFC3339Nano, position)
	if err != nil {
		return 0, fmt.Errorf("%w: want a seq, \"beginning\", \"now\" or an RFC 3339 time, got %q", ErrBadPosition, position)
	}
	seq, err := m.cfg.Source.SeqAt(ctx, chronicle, t)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	return seq, err
}

// update changes a cursor record by compare-and-set, retrying when a
// running sink committed meanwhile.
func (m *Manager) update(ctx context.Context, name, chronicle string, change func(*Cursor) error) (Cursor, error) {
	for attempt := 0; ; attempt++ {
		c, rev, err := m.cfg.State.Cursor(ctx, name)
		if err != nil && !errors.Is(err, ErrNoCursor) {
			return c, err
		}
		if c.Chronicle == "" || chronicle != "" && c.Chronicle != chronicle {
			c = Cursor{Chronicle: chronicle, Paused: c.Paused}
		}
		if err := change(&c); err != nil {
			return c, err
		}
		c.By = "api"
		if _, err = m.cfg.State.SetCursor(ctx, name, c, int64(rev)); err == nil {
			c, _, err = m.cfg.State.Cursor(ctx, name)
			return c, err
		}
		if !errors.Is(err, ErrConflict) || attempt > 50 {
			return c, err
		}
	}
}
