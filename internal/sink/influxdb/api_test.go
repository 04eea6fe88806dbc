package influxdb_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/sink"
	"github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

func call(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: %s: %q", method, url, resp.Status, b)
	}
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("%s %s: %s without problem JSON", method, url, resp.Status)
	}
	return resp.StatusCode, m
}

// The sinks API: status, pause/resume, cursors (also a forward's), and
// problem JSON for what it refuses.
func TestSinksAPI(t *testing.T) {
	db := testutil.StartInfluxDB(t)
	createDB(t, db, "cs")
	srv := servertest.RunServer(t, server.Options{AutoCreate: true, Sinks: []sink.Config{
		influxSink("influx", "app", db.URL()+"/write?db=cs", nil),
	}})
	api := "http://" + srv.Addr() + "/api/v1/sinks"
	code, m := call(t, "GET", api, "")
	if code != 200 || len(m["sinks"].([]any)) != 1 {
		t.Fatalf("list: %d %v", code, m)
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		_, m := call(t, "GET", api+"/influx", "")
		return m["state"] == "running" || m["state"] == "waiting"
	}, "the sink runs")
	if code, m = call(t, "POST", api+"/influx/pause", ""); code != 200 || m["paused"] != true {
		t.Errorf("pause: %d %v", code, m)
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		_, m := call(t, "GET", api+"/influx", "")
		return m["state"] == "paused"
	}, "paused")
	if code, m = call(t, "POST", api+"/influx/resume", ""); code != 200 || m["paused"] == true {
		t.Errorf("resume: %d %v", code, m)
	}
	if code, m = call(t, "PUT", api+"/influx/cursor", `{"position":"now"}`); code != 200 || m["chronicle"] != "app" {
		t.Errorf("cursor now: %d %v", code, m)
	}
	// A forward keeps its cursor here under its own name.
	if code, m = call(t, "PUT", api+"/fwd-1/cursor", `{"seq":1200004,"chronicle":"app"}`); code != 200 || m["seq"].(float64) != 1200004 {
		t.Errorf("forward cursor: %d %v", code, m)
	}
	if code, m = call(t, "GET", api+"/fwd-1/cursor", ""); code != 200 || m["seq"].(float64) != 1200004 {
		t.Errorf("forward cursor read back: %d %v", code, m)
	}
	for _, c := range []struct {
		method, path, body string
		code               int
	}{
		{"GET", "/nope", "", 404},
		{"POST", "/nope/pause", "", 404},
		{"GET", "/nope/cursor", "", 404},
		{"GET", "/bad%20name/cursor", "", 400},
		{"PUT", "/influx/cursor", `{"position":"yesterday"}`, 400},
		{"PUT", "/influx/cursor", `{"seq":1,"position":"now"}`, 400},
		{"PUT", "/influx/cursor", `{"bogus":1}`, 400},
		{"PUT", "/influx/cursor", `{}`, 400},
		{"PUT", "/influx/cursor", `{"position":"now","chronicle":"other"}`, 400},
		{"PUT", "/fwd-2/cursor", `{"position":"beginning"}`, 400}, // no chronicle for a new cursor
		{"PUT", "/influx/cursor", strings.Repeat(" ", 8<<10), 400},
	} {
		if code, m := call(t, c.method, api+c.path, c.body); code != c.code {
			t.Errorf("%s %s %.40q: %d %v, want %d", c.method, c.path, c.body, code, m, c.code)
		}
	}
}
