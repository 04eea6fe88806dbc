// Package grafanatest is a stand-in for Grafana's annotations HTTP API,
// for tests: Grafana cannot run here. It implements the documented
// contract (docs/sources/developers/http_api/annotations.md in Grafana's
// repository) strictly, so that a client that passes against it sends what
// Grafana accepts:
//
//   - POST {endpoint} takes {dashboardUID, dashboardId, panelId, time,
//     timeEnd, tags, text} (text required; times are epoch milliseconds)
//     and answers {"message":"Annotation added","id":N};
//   - PATCH {endpoint}/{id} takes any of {text, tags, time, timeEnd} and
//     answers {"message":"Annotation patched"} (404 for an unknown id);
//   - GET {endpoint}?from&to&limit&tags&dashboardUID&dashboardId&panelId&type
//     answers the matching annotations, newest first, at most limit
//     (default 100); every tags value must be on an annotation (AND).
//
// Every request must carry the configured credentials (Bearer token or
// basic auth) or it gets 401, and JSON bodies must be application/json
// with no member the API does not document (400).
package grafanatest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Annotation is one annotation as Grafana stores and returns it.
type Annotation struct {
	ID           int64    `json:"id"`
	DashboardID  int64    `json:"dashboardId"`
	DashboardUID string   `json:"dashboardUID"`
	PanelID      int64    `json:"panelId"`
	Time         int64    `json:"time"`
	TimeEnd      int64    `json:"timeEnd"`
	Text         string   `json:"text"`
	Tags         []string `json:"tags"`
}

// Server is a fake Grafana. Set its fields before its first request.
type Server struct {
	// Token, if set, is the only accepted "Authorization: Bearer" token.
	Token string
	// User and Password, if set, are the only accepted basic auth.
	User, Password string
	// Endpoint is the annotations API's path (default /api/annotations).
	Endpoint string
	// Fail, if set, is asked first about every request; a status other
	// than 0 is answered instead of serving it (with Retry-After: 1 for
	// 429 and 503).
	Fail func(r *http.Request) int

	mu       sync.Mutex
	next     int64
	byID     map[int64]*Annotation
	requests map[string]int // by method
}

// Minimum and maximum plausible epoch milliseconds (2001 to 5138): a
// client that sends seconds or nanoseconds is refused, as it would find
// its annotations in 1970 or far in the future in a real Grafana.
const (
	minMillis = 1e12
	maxMillis = 1e14
)

// ServeHTTP implements the annotations API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.byID == nil {
		s.byID = map[int64]*Annotation{}
		s.requests = map[string]int{}
	}
	s.requests[r.Method]++
	s.mu.Unlock()
	if s.Fail != nil {
		if code := s.Fail(r); code != 0 {
			if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", "1")
			}
			answer(w, code, map[string]string{"message": http.StatusText(code)})
			return
		}
	}
	if !s.authorized(r) {
		answer(w, http.StatusUnauthorized, map[string]string{"message": "Unauthorized"})
		return
	}
	base := cmp.Or(s.Endpoint, "/api/annotations")
	switch {
	case r.URL.Path == base && r.Method == http.MethodPost:
		s.create(w, r)
	case r.URL.Path == base && r.Method == http.MethodGet:
		s.find(w, r)
	case strings.HasPrefix(r.URL.Path, base+"/") && r.Method == http.MethodPatch:
		s.patch(w, r, strings.TrimPrefix(r.URL.Path, base+"/"))
	default:
		answer(w, http.StatusNotFound, map[string]string{"message": "Not found"})
	}
}

func (s *Server) authorized(r *http.Request) bool {
	switch {
	case s.Token != "":
		return r.Header.Get("Authorization") == "Bearer "+s.Token
	case s.User != "":
		u, p, ok := r.BasicAuth()
		return ok && u == s.User && p == s.Password
	}
	return true
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	var in struct {
		DashboardUID string   `json:"dashboardUID"`
		DashboardID  int64    `json:"dashboardId"`
		PanelID      int64    `json:"panelId"`
		Time         int64    `json:"time"`
		TimeEnd      int64    `json:"timeEnd"`
		Tags         []string `json:"tags"`
		Text         string   `json:"text"`
	}
	if !decode(w, r, &in) {
		return
	}
	switch {
	case in.Text == "":
		answer(w, http.StatusBadRequest, map[string]string{"message": "text is required"})
		return
	case in.Time != 0 && (in.Time < minMillis || in.Time > maxMillis),
		in.TimeEnd != 0 && (in.TimeEnd < minMillis || in.TimeEnd > maxMillis):
		answer(w, http.StatusBadRequest, map[string]string{"message": "time and timeEnd must be epoch milliseconds"})
		return
	case in.TimeEnd != 0 && in.TimeEnd < in.Time:
		answer(w, http.StatusBadRequest, map[string]string{"message": "timeEnd before time"})
		return
	}
	s.mu.Lock()
	s.next++
	a := &Annotation{ID: s.next, DashboardID: in.DashboardID, DashboardUID: in.DashboardUID, PanelID: in.PanelID,
		Time: in.Time, TimeEnd: cmp.Or(in.TimeEnd, in.Time), Text: in.Text, Tags: in.Tags}
	s.byID[a.ID] = a
	s.mu.Unlock()
	answer(w, http.StatusOK, map[string]any{"message": "Annotation added", "id": a.ID})
}

