package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chronostream/chronostream/internal/testutil"
)

// TestVivo drives the binary as a Vivo deployment does: a record posted
// with curl to the HTTP input is served by the exporter's own listener on
// the first request, with the CORS headers of the configured UI origin,
// and under /vivo/ on the main port.
func TestVivo(t *testing.T) {
	bin := testutil.BuildBinary(t)
	off := testutil.StartBinary(t, bin)
	if a := off.VivoAddr(); a != "" {
		t.Fatalf("test servers must run without the Vivo listener, got %s", a)
	}
	const ui = "http://127.0.0.1:8000"
	p := testutil.StartBinary(t, bin, "--vivo-listen", "127.0.0.1:0", "--vivo-cors-origin", ui)
	if p.VivoAddr() == "" {
		t.Fatalf("no vivo address in %q", p.ReadyLine)
	}
	resp, err := client.Post(p.URL()+"/vivo/input/http.1", "application/json", strings.NewReader(`{"hello": "Calyptia!"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("input: %s", resp.Status)
	}
	for _, u := range []string{"http://" + p.VivoAddr() + "/logs", p.URL() + "/vivo/logs"} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Origin", ui)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.HasSuffix(strings.TrimSpace(string(b)), `,{"_tag":"http.1"}],{"hello": "Calyptia!"}]`) || strings.Count(string(b), "\n") != 1 {
			t.Errorf("GET %s: %s", u, b)
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != ui || resp.Header.Get("Vivo-Stream-Start-ID") == "" ||
			resp.Header.Get("Vivo-Stream-Start-ID") != resp.Header.Get("Vivo-Stream-End-ID") || resp.Header.Get("Vivo-Stream-Next-ID") == "" {
			t.Errorf("GET %s: headers %v", u, resp.Header)
		}
	}
}
