package lineproto

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/chronostream/chronostream/event"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// describe renders what Parse and Expand make of a line, for golden files.
func describe(line []byte) string {
	m, t, err := Parse(line, Nanosecond, 1000)
	if err != nil {
		return "error: " + err.Error()
	}
	e := event.Event{Format: event.FormatLine, Body: line, Time: t}
	if err := Expand(&e); err != nil {
		return "EXPAND FAILED: " + err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "measurement=%q time=%d", m, t)
	for _, k := range slices.Sorted(maps.Keys(e.Tags)) {
		fmt.Fprintf(&b, " tag[%q]=%q", k, e.Tags[k])
	}
	for _, k := range slices.Sorted(maps.Keys(e.Fields)) {
		v := e.Fields[k]
		fmt.Fprintf(&b, " field[%q]=%s:%q", k, v.Type(), v.Text())
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "edge.lp"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	sc := NewScanner(bytes.NewReader(in), 1024)
	for {
		line, n, err := sc.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "%d: %q\n    %s\n", n, line, describe(line))
	}
	golden := filepath.Join("testdata", "edge.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("output differs from %s (run go test -update and review the diff):\n%s", golden, out.String())
	}
}

func TestParse(t *testing.T) {
	const now int64 = 1_700_000_000_123_456_789
	tests := []struct {
		line    string
		prec    Precision
		meas    string
		time    int64
		wantErr string
	}{
		{line: "cpu v=1", prec: Nanosecond, meas: "cpu", time: now},
		{line: "cpu v=1", prec: Microsecond, meas: "cpu", time: now - now%1e3},
		{line: "cpu v=1", prec: Second, meas: "cpu", time: now - now%1e9},
		{line: "cpu v=1 1", prec: Nanosecond, meas: "cpu", time: 1},
		{line: "cpu v=1 1", prec: Microsecond, meas: "cpu", time: 1e3},
		{line: "cpu v=1 1", prec: Millisecond, meas: "cpu", time: 1e6},
		{line: "cpu v=1 1", prec: Second, meas: "cpu", time: 1e9},
		{line: "cpu v=1 1", prec: Minute, meas: "cpu", time: 60e9},
		{line: "cpu v=1 1", prec: Hour, meas: "cpu", time: 3600e9},
		{line: "cpu v=1 -1", prec: Second, meas: "cpu", time: -1e9},
		{line: "cpu v=1 9223372036", prec: Second, meas: "cpu", time: 9223372036e9},
		{line: "cpu v=1 9223372037", prec: Second, wantErr: "time outside range"},
		{line: "cpu v=1 -9223372037", prec: Second, wantErr: "time outside range"},
		{line: "cpu v=1 2562047", prec: Hour, meas: "cpu", time: 2562047 * 3600e9},
		{line: "cpu v=1 2562048", prec: Hour, wantErr: "time outside range"},
		{line: "cpu v=1 9223372036854775806", prec: Nanosecond, meas: "cpu", time: MaxTime},
		{line: "cpu v=1 9223372036854775807", prec: Nanosecond, wantErr: "time outside range"},
		{line: "cpu v=1 -9223372036854775807", prec: Nanosecond, wantErr: "time outside range"},
		{line: "cpu v=1 9223372036854775808", prec: Nanosecond, wantErr: "bad timestamp"},
		{line: `c\ p\,u v=1`, prec: Nanosecond, meas: "c p,u", time: now},
		{line: `c\\pu v=1`, prec: Nanosecond, meas: `c\pu`, time: now},
		{line: `c\pu v=1`, prec: Nanosecond, meas: `c\pu`, time: now},
		{line: "cpu,a= v=1", wantErr: "missing tag value"},
		{line: "cpu v=NaN", wantErr: "invalid number"},
		{line: "cpu v=1e999", wantErr: "out of range"},
		{line: "cpu v=\xff", wantErr: "invalid UTF-8"},
		{line: `cpu s="` + strings.Repeat("x", MaxStringField) + `"`, prec: Nanosecond, meas: "cpu", time: now},
		{line: `cpu s="` + strings.Repeat("x", MaxStringField+1) + `"`, wantErr: "string field value longer"},
	}
	for _, tt := range tests {
		name := tt.line
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			p := tt.prec
			if p == 0 {
				p = Nanosecond
			}
			m, ts, err := Parse([]byte(tt.line), p, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(m) != tt.meas || ts != tt.time {
				t.Errorf("got %q at %d, want %q at %d", m, ts, tt.meas, tt.time)
			}
		})
	}
}

func TestParsePrecision(t *testing.T) {
	for _, tt := range []struct {
		s    string
		v1   bool
		want Precision
		ok   bool
	}{
		{"", false, Nanosecond, true}, {"ns", false, Nanosecond, true}, {"us", false, Microsecond, true},
		{"ms", false, Millisecond, true}, {"s", false, Second, true}, {"m", false, 0, false}, {"h", false, 0, false},
		{"n", true, Nanosecond, true}, {"u", true, Microsecond, true}, {"ms", true, Millisecond, true},
		{"s", true, Second, true}, {"m", true, Minute, true}, {"h", true, Hour, true}, {"d", true, 0, false},
		{"rfc3339", true, 0, false},
	} {
		p, err := ParsePrecision(tt.s, tt.v1)
		if (err == nil) != tt.ok || p != tt.want {
			t.Errorf("ParsePrecision(%q, %v) = %v, %v", tt.s, tt.v1, p, err)
		}
	}
}