func (s *Server) patch(w http.ResponseWriter, r *http.Request, rawID string) {
	id, err := strconv.ParseInt(rawID, 10, 64)
	if err != nil {
		answer(w, http.StatusBadRequest, map[string]string{"message": "annotationId is invalid"})
		return
	}
	var in struct {
		Text    *string  `json:"text"`
		Tags    []string `json:"tags"`
		Time    *int64   `json:"time"`
		TimeEnd *int64   `json:"timeEnd"`
	}
	if !decode(w, r, &in) {
		return
	}
	for _, t := range []*int64{in.Time, in.TimeEnd} {
		if t != nil && (*t < minMillis || *t > maxMillis) {
			answer(w, http.StatusBadRequest, map[string]string{"message": "time and timeEnd must be epoch milliseconds"})
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.byID[id]
	if !ok {
		answer(w, http.StatusNotFound, map[string]string{"message": "Could not find annotation to update"})
		return
	}
	if in.Text != nil {
		a.Text = *in.Text
	}
	if in.Tags != nil {
		a.Tags = in.Tags
	}
	if in.Time != nil {
		a.Time = *in.Time
	}
	if in.TimeEnd != nil {
		a.TimeEnd = *in.TimeEnd
	}
	answer(w, http.StatusOK, map[string]string{"message": "Annotation patched"})
}

func (s *Server) find(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	num := func(name string) (int64, bool) {
		v := q.Get(name)
		if v == "" {
			return 0, true
		}
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	from, ok1 := num("from")
	to, ok2 := num("to")
	limit, ok3 := num("limit")
	dashID, ok4 := num("dashboardId")
	panelID, ok5 := num("panelId")
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		answer(w, http.StatusBadRequest, map[string]string{"message": "invalid number in query"})
		return
	}
	if t := q.Get("type"); t != "" && t != "annotation" && t != "alert" {
		answer(w, http.StatusBadRequest, map[string]string{"message": "type must be alert or annotation"})
		return
	}
	if limit == 0 {
		limit = 100
	}
	out := []Annotation{}
	for _, a := range s.Annotations() {
		switch {
		case q.Get("dashboardUID") != "" && a.DashboardUID != q.Get("dashboardUID"),
			q.Get("dashboardUID") == "" && dashID != 0 && a.DashboardID != dashID,
			panelID != 0 && a.PanelID != panelID,
			from != 0 && to != 0 && (a.Time > to || a.TimeEnd < from),
			!containsAll(a.Tags, q["tags"]):
			continue
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b Annotation) int { return cmp.Or(cmp.Compare(b.Time, a.Time), cmp.Compare(b.ID, a.ID)) })
	answer(w, http.StatusOK, out[:min(int64(len(out)), limit)])
}

func containsAll(have, want []string) bool {
	for _, t := range want {
		if !slices.Contains(have, t) {
			return false
		}
	}
	return true
}

// decode reads a strict JSON body, answering 400 (or 415) if it is not.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		answer(w, http.StatusUnsupportedMediaType, map[string]string{"message": fmt.Sprintf("Content-Type %q, want application/json", ct)})
		return false
	}
	d := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		answer(w, http.StatusBadRequest, map[string]string{"message": "bad request data: " + err.Error()})
		return false
	}
	return true
}

func answer(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Annotations returns a copy of every annotation, by id.
func (s *Server) Annotations() []Annotation {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Annotation, 0, len(s.byID))
	for _, a := range s.byID {
		c := *a
		c.Tags = slices.Clone(a.Tags)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Annotation) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Requests returns how many requests of a method the server got.
func (s *Server) Requests(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[method]
}

// Start serves s on a loopback port (TLS if tls) until the test ends.
func Start(t interface{ Cleanup(func()) }, s *Server, tls bool) *httptest.Server {
	var hs *httptest.Server
	if tls {
		hs = httptest.NewTLSServer(s)
	} else {
		hs = httptest.NewServer(s)
	}
	t.Cleanup(hs.Close)
	return hs
}
