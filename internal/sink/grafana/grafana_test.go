package grafana_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/jsonev"
	"github.com/chronostream/chronostream/internal/sink"
	"github.com/chronostream/chronostream/internal/sink/grafana"
	"github.com/chronostream/chronostream/internal/sink/grafana/grafanatest"
)

// These tests run against grafanatest, a server written to Grafana's
// documented annotations API: Grafana itself cannot run here.

var t0 = time.Date(2026, 11, 22, 3, 0, 0, 123456789, time.UTC)

func ms(t time.Time) int64 { return t.UnixMilli() }

// ann is an annotation event as `chronostream annotate` writes it, its
// JSON body expanded as the runner does before Deliver.
func ann(seq uint64, at time.Time, body map[string]any) event.Event {
	body["kind"] = "annotation"
	b, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	e := event.Event{Seq: seq, Time: at.UnixNano(), Story: "annotations", Kind: event.KindAnnotation, Body: b, Format: event.FormatJSON}
	var p fastjson.Parser
	jsonev.Expand(&p, &e)
	return e
}

// settingsFor returns a server's settings for the fake at hs, merged with extra.
func settingsFor(t *testing.T, hs *httptest.Server, extra map[string]any) map[string]any {
	t.Helper()
	host, port, err := net.SplitHostPort(hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	s := map[string]any{"host": host, "port": p}
	if hs.TLS != nil {
		s["protocol"] = "https"
	}
	for k, v := range extra {
		s[k] = v
	}
	return s
}

func newSink(t *testing.T, servers ...map[string]any) *grafana.Sink {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"servers": servers})
	if err != nil {
		t.Fatal(err)
	}
	s, err := grafana.New(raw, nil)
	if err != nil {
		t.Fatalf("grafana.New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func deliver(t *testing.T, s sink.Sink, events ...event.Event) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Deliver(ctx, sink.Batch{Chronicle: "app", Events: events})
}

func mustDeliver(t *testing.T, s sink.Sink, events ...event.Event) {
	t.Helper()
	if err := deliver(t, s, events...); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
}

func TestPointAnnotationWithBearerToken(t *testing.T) {
	g := &grafanatest.Server{Token: "s3cret"}
	hs := grafanatest.Start(t, g, false)
	s := newSink(t, settingsFor(t, hs, map[string]any{
		"api_token": "s3cret", "dashboard_uid": "uGlb_lG7z", "panel_id": 2, "tags": []string{"chaos"},
	}))
	mustDeliver(t, s, ann(7, t0, map[string]any{
		"text": "deployed v2", "title": "Deploy", "tags": map[string]string{"service": "api", "canary": ""},
	}), ann(8, t0.Add(time.Second), map[string]any{"text": "plain tags", "tags": "deploy, v2,,"}))

	got := g.Annotations()
	if len(got) != 2 {
		t.Fatalf("Grafana holds %d annotations, want 2: %+v", len(got), got)
	}
	a := got[0]
	want := grafanatest.Annotation{ID: a.ID, DashboardUID: "uGlb_lG7z", PanelID: 2, Time: ms(t0), TimeEnd: ms(t0),
		Text: "Deploy\ndeployed v2", Tags: []string{"canary", "chaos", "cs:app/7", "service:api"}}
	if fmt.Sprint(a) != fmt.Sprint(want) {
		t.Errorf("annotation\n got %+v\nwant %+v", a, want)
	}
	if want := []string{"chaos", "cs:app/8", "deploy", "v2"}; !slices.Equal(got[1].Tags, want) {
		t.Errorf("plain tags: got %q, want %q", got[1].Tags, want)
	}

	// A wrong token is Grafana's 401: no event is at fault, so it is
	// retried (until the token is fixed), never dead-lettered.
	bad := newSink(t, settingsFor(t, hs, map[string]any{"api_token": "wrong"}))
	err := deliver(t, bad, ann(9, t0, map[string]any{"text": "x"}))
	if err == nil || sink.IsPermanent(err) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong token: err = %v, want a transient 401", err)
	}
}

func TestBasicAuthOverTLSWithCAFile(t *testing.T) {
	g := &grafanatest.Server{User: "admin", Password: "pa:ss"}
	hs := grafanatest.Start(t, g, true)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}

	// Without the CA the server is not trusted: nothing is sent, and the
	// error is transient (the operator fixes the trust, the runner retries).
	untrusted := newSink(t, settingsFor(t, hs, map[string]any{"username": "admin", "password": "pa:ss"}))
	if err := deliver(t, untrusted, ann(1, t0, map[string]any{"text": "x"})); err == nil || sink.IsPermanent(err) {
		t.Fatalf("untrusted server: err = %v, want a transient TLS error", err)
	}

	// chaosdb calls the CA bundle cert_file.
	s := newSink(t, settingsFor(t, hs, map[string]any{"username": "admin", "password": "pa:ss", "cert_file": caFile}))
	mustDeliver(t, s, ann(1, t0, map[string]any{"text": "over TLS"}))
	if got := g.Annotations(); len(got) != 1 || got[0].Text != "over TLS" {
		t.Fatalf("annotations: %+v", got)
	}

	wrong := newSink(t, settingsFor(t, hs, map[string]any{"username": "admin", "password": "nope", "ca_file": caFile}))
	if err := deliver(t, wrong, ann(2, t0, map[string]any{"text": "x"})); err == nil || sink.IsPermanent(err) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong password: err = %v, want a transient 401", err)
	}
}

