package cli

import (
	"testing"
	"time"
)

// TestBodyReadTimeoutOption: --body-read-timeout sets the limit (from
// flag or environment); 0 disables it.
func TestBodyReadTimeoutOption(t *testing.T) {
	for _, tt := range []struct {
		args, env []string
		want      time.Duration
	}{
		{nil, nil, 60 * time.Second},
		{[]string{"--body-read-timeout", "5s"}, nil, 5 * time.Second},
		{nil, []string{"CHRONOSTREAM_BODY_READ_TIMEOUT=2m"}, 2 * time.Minute},
		{[]string{"--body-read-timeout", "0"}, nil, -1},
	} {
		c, err := parseServe(tt.args, tt.env)
		if err != nil {
			t.Fatalf("%v %v: %v", tt.args, tt.env, err)
		}
		if got := c.server.Limits.BodyReadTimeout; got != tt.want {
			t.Errorf("%v %v: %v, want %v", tt.args, tt.env, got, tt.want)
		}
	}
}
