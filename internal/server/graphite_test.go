package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

// export is Trendlines' JSON export of a metric.
type export struct {
	Rows []struct {
		ID        uint64  `json:"id"`
		N         int     `json:"n"`
		Timestamp string  `json:"timestamp"`
		Value     float64 `json:"value"`
	} `json:"rows"`
	Units *string `json:"units"`
}

func getJSON(t testing.TB, u string, v any) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v: %s", u, err, b)
		}
	}
	return resp.StatusCode
}

// waitRows polls Trendlines' export of metric until it has n rows.
func waitRows(t testing.TB, base, metric string, n int) export {
	t.Helper()
	var ex export
	testutil.Eventually(t, 30*time.Second, func() bool {
		ex = export{}
		getJSON(t, base+"/api/v1/data/"+url.PathEscape(metric), &ex)
		return len(ex.Rows) >= n
	}, fmt.Sprintf("%d rows of %s", n, metric))
	if len(ex.Rows) != n {
		t.Fatalf("%s: %d rows, want %d", metric, len(ex.Rows), n)
	}
	return ex
}

// TestGraphiteIntoTrendlines sends Graphite lines over real TCP and UDP
// sockets to the assembled server and reads them back through Trendlines'
// export and the events API: Graphite and Trendlines share the metrics
// chronicle.
func TestGraphiteIntoTrendlines(t *testing.T) {
	s := servertest.RunServer(t, server.Options{GraphiteAddr: "127.0.0.1:0", AutoCreate: true, MetricsChronicle: "m"})
	base := "http://" + s.Addr()
	tcpAddr, udpAddr := s.GraphiteAddr()
	if tcpAddr == "" || tcpAddr != udpAddr {
		t.Fatalf("graphite addresses %q, %q", tcpAddr, udpAddr)
	}
	c, err := net.Dial("tcp", tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "srv.web01.load 0.5 1700000000\nsrv.web01.load bad 1700000001\nsrv.web01.load 1.5 1700000002\r\n")
	// Rows are in log order, as Trendlines lists them in insertion order:
	// send over UDP once the TCP lines are in.
	waitRows(t, base, "srv.web01.load", 2)
	u, err := net.Dial("udp", udpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	fmt.Fprint(u, "srv.web01.load 2.5 1700000003\nsrv.cpu;host=web01 7 1700000004")

	ex := waitRows(t, base, "srv.web01.load", 3)
	for i, want := range []struct {
		v  float64
		ts string
	}{{0.5, "2023-11-14T22:13:20"}, {1.5, "2023-11-14T22:13:22"}, {2.5, "2023-11-14T22:13:23"}} {
		r := ex.Rows[i]
		if r.Value != want.v || r.Timestamp != want.ts || r.N != i || r.ID == 0 {
			t.Errorf("row %d = %+v, want value %v at %s", i, r, want.v, want.ts)
		}
	}
	if ex.Units != nil {
		t.Errorf("units %v", *ex.Units)
	}

	// The tagged series through the events API: tags, fields and the line.
	var evs []struct {
		Tags   map[string]string `json:"tags"`
		Fields map[string]any    `json:"fields"`
		Body   string            `json:"body"`
		Kind   string            `json:"kind"`
	}
	testutil.Eventually(t, 30*time.Second, func() bool {
		var page struct {
			Events json.RawMessage `json:"events"`
		}
		if getJSON(t, base+"/api/v1/chronicles/m/stories/"+url.PathEscape("srv.cpu")+"/events", &page) != 200 {
			return false
		}
		_ = json.Unmarshal(page.Events, &evs)
		return len(evs) == 1
	}, "the tagged series")
	if e := evs[0]; e.Tags["host"] != "web01" || e.Fields["value"] != 7.0 || e.Body != "srv.cpu;host=web01 7 1700000004" || e.Kind != "metric" {
		t.Errorf("tagged event %+v", e)
	}

	// Trendlines' listing names both metrics.
	var list struct {
		Count   int `json:"count"`
		Results []struct {
			Name string `json:"name"`
		} `json:"results"`
	}
	if code := getJSON(t, base+"/api/v1/metric", &list); code != 200 || list.Count != 2 || list.Results[0].Name != "srv.cpu" || list.Results[1].Name != "srv.web01.load" {
		t.Errorf("listing: %d %+v", code, list)
	}
}
