package influxdb_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/sink"
	_ "github.com/chronostream/chronostream/internal/sink/influxdb"
	"github.com/chronostream/chronostream/internal/testutil"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

// influxSink is a sink config writing chronicle c to database db of influx.
func influxSink(name, chronicle, url string, extra map[string]any) sink.Config {
	settings := map[string]any{"url": url}
	for k, v := range extra {
		settings[k] = v
	}
	b, _ := json.Marshal(settings)
	return sink.Config{Name: name, Type: "influxdb", Chronicle: chronicle, BatchAge: sink.Duration(20 * time.Millisecond), Settings: b}
}

func createDB(t *testing.T, db *testutil.InfluxDB, name string) {
	t.Helper()
	db.MustQuery("CREATE DATABASE "+name, "")
}

// count returns count(*) of a field over a measurement.
func count(t *testing.T, db *testutil.InfluxDB, database, q string) int64 {
	t.Helper()
	rs, err := db.Query(q, database)
	if err != nil || len(rs) == 0 || len(rs[0].Series) == 0 || len(rs[0].Series[0].Values) == 0 {
		return 0
	}
	n, _ := rs[0].Series[0].Values[0][1].(json.Number).Int64()
	return n
}

func TestFieldTypesTagsAndTimestamps(t *testing.T) {
	db := testutil.StartInfluxDB(t)
	createDB(t, db, "cs")
	srv := servertest.RunServer(t, server.Options{AutoCreate: true, Sinks: []sink.Config{
		influxSink("influx", "app", db.URL()+"/write?db=cs", nil),
	}})
	base := time.Date(2026, 11, 22, 3, 0, 0, 123456789, time.UTC).UnixNano()
	evs := []event.Event{
		{Time: base, Kind: event.KindMetric, Tags: map[string]string{"host": "a b,c=d"}, Fields: map[string]event.Value{
			"f": event.Float(1.5), "whole": event.Float(2), "i": event.Int(-7), "u": event.Uint(42),
			"s": event.String(`say "hi" \ there`), "b": event.Bool(true)}},
		{Time: base + 1, Kind: event.KindLog, Body: []byte("plain log\nline two")},
		{Time: base + 2, Kind: event.KindEvent},
	}
	if _, err := srv.Store().Append("app", "cpu usage", evs).Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A line-protocol write: stored verbatim, expanded before it is sent.
	resp, err := http.Post("http://"+srv.Addr()+"/write?db=app", "text/plain", strings.NewReader("mem,host=x used=3i,free=1.25 1700000000000000001\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: %s", resp.Status)
	}
	testutil.Eventually(t, 30*time.Second, func() bool {
		return count(t, db, "cs", `SELECT count(*) FROM "cpu usage"`) >= 1 && count(t, db, "cs", `SELECT count(used) FROM mem`) == 1
	}, "events reach InfluxDB")

	rs := db.MustQuery(`SHOW FIELD KEYS FROM "cpu usage"`, "cs")
	types := map[string]string{}
	for _, v := range rs[0].Series[0].Values {
		types[v[0].(string)] = v[1].(string)
	}
	want := map[string]string{"f": "float", "whole": "float", "i": "integer", "u": "integer", "s": "string", "b": "boolean", "message": "string", "count": "integer"}
	for k, ty := range want {
		if types[k] != ty {
			t.Errorf("field %s: type %q, want %q (all: %v)", k, types[k], ty, types)
		}
	}
	rs = db.MustQuery(`SELECT * FROM "cpu usage" ORDER BY time`, "cs")
	s := rs[0].Series[0]
	if len(s.Values) != 3 {
		t.Fatalf("points: %v", s.Values)
	}
	col := map[string]int{}
	for i, c := range s.Columns {
		col[c] = i
	}
	row := s.Values[0]
	if got := row[col["time"]].(json.Number).String(); got != fmt.Sprint(base) {
		t.Errorf("time %s, want %d (ns)", got, base)
	}
	checks := map[string]string{"host": "a b,c=d", "chronicle": "app", "story": "cpu usage", "f": "1.5", "whole": "2", "i": "-7", "u": "42", "s": `say "hi" \ there`, "b": "true"}
	for k, v := range checks {
		if got := fmt.Sprint(row[col[k]]); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if got := fmt.Sprint(s.Values[1][col["message"]]); got != "plain log\nline two" {
		t.Errorf("message = %q", got)
	}
	if got := fmt.Sprint(s.Values[2][col["count"]]); got != "1" {
		t.Errorf("count = %q", got)
	}
	rs = db.MustQuery(`SELECT used, free, host, chronicle FROM mem`, "cs")
	if got := fmt.Sprint(rs[0].Series[0].Values[0]); got != "[1700000000000000001 3 1.25 x app]" {
		t.Errorf("mem row %s", got)
	}
}
