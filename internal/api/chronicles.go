package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/store"
)

// retentionJSON is a chronicle's retention as the API shows it: max_age as
// a Go duration string ("0s" when unlimited) and in seconds, so that scripts
// need not parse durations.
type retentionJSON struct {
	MaxAge        string  `json:"max_age"`
	MaxAgeSeconds float64 `json:"max_age_seconds"`
	MaxBytes      int64   `json:"max_bytes"`
	MaxEvents     int64   `json:"max_events"`
}

type chronicleJSON struct {
	Name      string        `json:"name"`
	Retention retentionJSON `json:"retention"`
	Stories   int           `json:"stories"`
	Events    uint64        `json:"events"`
	Bytes     uint64        `json:"bytes"`
	FirstSeq  uint64        `json:"first_seq"`
	LastSeq   uint64        `json:"last_seq"`
	Replicas  int           `json:"replicas"`
	Created   time.Time     `json:"created"`
}

func toChronicleJSON(c store.ChronicleInfo) chronicleJSON {
	return chronicleJSON{
		Name: c.Name,
		Retention: retentionJSON{
			MaxAge:        c.Retention.MaxAge.String(),
			MaxAgeSeconds: c.Retention.MaxAge.Seconds(),
			MaxBytes:      c.Retention.MaxBytes,
			MaxEvents:     c.Retention.MaxEvents,
		},
		Stories: c.Stories, Events: c.Events, Bytes: c.Bytes,
		FirstSeq: c.FirstSeq, LastSeq: c.LastSeq, Replicas: c.Replicas, Created: c.Created,
	}
}

