package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/chronostream/chronostream/internal/auth"
)

// token manages the server's scoped tokens through its admin API
// (/api/v1/tokens), with an admin token: the store is the server's log, so
// the command works the same against one node or a cluster.

const groupToken = "Token"

type tokenConfig struct {
	remote     remoteConfig
	name       string
	scopes     string
	chronicles stringList
	limits     auth.Limits
}

var tokenGroups = []string{groupServer, groupToken, groupOps}

func newTokenFlags(c *tokenConfig) (*flag.FlagSet, []option) {
	var opts []option
	fs, add := newClientFlags("token", &c.remote, &opts)
	declare(fs, add, (*stringValue)(&c.name), option{name: "name", metavar: "NAME", group: groupToken,
		usage: "create: the new token's name (letters, digits, '-', '_'; unique)."})
	declare(fs, add, (*stringValue)(&c.scopes), option{name: "scope", metavar: "LIST", group: groupToken,
		usage: "create: what the token may do, comma-separated: write (ingest), read (query, tail, UI),\nadmin (retention, sinks, tokens)."})
	declare(fs, add, &c.chronicles, option{name: "chronicle", short: "r", metavar: "NAME", group: groupToken, list: true,
		usage: "create: limit the token to this chronicle (repeatable). Default: every chronicle."})
	declare(fs, add, (*floatValue)(&c.limits.EventsPerSecond), option{name: "rate-events", metavar: "N", group: groupToken,
		usage: "create: at most N events a second through this token (a second's worth of burst); more\nis refused with 429 and Retry-After. Default: no limit."})
	declare(fs, add, (*floatValue)(&c.limits.BytesPerSecond), option{name: "rate-bytes", metavar: "N", group: groupToken,
		usage: "create: at most N bytes of events a second through this token."})
	declare(fs, add, (*intValue)(&c.limits.MaxTails), option{name: "max-tails", metavar: "N", group: groupToken,
		usage: "create: at most N live tails open at once with this token."})
	return fs, opts
}

func runToken(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	c := &tokenConfig{}
	fs, opts := newTokenFlags(c)
	pos, warnings, err := parseCommand("token", fs, opts, &c.remote, args, environ)
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(stdout, `Usage: chronostream token create --name NAME --scope LIST [-r CHRONICLE]...
       chronostream token list
       chronostream token revoke NAME|ID

Manages the server's scoped tokens through its admin API, authenticated with an
admin token (--token, or CHRONOSTREAM_TOKEN). create prints the new token once:
the server keeps only its SHA-256 hash. list shows names, IDs, scopes,
chronicles, creation and last use, never a secret.

    chronostream token create --name ci --scope write,read -r app
    chronostream token list
    chronostream token revoke ci
`, fs, opts, tokenGroups)
		return exitOK
	}
	if err == nil && len(pos) == 0 {
		err = errors.New("want create, list or revoke")
	}
	if err != nil {
		return usageError(stderr, "token", err)
	}
	printWarnings(stderr, "token", warnings)
	switch pos[0] {
	case "create":
		err = c.create(ctx, stdout)
	case "list":
		err = c.list(ctx, stdout)
	case "revoke":
		if len(pos) != 2 {
			err = errors.New("revoke: want the NAME or ID of one token")
			break
		}
		err = c.revoke(ctx, pos[1], stdout)
	default:
		fmt.Fprintf(stderr, "chronostream token: unknown action %q: want create, list or revoke\n", pos[0])
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "chronostream token: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// call sends one request to the admin API and decodes a 2xx answer into out.
func (c *tokenConfig) call(ctx context.Context, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	base := httpBase(c.remote.servers[0])
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.remote.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.remote.token)
	}
	resp, err := c.remote.httpClient(nil).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", resp.Status, problemDetail(answer))
	}
	return json.Unmarshal(answer, out)
}

func (c *tokenConfig) create(ctx context.Context, stdout io.Writer) error {
	if c.name == "" {
		return errors.New("create: --name is required")
	}
	scopes, err := auth.ParseScopes(c.scopes)
	if err != nil {
		return fmt.Errorf("create: --scope: %w", err)
	}
	var out struct {
		Token  auth.Token `json:"token"`
		Secret string     `json:"secret"`
	}
	if err := c.call(ctx, http.MethodPost, "/api/v1/tokens",
		auth.Request{Name: c.name, Scopes: scopes, Chronicles: c.chronicles, Limits: c.limits}, &out); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	// The secret is the last line, alone, so scripts can take it with tail -1.
	fmt.Fprintf(stdout, "created token %q (id %s, scopes %s, chronicles %s)\n", out.Token.Name, out.Token.ID,
		out.Token.Scopes, chronicleList(out.Token.Chronicles))
	fmt.Fprintln(stdout, "It is shown only now; the server keeps only its hash:")
	fmt.Fprintln(stdout, out.Secret)
	return nil
}

func (c *tokenConfig) list(ctx context.Context, stdout io.Writer) error {
	var out struct {
		Tokens []auth.Token `json:"tokens"`
	}
	if err := c.call(ctx, http.MethodGet, "/api/v1/tokens", nil, &out); err != nil {
		return fmt.Errorf("list: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tSCOPES\tCHRONICLES\tCREATED\tLAST USED")
	for _, t := range out.Tokens {
		last := "never"
		if !t.LastUsed.IsZero() {
			last = t.LastUsed.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.ID, t.Scopes, chronicleList(t.Chronicles),
			t.Created.Format(time.RFC3339), last)
	}
	return tw.Flush()
}

func (c *tokenConfig) revoke(ctx context.Context, nameOrID string, stdout io.Writer) error {
	var t auth.Token
	if err := c.call(ctx, http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(nameOrID), nil, &t); err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	fmt.Fprintf(stdout, "revoked token %q (id %s)\n", t.Name, t.ID)
	return nil
}

func chronicleList(cs []string) string {
	if len(cs) == 0 {
		return "all"
	}
	return strings.Join(cs, ",")
}

// floatValue and intValue declare a token's limits as flags.
type floatValue float64

func (f *floatValue) Set(v string) error {
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("want a number ≥ 0, not %q", v)
	}
	*f = floatValue(n)
	return nil
}
func (f *floatValue) String() string { return strconv.FormatFloat(float64(*f), 'g', -1, 64) }

type intValue int

func (i *intValue) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return fmt.Errorf("want a whole number ≥ 0, not %q", v)
	}
	*i = intValue(n)
	return nil
}
func (i *intValue) String() string { return strconv.Itoa(int(*i)) }
