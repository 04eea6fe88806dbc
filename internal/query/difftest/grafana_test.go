package difftest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Grafana cannot run here, so this test does what its InfluxDB data source
// does with the provisioned dashboard (documented behaviour of Grafana's
// InfluxQL mode): it takes every template-variable query and every panel
// target, expands the macros and variables as Grafana does, and sends them
// as Grafana does (GET /query, db = the data source's dbName, epoch=ms).

type grafanaDatasource struct {
	Name     string `yaml:"name"`
	UID      string `yaml:"uid"`
	Type     string `yaml:"type"`
	URL      string `yaml:"url"`
	JSONData struct {
		Version  string `yaml:"version"`
		DBName   string `yaml:"dbName"`
		HTTPMode string `yaml:"httpMode"`
	} `yaml:"jsonData"`
}

type grafanaDashboard struct {
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"` // a string, or {"query": "..."} in newer Grafana
			Multi      bool            `json:"multi"`
			IncludeAll bool            `json:"includeAll"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			RefID      string `json:"refId"`
			RawQuery   bool   `json:"rawQuery"`
			Query      string `json:"query"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
		} `json:"targets"`
	} `json:"panels"`
}

func loadGrafana(t *testing.T, root string) (grafanaDatasource, grafanaDashboard) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "deploy", "grafana", "provisioning", "datasources", "chronostream.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var prov struct {
		Datasources []grafanaDatasource `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(b, &prov); err != nil {
		t.Fatalf("datasource provisioning: %v", err)
	}
	if len(prov.Datasources) != 1 {
		t.Fatalf("datasource provisioning: %d data sources, want 1", len(prov.Datasources))
	}
	ds := prov.Datasources[0]
	if ds.Type != "influxdb" || ds.JSONData.Version != "InfluxQL" || ds.URL != "http://127.0.0.1:4318" || ds.JSONData.DBName == "" {
		t.Fatalf("datasource provisioning: want Grafana's influxdb type in InfluxQL mode at http://127.0.0.1:4318 with a dbName, got %+v", ds)
	}
	files, err := filepath.Glob(filepath.Join(root, "deploy", "grafana", "dashboards", "*.json"))
	if err != nil || len(files) != 1 {
		t.Fatalf("want one dashboard in deploy/grafana/dashboards, got %v (%v)", files, err)
	}
	b, err = os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var dash grafanaDashboard
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", files[0], err)
	}
	return ds, dash
}

// grafanaScope is one choice of the dashboard's time range and variables.
type grafanaScope struct {
	timeFilter, interval string
	values               map[string][]string // variable → selected values
}

// dashboardQueries returns every query of the dashboard, expanded for a few
// choices of the variables over the dataset's whole time range.
func dashboardQueries(t *testing.T, root string, p *pair) []entry {
	ds, dash := loadGrafana(t, root)
	multi := map[string]bool{}
	var out []entry
	add := func(name, q string, s grafanaScope) {
		x, err := expandGrafana(q, s, multi)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		out = append(out, entry{file: "dashboard", name: name, q: x, db: ds.JSONData.DBName, epochs: []string{"ms"}, method: ds.JSONData.HTTPMode})
	}
	// Grafana sends an absolute range as $timeFilter in epoch milliseconds
	// (a relative one as now() - 6h, which the corpus covers).
	timeFilter := "time >= " + p.vars["start_ms"] + "ms and time <= " + p.vars["end_ms"] + "ms"
	var scopes []grafanaScope
	for _, hosts := range [][]string{{"web-1"}, {"db-1", "web-1"}} {
		for _, story := range []string{"cpu_usage", "network_usage"} {
			for _, interval := range []string{"10s", "1m"} {
				scopes = append(scopes, grafanaScope{timeFilter: timeFilter, interval: interval,
					values: map[string][]string{"chronicle": {dbAgent}, "story": {story}, "host": hosts}})
			}
		}
	}
	n := 0
	for _, v := range dash.Templating.List {
		multi[v.Name] = v.Multi || v.IncludeAll
		if v.Type != "query" {
			continue
		}
		if v.Datasource.UID != ds.UID {
			t.Errorf("variable %s: data source %q, want the provisioned %q", v.Name, v.Datasource.UID, ds.UID)
		}
		var q string
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var obj struct{ Query string }
			if err := json.Unmarshal(v.Query, &obj); err != nil {
				t.Fatalf("variable %s: query is neither a string nor {query}: %s", v.Name, v.Query)
			}
			q = obj.Query
		}
		add("variable "+v.Name, q, scopes[0])
		n++
	}
	for _, panel := range dash.Panels {
		for _, tg := range panel.Targets {
			if !tg.RawQuery || tg.Query == "" {
				t.Errorf("panel %q target %s: not a raw InfluxQL query (the test compares what is sent)", panel.Title, tg.RefID)
				continue
			}
			if tg.Datasource.UID != ds.UID {
				t.Errorf("panel %q target %s: data source %q, want the provisioned %q", panel.Title, tg.RefID, tg.Datasource.UID, ds.UID)
			}
			seen := map[string]bool{}
			for _, s := range scopes {
				name := "panel " + panel.Title + " " + tg.RefID
				x, _ := expandGrafana(tg.Query, s, multi)
				if seen[x] { // a scope whose variables the query does not use
					continue
				}
				seen[x] = true
				add(name, tg.Query, s)
			}
			n++
		}
	}
	if n < 10 {
		t.Fatalf("the dashboard has %d queries; want its variables and every panel's", n)
	}
	return out
}

var grafanaVar = regexp.MustCompile(`\$\{(\w+)\}|\[\[(\w+)\]\]|\$(\w+)`)

// expandGrafana interpolates as Grafana's InfluxDB data source: $timeFilter
// and $__interval; a single-valued variable as its value; a multi-value or
// include-all variable as its regex-escaped values joined as (a|b). An
// unknown variable is an error.
func expandGrafana(q string, s grafanaScope, multi map[string]bool) (string, error) {
	var err error
	x := grafanaVar.ReplaceAllStringFunc(q, func(m string) string {
		sub := grafanaVar.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		switch name {
		case "timeFilter":
			return s.timeFilter
		case "__interval":
			return s.interval
		}
		vals, ok := s.values[name]
		if !ok {
			err = &unknownVar{name}
			return m
		}
		if !multi[name] {
			return vals[0]
		}
		esc := make([]string, len(vals))
		for i, v := range vals {
			esc[i] = regexEscape(v)
		}
		sort.Strings(esc)
		if len(esc) == 1 {
			return esc[0]
		}
		return "(" + strings.Join(esc, "|") + ")"
	})
	return x, err
}

type unknownVar struct{ name string }

func (u *unknownVar) Error() string { return "unknown Grafana variable $" + u.name }

// regexEscape escapes what Grafana escapes in a multi-value variable's values.
func regexEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\/$^*{}[]'+?.()|`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
