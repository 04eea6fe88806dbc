package cli

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// The agent's options go through serve's table: short flags (ChronoStream
// parity), environment and config file, with the same precedence.
func TestParseAgentOptions(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.json")
	if err := os.WriteFile(cfg, []byte(`{"interval": 2, "chronicle": "from-file", "tag": ["dc=eu"], "exclude_mount": ["/boot*"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &agentConfig{}
	fs, opts := newAgentFlags(c)
	pos, warnings, err := parseCommand("agent", fs, opts, &c.remote,
		[]string{"-c", cfg, "-r", "flag-chronicle", "-d", "120", "--server", "http://a:4318"},
		[]string{"CHRONOSTREAM_SERVER=http://ignored:1", "CHRONOSTREAM_TOKEN=s3cret", "CHRONOSTREAM_DATA=/x"})
	if err != nil || len(pos) > 0 || len(warnings) > 0 {
		t.Fatalf("parse: %v, pos %v, warnings %v", err, pos, warnings)
	}
	if c.chronicle != "flag-chronicle" || time.Duration(c.duration) != 120*time.Second || time.Duration(c.interval) != 2*time.Second {
		t.Errorf("chronicle %q duration %v interval %v", c.chronicle, time.Duration(c.duration), time.Duration(c.interval))
	}
	if !slices.Equal(c.remote.servers, []string{"http://a:4318"}) || c.remote.token != "s3cret" {
		t.Errorf("servers %v token %q: flag must win over env, env must apply", c.remote.servers, c.remote.token)
	}
	if c.tags["dc"] != "eu" || !slices.Equal(c.exclMount, []string{"/boot*"}) {
		t.Errorf("tags %v exclude-mount %v from the config file", c.tags, c.exclMount)
	}

	c = &agentConfig{}
	fs, opts = newAgentFlags(c)
	if _, _, err := parseCommand("agent", fs, opts, &c.remote, []string{"-c", cfg}, []string{"CHRONOSTREAM_INTERVAL=0.25"}); err != nil {
		t.Fatal(err)
	}
	if time.Duration(c.interval) != 250*time.Millisecond || c.chronicle != "from-file" || c.remote.servers[0] != defaultServerURL {
		t.Errorf("interval %v chronicle %q servers %v", time.Duration(c.interval), c.chronicle, c.remote.servers)
	}

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("data: /x\n"), 0o644)
	c = &agentConfig{}
	fs, opts = newAgentFlags(c)
	if _, _, err := parseCommand("agent", fs, opts, &c.remote, []string{"-c", bad}, nil); err == nil {
		t.Error("a serve key in the agent's config file was accepted")
	}
}