func region(seq uint64, at time.Time, id, phase string) event.Event {
	body := map[string]any{"region": id, "phase": phase}
	if phase == grafana.PhaseStart {
		body["text"] = "experiment " + id
	}
	return ann(seq, at, body)
}

func TestRegionStartEndIsOneAnnotation(t *testing.T) {
	g := &grafanatest.Server{}
	hs := grafanatest.Start(t, g, false)
	s := newSink(t, settingsFor(t, hs, nil))
	end := t0.Add(90 * time.Second)
	mustDeliver(t, s, region(1, t0, "exp-1", "start"), ann(2, t0.Add(time.Second), map[string]any{"text": "inside"}))
	mustDeliver(t, s, region(3, end, "exp-1", "end"))
	// Redelivery (a retry, or a restart before the cursor was saved) of
	// the start and of the end changes nothing.
	mustDeliver(t, s, region(1, t0, "exp-1", "start"), ann(2, t0.Add(time.Second), map[string]any{"text": "inside"}), region(3, end, "exp-1", "end"))

	got := g.Annotations()
	if len(got) != 2 {
		t.Fatalf("Grafana holds %d annotations, want the region and the point: %+v", len(got), got)
	}
	r := got[0]
	if r.Time != ms(t0) || r.TimeEnd != ms(end) || !slices.Contains(r.Tags, "region:exp-1") || r.Text != "experiment exp-1" {
		t.Errorf("region annotation: %+v, want time %d, timeEnd %d", r, ms(t0), ms(end))
	}
	if g.Requests(http.MethodPatch) != 1 {
		t.Errorf("%d PATCH requests, want 1 (the end, once)", g.Requests(http.MethodPatch))
	}
}

func TestRegionSurvivesRestartBetweenStartAndEnd(t *testing.T) {
	g := &grafanatest.Server{}
	hs := grafanatest.Start(t, g, false)
	settings := settingsFor(t, hs, map[string]any{"dashboard_uid": "d1"})
	first := newSink(t, settings)
	mustDeliver(t, first, region(10, t0, "deploy-42", "start"))
	_ = first.Close()

	// An older region of the same id, already closed, must stay as it is.
	mustDeliver(t, first, region(2, t0.Add(-time.Hour), "deploy-42", "start"), region(3, t0.Add(-50*time.Minute), "deploy-42", "end"))

	second := newSink(t, settings) // the process restarted: nothing in memory
	end := t0.Add(5 * time.Minute)
	mustDeliver(t, second, region(10, t0, "deploy-42", "start"), region(11, end, "deploy-42", "end"))

	got := g.Annotations()
	if len(got) != 2 {
		t.Fatalf("Grafana holds %d annotations, want 2 regions: %+v", len(got), got)
	}
	if got[0].Time != ms(t0) || got[0].TimeEnd != ms(end) {
		t.Errorf("restarted region: %+v, want %d..%d", got[0], ms(t0), ms(end))
	}
	if got[1].TimeEnd != ms(t0.Add(-50*time.Minute)) {
		t.Errorf("older region changed: %+v", got[1])
	}
}

func TestOneEventRegionAndUnmatchedEnd(t *testing.T) {
	g := &grafanatest.Server{}
	hs := grafanatest.Start(t, g, false)
	s := newSink(t, settingsFor(t, hs, nil))
	end := t0.Add(time.Minute)
	mustDeliver(t, s, ann(1, t0, map[string]any{"text": "maintenance", "time_end": end.UnixNano()}))
	if got := g.Annotations(); len(got) != 1 || got[0].Time != ms(t0) || got[0].TimeEnd != ms(end) {
		t.Fatalf("one-event region: %+v", got)
	}
	// An end with no start to close is refused for good (dead-lettered).
	if err := deliver(t, s, region(2, end, "never-started", "end")); !sink.IsPermanent(err) {
		t.Fatalf("end without start: err = %v, want permanent", err)
	}
}

