package event

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestEncodeName(t *testing.T) {
	tests := []struct{ name, enc string }{
		{"cpu", "cpu"},
		{"cpu-usage", "cpu-usage"},
		{"cpu.usage", "cpu_2Eusage"},
		{"a b", "a_20b"},
		{"*", "_2A"},
		{">", "_3E"},
		{"a_b", "a_5Fb"},
		{"a/b", "a_2Fb"},
		{"é", "_C3_A9"},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		got := EncodeName(tt.name)
		if got != tt.enc {
			t.Errorf("EncodeName(%q) = %q, want %q", tt.name, got, tt.enc)
		}
		if strings.ContainsAny(got, ". *>\t") {
			t.Errorf("EncodeName(%q) = %q holds a character NATS subjects cannot carry", tt.name, got)
		}
		back, err := DecodeName(got)
		if err != nil || back != tt.name {
			t.Errorf("DecodeName(%q) = %q, %v; want %q", got, back, err, tt.name)
		}
		if prev, dup := seen[got]; dup {
			t.Errorf("%q and %q encode alike", prev, tt.name)
		}
		seen[got] = tt.name
	}
	for _, bad := range []string{"_", "_4", "_zz", "a.b", "_2a"} {
		if _, err := DecodeName(bad); err == nil {
			t.Errorf("DecodeName(%q) accepted a malformed encoding", bad)
		}
	}
}

func FuzzName(f *testing.F) {
	for _, s := range []string{"", "cpu.usage", "a b*>", "é_", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := EncodeName(s)
		back, err := DecodeName(enc)
		if err != nil || back != s {
			t.Fatalf("round trip of %q: %q, %v", s, back, err)
		}
		for i := 0; i < len(enc); i++ {
			if !plain(enc[i]) && enc[i] != '_' {
				t.Fatalf("EncodeName(%q) = %q has byte %q", s, enc, enc[i])
			}
		}
		// Decoding arbitrary input never panics, and what it accepts re-encodes to itself.
		if dec, err := DecodeName(s); err == nil && EncodeName(dec) != s {
			t.Fatalf("DecodeName(%q) = %q does not re-encode to its input", s, dec)
		}
	})
}

func TestValidateNames(t *testing.T) {
	if ValidateChronicle("") == nil || ValidateStory("") == nil {
		t.Error("empty names accepted")
	}
	if ValidateChronicle(strings.Repeat("a", MaxChronicleName+1)) == nil {
		t.Error("overlong chronicle name accepted")
	}
	if ValidateStory("\xff") == nil {
		t.Error("invalid UTF-8 accepted")
	}
	if err := ValidateStory("cpu.usage / host=a*>"); err != nil {
		t.Errorf("a story name with dots, spaces and wildcards was rejected: %v", err)
	}
	// The longest chronicle name, fully escaped, still fits a JetStream stream name.
	if n := len("CS_" + EncodeName(strings.Repeat("é", MaxChronicleName/2))); n > 255 {
		t.Errorf("escaped chronicle name is %d bytes, over JetStream's 255", n)
	}
}

func TestSeq(t *testing.T) {
	s := MakeSeq(12, 4)
	if s != 1200004 {
		t.Fatalf("MakeSeq(12, 4) = %d", s)
	}
	if b, p := SplitSeq(s); b != 12 || p != 4 {
		t.Fatalf("SplitSeq(%d) = %d, %d", s, b, p)
	}
	if MakeSeq(12, MaxBlockEvents) >= MakeSeq(13, 1) {
		t.Fatal("the last event of a block must come before the first of the next")
	}
}

func TestValueJSON(t *testing.T) {
	fields := map[string]Value{
		"f": Float(0.5), "i": Int(-3), "u": Uint(math.MaxUint64), "s": String(`a"b`),
		"b": Bool(true), "nan": Float(math.NaN()), "inf": Float(math.Inf(1)),
	}
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"b":true,"f":0.5,"i":-3,"inf":"+Inf","nan":"NaN","s":"a\"b","u":18446744073709551615}`
	if string(b) != want {
		t.Errorf("got %s\nwant %s", b, want)
	}
	if _, err := json.Marshal(Value{}); err == nil {
		t.Error("the zero Value marshalled without error")
	}
	for _, k := range []Kind{KindEvent, KindLog, KindMetric, KindTrace, KindAnnotation} {
		var back Kind
		text, _ := k.MarshalText()
		if err := back.UnmarshalText(text); err != nil || back != k {
			t.Errorf("kind %v did not round-trip: %v %v", k, back, err)
		}
	}
	if _, err := ParseKind("metrics"); err == nil {
		t.Error("unknown kind accepted")
	}
}

func TestValidStreamID(t *testing.T) {
	for id, want := range map[string]bool{
		"agent-web-1_a":          true,
		strings.Repeat("a", 128): true,
		"":                       false,
		strings.Repeat("a", 129): false,
		"c=1":                    false,
		"a.b":                    false,
		"a b":                    false,
		"é":                      false,
	} {
		if got := ValidStreamID(id); got != want {
			t.Errorf("ValidStreamID(%.20q) = %v, want %v", id, got, want)
		}
	}
}
