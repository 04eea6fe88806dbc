package cli

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

func TestQueryCommand(t *testing.T) {
	s := servertest.RunServer(t, server.Options{AutoCreate: true, Tokens: []string{"tok"}})
	base := "http://" + s.Addr()
	req, _ := http.NewRequest("POST", base+"/write?db=telegraf", strings.NewReader("cpu,host=a u=1 60000000000\ncpu,host=b u=3 60000000000"))
	req.Header.Set("Authorization", "Token tok")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: %v %v", resp, err)
	}
	env := []string{"CHRONOSTREAM_TOKEN=tok"}
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"query", "--server", base, "-d", "telegraf",
		"SELECT", "max(u)", "FROM", "cpu", "GROUP", "BY", "host"}, env, &out, &errOut)
	want := "name: cpu\ntags: host=a\ntime                 max\n----                 ---\n1970-01-01T00:01:00Z 1\n\n" +
		"name: cpu\ntags: host=b\ntime                 max\n----                 ---\n1970-01-01T00:01:00Z 3\n"
	if code != exitOK || out.String() != want {
		t.Errorf("exit %d, stderr %q\n got:\n%s\nwant:\n%s", code, errOut.String(), out.String(), want)
	}
	out.Reset()
	errOut.Reset()
	code = run(context.Background(), []string{"query", "--server", base, "-d", "telegraf", "SELECT nope(u) FROM cpu"}, env, &out, &errOut)
	if code != exitFailure || !strings.Contains(errOut.String(), "statement 0: undefined function nope()") {
		t.Errorf("a failing statement: exit %d, stderr %q", code, errOut.String())
	}
	errOut.Reset()
	code = run(context.Background(), []string{"query", "--server", base, "SHOW DATABASES"}, nil, &out, &errOut)
	if code != exitFailure || !strings.Contains(errOut.String(), "401") {
		t.Errorf("without a token: exit %d, stderr %q", code, errOut.String())
	}
}