func TestOnlyActions(t *testing.T) {
	all, actions := &grafanatest.Server{}, &grafanatest.Server{}
	s := newSink(t,
		settingsFor(t, grafanatest.Start(t, all, false), nil),
		settingsFor(t, grafanatest.Start(t, actions, false), map[string]any{"only_actions": true}))
	onlyProbes := newSink(t, settingsFor(t, grafanatest.Start(t, &grafanatest.Server{}, false), map[string]any{"only_actions": true}))
	batch := []event.Event{
		ann(1, t0, map[string]any{"text": "kill pod", "activity": "action"}),
		ann(2, t0, map[string]any{"text": "check health", "activity": "probe"}),
		ann(3, t0, map[string]any{"text": "experiment started"}),
		{Seq: 4, Time: t0.UnixNano(), Kind: event.KindLog, Body: []byte(`{"msg":"not an annotation"}`), Format: event.FormatJSON},
	}
	mustDeliver(t, s, batch...)
	mustDeliver(t, onlyProbes, batch[1])
	if n := len(all.Annotations()); n != 3 {
		t.Errorf("server without only_actions holds %d annotations, want 3", n)
	}
	var texts []string
	for _, a := range actions.Annotations() {
		texts = append(texts, a.Text)
	}
	if want := []string{"kill pod", "experiment started"}; !slices.Equal(texts, want) {
		t.Errorf("only_actions server holds %q, want %q", texts, want)
	}
	// Filtered: the log event (sent nowhere); the probe reached a server.
	if s.Filtered() != 1 || onlyProbes.Filtered() != 1 {
		t.Errorf("filtered = %d and %d, want 1 and 1", s.Filtered(), onlyProbes.Filtered())
	}
	if err := deliver(t, s, ann(5, t0, map[string]any{"text": "x", "activity": "rollback"})); !sink.IsPermanent(err) {
		t.Errorf("unknown activity: err = %v, want permanent", err)
	}
}

func TestPartialFailureRetryCreatesNoDuplicates(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	ok, flaky := &grafanatest.Server{}, &grafanatest.Server{}
	flaky.Fail = func(r *http.Request) int {
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return 0
	}
	s := newSink(t, settingsFor(t, grafanatest.Start(t, ok, false), nil), settingsFor(t, grafanatest.Start(t, flaky, false), nil))
	batch := []event.Event{region(1, t0, "r", "start"), ann(2, t0, map[string]any{"text": "a"}), region(3, t0.Add(time.Minute), "r", "end"),
		{Seq: 4, Time: t0.UnixNano(), Kind: event.KindLog}}

	err := deliver(t, s, batch...)
	if err == nil || sink.IsPermanent(err) || sink.RetryAfter(err) != time.Second {
		t.Fatalf("one server down: err = %v (retry after %v), want transient with Retry-After 1s", err, sink.RetryAfter(err))
	}
	if n := len(ok.Annotations()); n != 2 {
		t.Fatalf("healthy server holds %d annotations, want 2", n)
	}
	posts := ok.Requests(http.MethodPost)
	down.Store(false)
	mustDeliver(t, s, batch...)
	if s.Filtered() != 1 {
		t.Errorf("filtered = %d after a failed and a good delivery of a batch with one log event, want 1", s.Filtered())
	}
	if ok.Requests(http.MethodPost) != posts || len(ok.Annotations()) != 2 {
		t.Errorf("retry re-posted to the server that had accepted: %d POSTs before, %d after", posts, ok.Requests(http.MethodPost))
	}
	if got := flaky.Annotations(); len(got) != 2 || got[0].TimeEnd != ms(t0.Add(time.Minute)) {
		t.Errorf("recovered server holds %+v, want the region and the point", got)
	}
}

func TestErrorClasses(t *testing.T) {
	var status atomic.Int32
	g := &grafanatest.Server{Fail: func(*http.Request) int { return int(status.Load()) }}
	s := newSink(t, settingsFor(t, grafanatest.Start(t, g, false), nil))
	e := ann(1, t0, map[string]any{"text": "x"})
	for _, tc := range []struct {
		status    int
		permanent bool
		after     time.Duration
	}{
		{http.StatusBadRequest, true, 0},
		{http.StatusForbidden, false, 0},
		{http.StatusNotFound, true, 0},
		{http.StatusTooManyRequests, false, time.Second},
		{http.StatusInternalServerError, false, 0},
	} {
		status.Store(int32(tc.status))
		err := deliver(t, s, e)
		if err == nil || sink.IsPermanent(err) != tc.permanent || sink.RetryAfter(err) != tc.after {
			t.Errorf("status %d: err = %v (permanent %v, retry after %v), want permanent %v, after %v",
				tc.status, err, sink.IsPermanent(err), sink.RetryAfter(err), tc.permanent, tc.after)
		}
	}
}

