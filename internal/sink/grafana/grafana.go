// Package grafana is the Grafana-annotations sink (chaosdb's grafana
// driver): events of kind annotation become annotations on one or more
// Grafana servers through Grafana's annotations HTTP API, and a start/end
// pair of events becomes one region annotation.
//
// Delivery is at least once and idempotent per server: every annotation
// carries the tag cs:<chronicle>/<seq> of the event it came from, and the
// sink looks that tag up before it creates an annotation, so a batch
// retried after one server failed, or redelivered after a crash, creates
// nothing twice on a server that had already accepted it. A region's start
// carries region:<id>; its end finds the start by that tag (not from
// memory), so a restart between start and end still closes the same
// region.
package grafana

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/chronostream/chronostream/internal/sink"
	"github.com/chronostream/chronostream/internal/sink/sinkhttp"
)

// Kind is the sink type's name in the config file.
const Kind = "grafana"

func init() { sink.Register(Kind, factory) }

func factory(settings json.RawMessage, log *slog.Logger) (sink.Sink, error) {
	return New(settings, log)
}

// Sink delivers annotation events to every configured Grafana server.
type Sink struct {
	servers  []*server
	filtered atomic.Uint64
}

// server is one Grafana server of the sink.
type server struct {
	cfg    Server
	name   string // host:port, for messages (never the credentials)
	base   string // the annotations API's URL
	client *http.Client
	log    *slog.Logger
}

// New builds a sink from its settings (see Config), loading the TLS files
// now so that a bad path fails at start.
func New(settings json.RawMessage, log *slog.Logger) (*Sink, error) {
	cfg, err := parseConfig(settings)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{}
	for i, sc := range cfg.Servers {
		c, err := sinkhttp.NewClient(sinkhttp.TLS{CAFile: sc.CAFile, CertFile: sc.ClientCertFile, KeyFile: sc.ClientKeyFile}, time.Duration(sc.Timeout))
		if err != nil {
			return nil, fmt.Errorf("grafana sink settings: servers[%d]: %w", i, err)
		}
		name := sc.Host + ":" + strconv.Itoa(sc.Port)
		s.servers = append(s.servers, &server{cfg: sc, name: name, base: sc.baseURL(), client: c, log: log.With("grafana", name)})
	}
	return s, nil
}

// Filtered is the number of events the sink was given and sent to no
// server: events of another kind, and non-actions under only_actions.
func (s *Sink) Filtered() uint64 { return s.filtered.Load() }

// Close releases idle connections.
func (s *Sink) Close() error {
	for _, srv := range s.servers {
		srv.client.CloseIdleConnections()
	}
	return nil
}

// Deliver sends the batch's annotations to every server, in order (the
// runner has expanded the events' bodies into tags and fields). An
// annotation event that breaks the convention fails the batch before
// anything is sent (permanent: the runner isolates and dead-letters it).
// Each server stops at its first failure, so that a region's end never
// overtakes its start; the others go on, and what they accepted is not
// sent to them again when the runner retries.
func (s *Sink) Deliver(ctx context.Context, b sink.Batch) error {
	var notes []note
	for i := range b.Events {
		e := &b.Events[i]
		n, ok, err := noteOf(e)
		if err != nil {
			return sink.Permanent(fmt.Errorf("annotation %s seq %d: %w", b.Chronicle, e.Seq, err))
		}
		if ok {
			notes = append(notes, n)
		}
	}
	sent := make([]bool, len(notes))
	var errs []error
	for _, srv := range s.servers {
		for i := range notes {
			n := &notes[i]
			if srv.cfg.OnlyActions && !n.isAction() {
				continue
			}
			sent[i] = true
			if err := srv.apply(ctx, b.Chronicle, n); err != nil {
				errs = append(errs, fmt.Errorf("grafana %s: annotation seq %d: %w", srv.name, n.seq, err))
				break
			}
		}
	}
	err := combine(errs)
	if err == nil { // counted once, not on every retry of the batch
		skipped := len(b.Events) - len(notes)
		for _, sentSomewhere := range sent {
			if !sentSomewhere {
				skipped++
			}
		}
		s.filtered.Add(uint64(skipped))
	}
	return err
}

// combine joins the servers' errors into the class the runner acts on: a
// refusal by any server is permanent (the event cannot reach every server);
// otherwise transient, no sooner than the longest Retry-After.
func combine(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	err := errors.Join(errs...)
	var after time.Duration
	for _, e := range errs {
		if sink.IsPermanent(e) {
			return sink.Permanent(err)
		}
		after = max(after, sink.RetryAfter(e))
	}
	if after > 0 {
		return &sink.RetryLaterError{Err: err, After: after}
	}
	return err
}

// apply makes the server hold n, unless it already does.
func (s *server) apply(ctx context.Context, chronicle string, n *note) error {
	if n.phase == PhaseEnd {
		return s.closeRegion(ctx, chronicle, n)
	}
	id := idTag(chronicle, n.seq)
	got, err := s.find(ctx, 1, id)
	if err != nil {
		return err
	}
	if len(got) > 0 {
		// Accepted before: a retry, or a redelivery after a restart.
		s.log.Debug("grafana sink: annotation already held", "chronicle", chronicle, "seq", n.seq, "id", got[0].ID)
		return nil
	}
	tags := make([]string, 0, len(s.cfg.Tags)+len(n.tags)+2)
	tags = append(tags, s.cfg.Tags...)
	tags = append(tags, n.tags...)
	if n.phase == PhaseStart {
		tags = append(tags, n.regionTag())
	}
	tags = append(tags, id)
	slices.Sort(tags)
	return s.create(ctx, createRequest{
		DashboardUID: s.cfg.DashboardUID,
		DashboardID:  s.cfg.DashboardID,
		PanelID:      s.cfg.PanelID,
		Time:         n.time,
		TimeEnd:      n.timeEnd,
		Tags:         slices.Compact(tags),
		Text:         n.text,
	})
}

