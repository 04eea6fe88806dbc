package webhook

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzConfig: any settings are refused or valid; accepted headers never
// replace the sink's own.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		`{"url":"https://h/x","secret":"k","gzip":true,"timeout":"5s","headers":{"Authorization":"Bearer t"}}`,
		`{"url":"http://h:8080/x?y=1","headers":{"X-Chronostream-Delivery":"x"}}`,
		`{"url":"http://h/x","headers":{"A":"b\r\nc"}}`,
		`{"url":"//h/x"}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, settings []byte) {
		c, err := parseConfig(settings)
		if err != nil {
			return
		}
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			t.Errorf("accepted url %q", c.URL)
		}
		for k, v := range c.Headers {
			if !validHeaderName(k) || strings.ContainsAny(v, "\r\n\x00") {
				t.Errorf("accepted header %q: %q", k, v)
			}
			for _, r := range reserved {
				if strings.EqualFold(k, r) {
					t.Errorf("accepted the sink's own header %q", k)
				}
			}
		}
	})
}
