package httpsec

import "testing"

func TestNewOrigins(t *testing.T) {
	for _, bad := range []string{"app.example", "ftp://app.example", "https://app.example/path", "https://", "https://a.example?x=1"} {
		if _, err := New([]string{bad}, nil); err == nil {
			t.Errorf("origin %q accepted", bad)
		}
	}
	p, err := New([]string{"https://App.Example:8443/", "http://localhost:3000"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for origin, want := range map[string]bool{
		"https://app.example:8443": true, "HTTPS://APP.EXAMPLE:8443": true, "http://localhost:3000": true,
		"https://app.example": false, "http://app.example:8443": false, "": false,
	} {
		if got := p.allowed(origin); got != want {
			t.Errorf("allowed(%q) = %v, want %v", origin, got, want)
		}
	}
}
