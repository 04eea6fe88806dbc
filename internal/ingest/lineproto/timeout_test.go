package lineproto

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/store"
	tu "github.com/chronostream/chronostream/internal/testutil"
)

// TestBodyStalls: a body that stalls past the body read timeout is cut
// off. The lines before the stall are stored, so the answer is a partial
// write (as for a body over the limit: a 408 would be retried, storing
// them twice); with nothing stored it is 408.
func TestBodyStalls(t *testing.T) {
	f := &fixture{store: tu.OpenStore(t, store.Options{})}
	h := NewHandler(Config{Config: ingest.Config{Log: f.store}})
	srv := httptest.NewServer(ingest.BodyReadTimeout(300 * time.Millisecond)(http.HandlerFunc(h.ServeWriteV1)))
	defer srv.Close()
	post := func(db, sent string) (int, string) {
		pr, pw := io.Pipe()
		defer pw.Close()
		go pw.Write([]byte(sent))
		resp, err := http.Post(srv.URL+"/write?db="+db, "text/plain", pr)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	code, body := post("stall", "cpu v=1 1\ncpu v=2 2\ncpu v=")
	if want := `{"error":"partial write: request body timed out: no data for 300ms dropped=1"}`; code != 400 || body != want {
		t.Errorf("stalled after 2 lines: %d %s, want 400 %s", code, body, want)
	}
	if n := len(f.read(t, "stall", "cpu")); n != 2 {
		t.Errorf("stored %d lines, want 2", n)
	}
	code, body = post("nothing", "cpu v=")
	if code != http.StatusRequestTimeout {
		t.Errorf("stalled with nothing stored: %d %s, want 408", code, body)
	}
}