func (a *API) listChronicles(w http.ResponseWriter, r *http.Request) {
	if _, err := newParams(r); err != nil {
		a.writeError(w, r, err)
		return
	}
	cs, err := a.cfg.Store.Chronicles(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := make([]chronicleJSON, 0, len(cs))
	who := auth.FromContext(r.Context())
	for _, c := range cs {
		if who.Can(auth.ScopeRead, c.Name) { // a token limited to chronicles lists those
			out = append(out, toChronicleJSON(c))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"chronicles": out})
}

func (a *API) getChronicle(w http.ResponseWriter, r *http.Request) {
	chronicle, _, err := names(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	c, err := a.cfg.Store.Chronicle(r.Context(), chronicle)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toChronicleJSON(c))
}

// putChronicle creates a chronicle or replaces its retention: a limit the
// body leaves out is unlimited. A body without "retention" (or none) creates
// the chronicle with unlimited retention, or leaves an existing one as it is.
func (a *API) putChronicle(w http.ResponseWriter, r *http.Request) {
	chronicle, _, err := names(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var body struct {
		Retention *struct {
			MaxAge    json.RawMessage `json:"max_age"`
			MaxBytes  int64           `json:"max_bytes"`
			MaxEvents int64           `json:"max_events"`
		} `json:"retention"`
		// Replicas, when set, is the chronicle's JetStream replica count
		// (at most the cluster's size).
		Replicas *int `json:"replicas"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		a.writeError(w, r, fmt.Errorf("%w: body: %w", errBadRequest, err))
		return
	}
	var ret store.Retention
	if body.Retention != nil {
		age, err := parseMaxAge(body.Retention.MaxAge)
		if err != nil {
			a.writeError(w, r, fmt.Errorf("%w: retention.max_age: %w", errBadRequest, err))
			return
		}
		ret = store.Retention{MaxAge: age, MaxBytes: body.Retention.MaxBytes, MaxEvents: body.Retention.MaxEvents}
		if ret.MaxBytes < 0 || ret.MaxEvents < 0 {
			a.writeError(w, r, fmt.Errorf("%w: retention limits must not be negative (0 is unlimited)", errBadRequest))
			return
		}
	}
	if body.Replicas != nil && *body.Replicas < 1 {
		a.writeError(w, r, fmt.Errorf("%w: replicas must be at least 1, not %d", errBadRequest, *body.Replicas))
		return
	}
	ctx := r.Context()
	status := http.StatusOK
	cur, err := a.cfg.Store.Chronicle(ctx, chronicle)
	switch {
	case errors.Is(err, store.ErrNotFound) && body.Replicas != nil:
		status = http.StatusCreated
		err = a.cfg.Store.CreateChronicleReplicas(ctx, chronicle, ret, *body.Replicas)
	case errors.Is(err, store.ErrNotFound):
		status = http.StatusCreated
		err = a.cfg.Store.CreateChronicle(ctx, chronicle, ret)
	case err == nil && body.Replicas != nil:
		if body.Retention == nil {
			ret = cur.Retention
		}
		err = a.cfg.Store.CreateChronicleReplicas(ctx, chronicle, ret, *body.Replicas)
	case err == nil && body.Retention != nil:
		err = a.cfg.Store.SetRetention(ctx, chronicle, ret)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	c, err := a.cfg.Store.Chronicle(ctx, chronicle)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, status, toChronicleJSON(c))
}

// parseMaxAge takes a Go duration ("24h", "90m"), a number of days ("7d"),
// or seconds as a JSON number or numeric string. null or absent is unlimited.
func parseMaxAge(raw json.RawMessage) (time.Duration, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
	} else {
		s = string(raw)
	}
	s = strings.TrimSpace(s)
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		return checkAge(time.Duration(secs * float64(time.Second)))
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.ParseFloat(days, 64); err == nil {
			return checkAge(time.Duration(n * float64(24*time.Hour)))
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want a duration (\"24h\", \"7d\") or seconds, got %s", raw)
	}
	return checkAge(d)
}

func checkAge(d time.Duration) (time.Duration, error) {
	if d < 0 {
		return 0, errors.New("must not be negative (0 is unlimited)")
	}
	return d, nil
}

func (a *API) deleteChronicle(w http.ResponseWriter, r *http.Request) {
	chronicle, _, err := names(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.cfg.Store.DeleteChronicle(r.Context(), chronicle); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) listStories(w http.ResponseWriter, r *http.Request) {
	chronicle, _, err := names(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if _, err := newParams(r); err != nil {
		a.writeError(w, r, err)
		return
	}
	st, err := a.cfg.Store.Stories(r.Context(), chronicle)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if st == nil {
		st = []store.StoryInfo{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"stories": st})
}

func (a *API) listSources(w http.ResponseWriter, r *http.Request) {
	p, err := newParams(r, "chronicle", "limit")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	chronicle, err := p.one("chronicle")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	limit := 1000
	if v, err := p.one("limit"); err != nil {
		a.writeError(w, r, err)
		return
	} else if v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit <= 0 {
			a.writeError(w, r, badParam("limit", "want a positive integer, got %q", v))
			return
		}
	}
	srcs, err := a.cfg.Store.Sources(r.Context(), chronicle, limit)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	who := auth.FromContext(r.Context())
	srcs = slices.DeleteFunc(srcs, func(s store.Source) bool { return !who.Can(auth.ScopeRead, s.Chronicle) })
	if srcs == nil {
		srcs = []store.Source{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sources": srcs})
}

func (a *API) getSource(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validSourceID(id) {
		// Such an id was never issued; the key-value store would call it invalid.
		a.writeError(w, r, fmt.Errorf("source %q: %w", id, store.ErrNotFound))
		return
	}
	src, err := a.cfg.Store.GetSource(r.Context(), id)
	if err == nil && !auth.FromContext(r.Context()).Can(auth.ScopeRead, src.Chronicle) {
		err = fmt.Errorf("source %q: %w", id, store.ErrNotFound) // not another tenant's to know of
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, src)
}

func validSourceID(id string) bool {
	if id == "" || id[0] == '.' || id[len(id)-1] == '.' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-/_=.", c) >= 0) {
			return false
		}
	}
	return true
}
