package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
)

type queryConfig struct {
	remote   remoteConfig
	database string
	output   choice
	epoch    string
}

const groupQuery = "Query"

var queryGroups = []string{groupServer, groupQuery, groupOps}

func newQueryFlags(c *queryConfig) (*flag.FlagSet, []option) {
	var opts []option
	fs, add := newClientFlags("query", &c.remote, &opts)
	declare(fs, add, (*stringValue)(&c.database), option{name: "database", short: "d", metavar: "CHRONICLE", group: groupQuery,
		usage: "Database (chronicle) of the statements that name none."})
	c.output = choice{value: "table", choices: []string{"table", "json"}}
	declare(fs, add, &c.output, option{name: "output", short: "o", metavar: "table|json", group: groupQuery,
		usage: "table: each series as aligned columns under its name and tags; json: the server's\nanswer (InfluxDB 1.x's JSON) unchanged."})
	declare(fs, add, (*stringValue)(&c.epoch), option{name: "epoch", metavar: "ns|u|ms|s|m|h", group: groupQuery,
		usage: "Print times as integers in this unit instead of RFC 3339."})
	return fs, opts
}

func runQuery(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	c := &queryConfig{}
	fs, opts := newQueryFlags(c)
	pos, warnings, err := parseCommand("query", fs, opts, &c.remote, args, environ)
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(stdout, `Usage: chronostream query [flags] STATEMENT...

Runs InfluxQL statements (separated by ';') against the server's /query
endpoint, as Grafana and InfluxDB's clients do, and prints the results. The
arguments are joined by spaces. Exit status 1 when a statement fails.

    chronostream query -d telegraf 'SELECT mean(usage_user) FROM cpu WHERE time > now() - 1h GROUP BY time(10m)'
    chronostream query -d agent -o json 'SHOW TAG VALUES FROM cpu_usage WITH KEY = "host"'
`, fs, opts, queryGroups)
		return exitOK
	}
	if err == nil && len(pos) == 0 {
		err = errors.New("which statement? (query STATEMENT)")
	}
	if err != nil {
		return usageError(stderr, "query", err)
	}
	printWarnings(stderr, "query", warnings)
	form := url.Values{"q": {strings.Join(pos, " ")}}
	if c.database != "" {
		form.Set("db", c.database)
	}
	if c.epoch != "" {
		form.Set("epoch", c.epoch)
	}
	var lastErr error
	hc := c.remote.httpClient(nil)
	for _, server := range c.remote.servers {
		body, err := postQuery(ctx, hc, server, c.remote.token, form)
		if err != nil {
			lastErr = err
			continue
		}
		if c.output.value == "json" {
			_, _ = stdout.Write(body)
			return exitOK
		}
		return printResults(body, stdout, stderr)
	}
	fmt.Fprintf(stderr, "chronostream query: %v\n", lastErr)
	return exitFailure
}

func postQuery(ctx context.Context, hc *http.Client, server, token string, form url.Values) ([]byte, error) {
	u := strings.TrimSuffix(server, "/") + "/query"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s: %s", resp.Status, e.Error)
		}
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// printResults prints InfluxDB 1.x results as the influx CLI's column
// format: per series its name, its tags, then aligned columns.
func printResults(body []byte, stdout, stderr io.Writer) int {
	var resp struct {
		Results []struct {
			StatementID int `json:"statement_id"`
			Series      []struct {
				Name    string            `json:"name"`
				Tags    map[string]string `json:"tags"`
				Columns []string          `json:"columns"`
				Values  [][]any           `json:"values"`
			} `json:"series"`
			Error string `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		fmt.Fprintf(stderr, "chronostream query: the server's answer is not InfluxDB JSON: %v\n", err)
		return exitFailure
	}
	code := exitOK
	first := true
	for _, r := range resp.Results {
		if r.Error != "" {
			fmt.Fprintf(stderr, "chronostream query: statement %d: %s\n", r.StatementID, r.Error)
			code = exitFailure
			continue
		}
		for _, s := range r.Series {
			if !first {
				fmt.Fprintln(stdout)
			}
			first = false
			if s.Name != "" {
				fmt.Fprintf(stdout, "name: %s\n", s.Name)
			}
			if len(s.Tags) > 0 {
				keys := make([]string, 0, len(s.Tags))
				for k := range s.Tags {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				pairs := make([]string, len(keys))
				for i, k := range keys {
					pairs[i] = k + "=" + s.Tags[k]
				}
				fmt.Fprintf(stdout, "tags: %s\n", strings.Join(pairs, ", "))
			}
			tw := tabwriter.NewWriter(stdout, 0, 8, 1, ' ', 0)
			fmt.Fprintln(tw, strings.Join(s.Columns, "\t"))
			dashes := make([]string, len(s.Columns))
			for i, c := range s.Columns {
				dashes[i] = strings.Repeat("-", len(c))
			}
			fmt.Fprintln(tw, strings.Join(dashes, "\t"))
			for _, row := range s.Values {
				cells := make([]string, len(row))
				for i, v := range row {
					if v != nil {
						cells[i] = fmt.Sprint(v)
					}
				}
				fmt.Fprintln(tw, strings.Join(cells, "\t"))
			}
			_ = tw.Flush()
		}
	}
	return code
}
