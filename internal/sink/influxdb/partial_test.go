package influxdb

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/sink"
	"github.com/chronostream/chronostream/internal/testutil"
)

// A partial write (InfluxDB 1.x stores the good points of a request it
// refuses with 400) followed by the runner's split: an event that shared a
// series and a timestamp with the refused one keeps its rank when sent
// again alone, so it is stored once, not twice.
func TestPartialWriteThenSplitStoresOnce(t *testing.T) {
	db := testutil.StartInfluxDB(t)
	db.MustQuery("CREATE DATABASE p", "")
	s, err := NewSink(Config{URL: db.URL() + "/write?db=p"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// v is a float in InfluxDB before the batch arrives.
	prior := event.Event{Seq: 1, Story: "m", Time: 5, Fields: map[string]event.Value{"v": event.Float(0.5)}}
	if err := s.Deliver(ctx, sinkBatch([]event.Event{prior})); err != nil {
		t.Fatal(err)
	}
	bad := event.Event{Seq: 2, Story: "m", Time: 10, Fields: map[string]event.Value{"v": event.String("text")}}
	good := event.Event{Seq: 3, Story: "m", Time: 10, Fields: map[string]event.Value{"v": event.Float(1)}}
	if err := s.Deliver(ctx, sinkBatch([]event.Event{bad, good})); !sink.IsPermanent(err) {
		t.Fatalf("batch with a type conflict: err = %v, want a permanent refusal", err)
	}
	// The runner's split: each half alone.
	if err := s.Deliver(ctx, sinkBatch([]event.Event{bad})); !sink.IsPermanent(err) {
		t.Fatalf("the refused event alone: err = %v, want a permanent refusal", err)
	}
	if err := s.Deliver(ctx, sinkBatch([]event.Event{good})); err != nil {
		t.Fatal(err)
	}
	rs := db.MustQuery(`SELECT count(v) FROM m WHERE time = 10`, "p")
	if len(rs) == 0 || len(rs[0].Series) == 0 {
		t.Fatalf("no point at time 10: %+v", rs)
	}
	if n, _ := rs[0].Series[0].Values[0][1].(json.Number).Int64(); n != 1 {
		t.Errorf("InfluxDB holds %d points for the one accepted event at time 10, want 1", n)
	}
}
