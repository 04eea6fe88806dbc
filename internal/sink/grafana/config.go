package grafana

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/chronostream/chronostream/internal/sink"
)

// Config is a grafana sink's settings: the Grafana servers every
// annotation goes to (chaosdb's list of "grafana" sections).
type Config struct {
	Servers []Server `json:"servers"`
}

// Server is one Grafana server, with chaosdb's settings (snake_case keys;
// chaosdb's camelCase dashboardId, dashboardUID and panelId are accepted
// too, so its configuration can be copied unchanged).
type Server struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`     // default 3000
	Protocol string `json:"protocol"` // http (default) or https
	// APIToken is sent as "Authorization: Bearer"; Username and Password
	// as basic auth. At most one of the two.
	APIToken string `json:"api_token"`
	Username string `json:"username"`
	Password string `json:"password"`
	// CertFile is chaosdb's name for a PEM bundle of the CAs to trust;
	// CAFile says the same more plainly (set one).
	CertFile       string `json:"cert_file"`
	CAFile         string `json:"ca_file"`
	ClientCertFile string `json:"client_cert_file"`
	ClientKeyFile  string `json:"client_key_file"`
	// DashboardUID ties annotations to a dashboard (DashboardID is the
	// legacy numeric id; set one); without either they are organization
	// annotations, shown on every dashboard that queries them by tag.
	DashboardUID string `json:"dashboard_uid"`
	DashboardID  int64  `json:"dashboard_id"`
	PanelID      int64  `json:"panel_id"`
	// Tags are added to every annotation.
	Tags []string `json:"tags"`
	// OnlyActions sends only annotations whose activity is "action" (and
	// those without an activity, such as an experiment's region).
	OnlyActions bool `json:"only_actions"`
	// AnnotationAPIEndpoint is the path of the annotations API (default
	// /api/annotations; Grafana served under a sub-path has a longer one).
	AnnotationAPIEndpoint string        `json:"annotation_api_endpoint"`
	Timeout               sink.Duration `json:"timeout"`

	// chaosdb's spellings.
	DashboardUIDAlias string `json:"dashboardUID"`
	DashboardIDAlias  int64  `json:"dashboardId"`
	PanelIDAlias      int64  `json:"panelId"`
}

// maxTags bounds the tags an annotation carries (configured plus the
// event's), so that one event cannot make an unbounded request.
const maxTags = 64

// parseConfig decodes and validates settings; every mistake is reported
// here, at start, never at the first delivery.
func parseConfig(settings []byte) (*Config, error) {
	var c Config
	d := json.NewDecoder(bytes.NewReader(settings))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return nil, fmt.Errorf("grafana sink settings: %w", err)
	}
	if d.More() {
		return nil, errors.New("grafana sink settings: more than one JSON value")
	}
	if len(c.Servers) == 0 {
		return nil, errors.New("grafana sink settings: servers: at least one Grafana server is required")
	}
	for i := range c.Servers {
		if err := c.Servers[i].normalize(); err != nil {
			return nil, fmt.Errorf("grafana sink settings: servers[%d]: %w", i, err)
		}
	}
	return &c, nil
}

func (s *Server) normalize() error {
	if err := alias(&s.DashboardUID, s.DashboardUIDAlias, "dashboard_uid", "dashboardUID"); err != nil {
		return err
	}
	if err := alias(&s.DashboardID, s.DashboardIDAlias, "dashboard_id", "dashboardId"); err != nil {
		return err
	}
	if err := alias(&s.PanelID, s.PanelIDAlias, "panel_id", "panelId"); err != nil {
		return err
	}
	if err := alias(&s.CAFile, s.CertFile, "ca_file", "cert_file"); err != nil {
		return err
	}
	if s.Host == "" {
		return errors.New("host is required")
	}
	if strings.ContainsAny(s.Host, "/?#@ ") {
		return fmt.Errorf("host %q: want a host name or address, not a URL", s.Host)
	}
	if s.Port == 0 {
		s.Port = 3000
	}
	if s.Port < 1 || s.Port > 65535 {
		return fmt.Errorf("port %d out of range", s.Port)
	}
	switch s.Protocol {
	case "":
		s.Protocol = "http"
	case "http", "https":
	default:
		return fmt.Errorf("protocol %q: want http or https", s.Protocol)
	}
	if s.Protocol == "http" && (s.CAFile != "" || s.ClientCertFile != "") {
		return errors.New("CA and client certificate files need protocol https")
	}
	if s.APIToken != "" && (s.Username != "" || s.Password != "") {
		return errors.New("set api_token or username/password, not both")
	}
	if s.Password != "" && s.Username == "" {
		return errors.New("password without username")
	}
	if s.DashboardUID != "" && s.DashboardID != 0 {
		return errors.New("set dashboard_uid or the legacy dashboard_id, not both")
	}
	if s.DashboardID < 0 || s.PanelID < 0 {
		return errors.New("dashboard_id and panel_id cannot be negative")
	}
	if s.AnnotationAPIEndpoint == "" {
		s.AnnotationAPIEndpoint = "/api/annotations"
	}
	if !strings.HasPrefix(s.AnnotationAPIEndpoint, "/") || strings.ContainsAny(s.AnnotationAPIEndpoint, "?#") {
		return fmt.Errorf("annotation_api_endpoint %q: want a path such as /api/annotations", s.AnnotationAPIEndpoint)
	}
	s.AnnotationAPIEndpoint = strings.TrimSuffix(s.AnnotationAPIEndpoint, "/")
	if len(s.Tags) > maxTags/2 {
		return fmt.Errorf("tags: at most %d", maxTags/2)
	}
	for _, t := range s.Tags {
		if strings.TrimSpace(t) == "" {
			return errors.New("tags: an empty tag")
		}
	}
	if s.Timeout < 0 {
		return errors.New("timeout cannot be negative")
	}
	return nil
}

// alias merges chaosdb's spelling of a setting into ours.
func alias[T comparable](ours *T, theirs T, oursName, theirsName string) error {
	var zero T
	switch {
	case theirs == zero:
	case *ours == zero:
		*ours = theirs
	case *ours != theirs:
		return fmt.Errorf("%s and %s differ (they are the same setting)", oursName, theirsName)
	}
	return nil
}

// baseURL is the annotations API's URL.
func (s *Server) baseURL() string {
	u := url.URL{Scheme: s.Protocol, Host: net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), Path: s.AnnotationAPIEndpoint}
	return u.String()
}
