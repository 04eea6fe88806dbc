package auth

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzParseScopes: any list either fails or yields scopes whose names
// parse back to the same set; JSON round-trips.
func FuzzParseScopes(f *testing.F) {
	for _, s := range []string{"write", "read,write", " admin , read ", "", ",", "root", "write,,read", "WRITE"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		s, err := ParseScopes(list)
		if err != nil {
			return
		}
		if s == 0 || s&^ScopeAll != 0 {
			t.Fatalf("%q: scopes %b", list, s)
		}
		back, err := ParseScopes(s.String())
		if err != nil || back != s {
			t.Fatalf("%q → %q → %b, %v", list, s, back, err)
		}
		b, _ := json.Marshal(s)
		var j Scope
		if err := json.Unmarshal(b, &j); err != nil || j != s {
			t.Fatalf("JSON %s → %b, %v", b, j, err)
		}
	})
}

// FuzzCredential: whatever the headers, extracting a credential does not
// panic, and a token found is one the headers carry.
func FuzzCredential(f *testing.F) {
	for _, s := range [][2]string{{"Bearer abc", ""}, {"Token abc", ""}, {"Basic dTpw", ""}, {"", "chronostream, bearer.abc"},
		{"bearer", "bearer."}, {"Basic !!!", "x,,bearer.y"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, authz, proto string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", authz)
		r.Header.Set("Sec-WebSocket-Protocol", proto)
		tok := Credential(r)
		if tok != "" && !strings.Contains(authz, tok) && !strings.Contains(proto, tok) && !strings.HasPrefix(strings.ToLower(authz), "basic ") {
			t.Fatalf("credential %q from %q, %q", tok, authz, proto)
		}
		New([]string{"t"}).Lookup(tok)
	})
}
