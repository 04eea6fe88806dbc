package influxdb_test

import (
	"context"
	"testing"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/ingest/lineproto"
	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/sink"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

// The 2.x API (/api/v2/write, Authorization: Token, unsigned fields as u).
// InfluxDB 1.6 has no 2.x API, so the peer is a second chronostream, whose
// /api/v2/write follows InfluxDB 2's documented API (tested with
// influxdb-client-go in internal/ingest/lineproto) and which refuses
// requests without the token.
func TestInfluxDB2API(t *testing.T) {
	peer := servertest.RunServer(t, server.Options{AutoCreate: true, Tokens: []string{"v2-token"}})
	url := "http://" + peer.Addr() + "/api/v2/write?org=o&bucket=bucket"
	srv := servertest.RunServer(t, server.Options{AutoCreate: true, Sinks: []sink.Config{
		influxSink("v2", "app", url, map[string]any{"token": "v2-token"}),
		influxSink("v2-no-token", "app", url, nil),
	}})
	if _, err := srv.Store().Append("app", "m", []event.Event{{Time: 7, Fields: map[string]event.Value{
		"u": event.Uint(1 << 63), "i": event.Int(-1), "f": event.Float(0.5)}}}).Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []event.Event
	testutil.Eventually(t, 30*time.Second, func() bool {
		got = nil
		_, err := peer.Store().Read(context.Background(), store.Query{Chronicle: "bucket", Story: "m"}, func(e *event.Event) error {
			got = append(got, *e)
			return nil
		}, nil)
		return err == nil && len(got) == 1
	}, "the event reaches the 2.x API")
	e := got[0]
	if err := lineproto.Expand(&e); err != nil {
		t.Fatal(err)
	}
	if e.Time != 7 || e.Fields["u"].Type() != event.TypeUint || e.Fields["u"].UintValue() != 1<<63 ||
		e.Fields["i"].IntValue() != -1 || e.Fields["f"].FloatValue() != 0.5 || e.Tags["chronicle"] != "app" {
		t.Errorf("stored %+v from %q", e, e.Body)
	}
	// Without the token: retried (a configuration error), never dead-lettered.
	testutil.Eventually(t, 30*time.Second, func() bool {
		st, _ := srv.Sinks().Status(context.Background(), "v2-no-token")
		return st.Retries > 0 && st.DeadLettered == 0 && st.Delivered == 0
	}, "401 is retried")
}
