package jsonscan

import (
	"encoding/json"
	"testing"
)

func TestValid(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{`{"a":1}`, true}, {" [1] \n", true}, {`"x"`, true}, {`12`, true}, {"", false}, {" ", false},
		{`{"a":1}{}`, false}, {`1 2`, false}, {`{"a":1`, false}, {"hello", false}, {`nul`, false},
	} {
		if got := Valid([]byte(tt.in)); got != tt.want {
			t.Errorf("Valid(%q) = %v, want %v", tt.in, got, tt.want)
		}
		if tt.want != json.Valid([]byte(tt.in)) {
			t.Errorf("test case %q disagrees with encoding/json", tt.in)
		}
	}
}

func TestTrimSpace(t *testing.T) {
	for in, want := range map[string]string{"": "", " \t\r\n": "", "{}\n": "{}", " a b ": "a b"} {
		got := TrimSpace([]byte(in))
		if string(got) != want || cap(got) != len(got) {
			t.Errorf("TrimSpace(%q) = %q (cap %d), want %q with no spare capacity", in, got, cap(got), want)
		}
	}
}
