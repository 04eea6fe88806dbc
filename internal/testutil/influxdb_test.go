package testutil

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestStartInfluxDB(t *testing.T) {
	db := StartInfluxDB(t)
	db.MustQuery("CREATE DATABASE t", "")
	resp, err := http.Post(db.URL()+"/write?db=t", "text/plain", strings.NewReader("m,h=a v=1 1000\nm,h=a v=2 2000\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: %s", resp.Status)
	}
	// Outage and return: the data survives on the same port.
	db.Stop()
	if _, err := db.Query("SHOW DATABASES", ""); err == nil {
		t.Fatal("query succeeded while influxd was stopped")
	}
	db.Start()
	rs := db.MustQuery("SELECT count(v) FROM m", "t")
	if len(rs) != 1 || len(rs[0].Series) != 1 || rs[0].Series[0].Values[0][1] != json.Number("2") {
		t.Fatalf("count after restart: %+v", rs)
	}
}
