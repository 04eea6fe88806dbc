package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/auth"
)

// TestForwardRateOptions: --forward-rate-events, --forward-rate-bytes and
// --forward-rate-wait reach the server's options from flag, environment
// and config file; by default nothing is limited and a chunk waits 5 s.
func TestForwardRateOptions(t *testing.T) {
	cfg := writeFile(t, "c.yaml", "forward-rate-events: 300\nforward-rate-wait: 2s\n")
	for _, tt := range []struct {
		name      string
		args, env []string
		rate      auth.Limits
		wait      time.Duration
	}{
		{"default", nil, nil, auth.Limits{}, 5 * time.Second},
		{"flags", []string{"--forward-rate-events", "100", "--forward-rate-bytes", "1e6", "--forward-rate-wait", "1s"}, nil,
			auth.Limits{EventsPerSecond: 100, BytesPerSecond: 1e6}, time.Second},
		{"env", nil, []string{"CHRONOSTREAM_FORWARD_RATE_BYTES=5000", "CHRONOSTREAM_FORWARD_RATE_WAIT=30s"},
			auth.Limits{BytesPerSecond: 5000}, 30 * time.Second},
		{"config", []string{"--config", cfg}, nil, auth.Limits{EventsPerSecond: 300}, 2 * time.Second},
	} {
		c, err := parseServe(tt.args, tt.env)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if c.server.ForwardRate != tt.rate || c.server.ForwardRateWait != tt.wait {
			t.Errorf("%s: rate %+v wait %v, want %+v %v", tt.name, c.server.ForwardRate, c.server.ForwardRateWait, tt.rate, tt.wait)
		}
	}
	for _, bad := range [][]string{{"--forward-rate-events", "-1"}, {"--forward-rate-wait", "0"}} {
		if _, err := parseServe(bad, nil); err == nil || !strings.Contains(err.Error(), "forward-rate") {
			t.Errorf("%v: err %v, want one naming the flag", bad, err)
		}
	}
}