// closeRegion sets the timeEnd of the region n ends: the latest open
// annotation of this chronicle tagged region:<id> that starts no later.
func (s *server) closeRegion(ctx context.Context, chronicle string, n *note) error {
	got, err := s.find(ctx, findLimit, n.regionTag())
	if err != nil {
		return err
	}
	prefix := idTagPrefix + chronicle + "/"
	var start *annotation
	for i := range got {
		a := &got[i]
		if a.Time > n.time || !slices.ContainsFunc(a.Tags, func(t string) bool { return strings.HasPrefix(t, prefix) }) {
			continue
		}
		if a.TimeEnd == n.time {
			s.log.Debug("grafana sink: region already closed", "region", n.region, "id", a.ID)
			return nil // closed by this end before: a retry or a redelivery
		}
		if (a.TimeEnd == 0 || a.TimeEnd == a.Time) && (start == nil || a.Time > start.Time) {
			start = a
		}
	}
	if start == nil {
		return sink.Permanent(fmt.Errorf("region %q: no open start in Grafana to end (its start was not delivered to this server: filtered, dead-lettered or never sent)", n.region))
	}
	if err := s.patch(ctx, start.ID, patchRequest{TimeEnd: n.time}); err != nil {
		return err
	}
	s.log.Debug("grafana sink: region closed", "region", n.region, "id", start.ID, "seq", n.seq)
	return nil
}

// The request and answer shapes of Grafana's annotations HTTP API.
type (
	createRequest struct {
		DashboardUID string   `json:"dashboardUID,omitempty"`
		DashboardID  int64    `json:"dashboardId,omitempty"`
		PanelID      int64    `json:"panelId,omitempty"`
		Time         int64    `json:"time"`
		TimeEnd      int64    `json:"timeEnd,omitempty"`
		Tags         []string `json:"tags"`
		Text         string   `json:"text"`
	}
	createAnswer struct {
		Message string `json:"message"`
		ID      int64  `json:"id"`
	}
	patchRequest struct {
		TimeEnd int64 `json:"timeEnd"`
	}
	annotation struct {
		ID      int64    `json:"id"`
		Time    int64    `json:"time"`
		TimeEnd int64    `json:"timeEnd"`
		Tags    []string `json:"tags"`
	}
)

// findLimit bounds the annotations a region's lookup returns, newest
// first (Grafana's default limit): the open start is among the newest.
const findLimit = 100

// find returns at most limit annotations (in this sink's dashboard, if it
// has one) that carry every tag.
func (s *server) find(ctx context.Context, limit int, tags ...string) ([]annotation, error) {
	q := url.Values{"tags": tags, "type": {"annotation"}, "limit": {strconv.Itoa(limit)}}
	if s.cfg.DashboardUID != "" {
		q.Set("dashboardUID", s.cfg.DashboardUID)
	} else if s.cfg.DashboardID != 0 {
		q.Set("dashboardId", strconv.FormatInt(s.cfg.DashboardID, 10))
	}
	body, err := s.do(ctx, http.MethodGet, s.base+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	var got []annotation
	if err := json.Unmarshal(body, &got); err != nil {
		return nil, fmt.Errorf("GET %s: the answer is not a list of annotations: %w", s.base, err)
	}
	return got, nil
}

func (s *server) create(ctx context.Context, r createRequest) error {
	body, err := s.do(ctx, http.MethodPost, s.base, r)
	if err != nil {
		return err
	}
	var a createAnswer
	if err := json.Unmarshal(body, &a); err != nil || a.ID <= 0 {
		// Transient: the annotation may exist; the retry's lookup finds it.
		return fmt.Errorf("POST %s: the answer names no annotation id: %.200q", s.base, body)
	}
	s.log.Debug("grafana sink: annotation created", "id", a.ID, "time_ms", r.Time, "tags", r.Tags)
	return nil
}

func (s *server) patch(ctx context.Context, id int64, r patchRequest) error {
	_, err := s.do(ctx, http.MethodPatch, s.base+"/"+strconv.FormatInt(id, 10), r)
	return err
}

// do sends one authenticated request with a JSON body (if v is not nil).
func (s *server) do(ctx context.Context, method, target string, v any) ([]byte, error) {
	var body []byte
	if v != nil {
		var err error
		if body, err = json.Marshal(v); err != nil {
			return nil, err
		}
	}
	req, err := sinkhttp.NewRequest(ctx, method, target, "application/json", body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	switch {
	case s.cfg.APIToken != "":
		req.Header.Set("Authorization", "Bearer "+s.cfg.APIToken)
	case s.cfg.Username != "":
		req.SetBasicAuth(s.cfg.Username, s.cfg.Password)
	}
	return sinkhttp.Do(s.client, req)
}
