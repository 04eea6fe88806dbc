package servertest

import (
	"net/http"
	"testing"

	"github.com/chronostream/chronostream/internal/server"
)

func TestRunServerIsReady(t *testing.T) {
	s := RunServer(t, server.Options{})
	resp, err := http.Get("http://" + s.Addr() + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/ready: %s", resp.Status)
	}
}