func TestExpandTypes(t *testing.T) {
	line := `weather,location=us\ midwest,k\=x=a\,b temp=82,count=3i,big=18446744073709551615u,ok=T,note="say \"hi\" \\o/",temp=83 1465839830100400200`
	if _, _, err := Parse([]byte(line), Nanosecond, 0); err != nil {
		t.Fatal(err)
	}
	e := event.Event{Format: event.FormatLine, Body: []byte(line), Time: 42}
	if err := Expand(&e); err != nil {
		t.Fatal(err)
	}
	wantTags := map[string]string{"location": "us midwest", "k=x": "a,b"}
	if !maps.Equal(e.Tags, wantTags) {
		t.Errorf("tags = %v, want %v", e.Tags, wantTags)
	}
	wantFields := map[string]event.Value{
		"temp": event.Float(83), "count": event.Int(3), "big": event.Uint(math.MaxUint64),
		"ok": event.Bool(true), "note": event.String(`say "hi" \o/`),
	}
	if !maps.Equal(e.Fields, wantFields) {
		t.Errorf("fields = %v, want %v", e.Fields, wantFields)
	}
	if e.Time != 42 {
		t.Errorf("Expand changed the time to %d", e.Time)
	}
	// Other formats are left alone.
	j := event.Event{Format: event.FormatJSON, Body: []byte(`{}`)}
	if err := Expand(&j); err != nil || j.Tags != nil || j.Fields != nil {
		t.Errorf("Expand of JSON: %v %v %v", err, j.Tags, j.Fields)
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	line := []byte(tsbsLine(0, 0))
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := Parse(line, Nanosecond, 0); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Parse allocates %v times per line", allocs)
	}
	bad := []byte("cpu,host=a value=abc")
	allocs = testing.AllocsPerRun(100, func() { _, _, _ = Parse(bad, Nanosecond, 0) })
	if allocs != 0 {
		t.Errorf("refusing a line allocates %v times", allocs)
	}
}

func TestScanner(t *testing.T) {
	body := "a v=1\n\n# c\r\n  b v=2\r\nlong " + strings.Repeat("x", 100) + "\nc v=3\r\n" + strings.Repeat("y", 50) + "\n   \nd v=4"
	for _, r := range map[string]func() io.Reader{
		"whole":    func() io.Reader { return strings.NewReader(body) },
		"one byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(body)) },
		"half":     func() io.Reader { return iotest.HalfReader(strings.NewReader(body)) },
	} {
		sc := NewScanner(r(), 60)
		var got []string
		for {
			line, n, err := sc.Next()
			if err == io.EOF {
				break
			}
			var le *LineError
			if errors.As(err, &le) {
				if !errors.Is(err, ErrLineTooLong) || !strings.HasPrefix(le.Text, "long xxx") {
					t.Errorf("error %v", err)
				}
				got = append(got, fmt.Sprintf("%d too long", n))
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%d %s", n, line))
		}
		want := []string{"1 a v=1", "4 b v=2", "5 too long", "6 c v=3", "7 " + strings.Repeat("y", 50), "9 d v=4"}
		if !slices.Equal(got, want) {
			t.Errorf("lines = %q\nwant %q", got, want)
		}
	}
}

func TestScannerReadErrorDropsCutLine(t *testing.T) {
	boom := errors.New("boom")
	sc := NewScanner(io.MultiReader(strings.NewReader("a v=1\nb v=12"), iotest.ErrReader(boom)), 100)
	if line, _, err := sc.Next(); err != nil || string(line) != "a v=1" {
		t.Fatalf("first line %q, %v", line, err)
	}
	if line, _, err := sc.Next(); !errors.Is(err, boom) {
		t.Fatalf("got %q, %v; want the read error and not the cut line", line, err)
	}
}

func TestAppendLineRoundTrip(t *testing.T) {
	tags := map[string]string{"a b": "c,d", "e=f": `g\`, "h": "i"}
	fields := map[string]event.Value{
		"f": event.Float(-1.25e-7), "i": event.Int(math.MinInt64), "u": event.Uint(math.MaxUint64),
		"s": event.String(`a "quoted" \ string`), "b": event.Bool(false), "x y": event.Float(3),
	}
	line := AppendLine(nil, `m e,a\s`, tags, fields, 123)
	m, ts, err := Parse(line, Nanosecond, 0)
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	e := event.Event{Format: event.FormatLine, Body: line}
	if err := Expand(&e); err != nil {
		t.Fatal(err)
	}
	if string(m) != `m e,a\s` || ts != 123 || !maps.Equal(e.Tags, tags) || !maps.Equal(e.Fields, fields) {
		t.Errorf("round trip of %s: %q %d %v %v", line, m, ts, e.Tags, e.Fields)
	}
}

// tsbsLine is a TSBS cpu-only row: the cpu measurement, 10 tags, 10 fields.
func tsbsLine(host, i int) string {
	return "cpu,hostname=host_" + strconv.Itoa(host) +
		",region=eu-west-1,datacenter=eu-west-1b,rack=87,os=Ubuntu16.04LTS,arch=x64,team=NYC,service=18,service_version=1,service_environment=production" +
		" usage_user=58.1317132304976170,usage_system=2.6224297271376256,usage_idle=24.9969495069947405,usage_nice=61.1253946280496300," +
		"usage_iowait=22.9680706381664665,usage_irq=63.5163548624514774,usage_softirq=6.8270255043656020,usage_steal=44.8746659006226807," +
		"usage_guest=80.5932383549778862,usage_guest_nice=38.2158256982823896 " + strconv.FormatInt(1451606400000000000+int64(i)*10e9, 10)
}