func TestBadAnnotationFailsBeforeSending(t *testing.T) {
	g := &grafanatest.Server{}
	s := newSink(t, settingsFor(t, grafanatest.Start(t, g, false), nil))
	for name, body := range map[string]map[string]any{
		"no text":          {"title": "t"},
		"text not string":  {"text": 5},
		"bad phase":        {"text": "x", "region": "r", "phase": "middle"},
		"region no phase":  {"text": "x", "region": "r"},
		"phase no region":  {"text": "x", "phase": "start"},
		"time_end string":  {"text": "x", "time_end": "soon"},
		"time_end earlier": {"text": "x", "time_end": t0.Add(-time.Second).UnixNano()},
		"time_end seconds": {"text": "x", "time_end": t0.Add(time.Hour).Unix()},
	} {
		err := deliver(t, s, ann(1, t0, map[string]any{"text": "fine"}), ann(2, t0, body))
		if !sink.IsPermanent(err) {
			t.Errorf("%s: err = %v, want permanent", name, err)
		}
	}
	if n := g.Requests(http.MethodGet) + g.Requests(http.MethodPost); n != 0 {
		t.Errorf("%d requests sent for batches with a bad annotation, want 0", n)
	}
}

func TestConfigValidation(t *testing.T) {
	for name, settings := range map[string]string{
		"no servers":         `{}`,
		"empty servers":      `{"servers":[]}`,
		"no host":            `{"servers":[{"port":3000}]}`,
		"url as host":        `{"servers":[{"host":"http://g:3000"}]}`,
		"bad port":           `{"servers":[{"host":"g","port":70000}]}`,
		"bad protocol":       `{"servers":[{"host":"g","protocol":"ftp"}]}`,
		"token and basic":    `{"servers":[{"host":"g","api_token":"t","username":"u"}]}`,
		"password alone":     `{"servers":[{"host":"g","password":"p"}]}`,
		"uid and id":         `{"servers":[{"host":"g","dashboard_uid":"u","dashboardId":3}]}`,
		"alias conflict":     `{"servers":[{"host":"g","panel_id":1,"panelId":2}]}`,
		"ca over http":       `{"servers":[{"host":"g","ca_file":"/x"}]}`,
		"missing ca file":    `{"servers":[{"host":"g","protocol":"https","ca_file":"/nonexistent/ca.pem"}]}`,
		"cert without key":   `{"servers":[{"host":"g","protocol":"https","client_cert_file":"/x"}]}`,
		"relative endpoint":  `{"servers":[{"host":"g","annotation_api_endpoint":"api/annotations"}]}`,
		"bad timeout":        `{"servers":[{"host":"g","timeout":"soon"}]}`,
		"unknown key":        `{"servers":[{"host":"g","dashbord_uid":"typo"}]}`,
		"empty tag":          `{"servers":[{"host":"g","tags":[" "]}]}`,
		"not json":           `servers: []`,
		"trailing value":     `{"servers":[{"host":"g"}]} {}`,
		"negative timeout":   `{"servers":[{"host":"g","timeout":-1}]}`,
		"negative dashboard": `{"servers":[{"host":"g","dashboard_id":-1}]}`,
	} {
		if _, err := grafana.New(json.RawMessage(settings), nil); err == nil {
			t.Errorf("%s: %s accepted", name, settings)
		}
	}
	// chaosdb's own spellings are taken as they are.
	if _, err := grafana.New(json.RawMessage(`{"servers":[{"host":"g","port":3000,"dashboardId":4,"panelId":1,"only_actions":true,"tags":["chaos"],"annotation_api_endpoint":"/grafana/api/annotations","timeout":5}]}`), nil); err != nil {
		t.Errorf("chaosdb settings refused: %v", err)
	}
	if !slices.Contains(sink.Kinds(), grafana.Kind) {
		t.Errorf("kind %q not registered: %v", grafana.Kind, sink.Kinds())
	}
}

// chaosdb's settings as they are: legacy dashboardId, panelId, Grafana
// under a sub-path, basic auth; a region is found again within the
// dashboard the sink writes to.
func TestChaosdbSettingsUnderSubPath(t *testing.T) {
	g := &grafanatest.Server{User: "chaos", Password: "toolkit", Endpoint: "/grafana/api/annotations"}
	hs := grafanatest.Start(t, g, false)
	s := newSink(t, settingsFor(t, hs, map[string]any{"dashboardId": 4, "panelId": 1, "username": "chaos", "password": "toolkit",
		"annotation_api_endpoint": "/grafana/api/annotations/", "only_actions": true, "tags": []string{"chaostoolkit"}}))
	end := t0.Add(time.Minute)
	mustDeliver(t, s, region(1, t0, "run-1", "start"), region(2, end, "run-1", "end"))
	got := g.Annotations()
	if len(got) != 1 || got[0].DashboardID != 4 || got[0].PanelID != 1 || got[0].DashboardUID != "" || got[0].TimeEnd != ms(end) ||
		!slices.Contains(got[0].Tags, "chaostoolkit") {
		t.Fatalf("annotations: %+v", got)
	}
}
