package cli

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// byteSize is a flag.Value for sizes: a plain number of bytes or a number
// with a unit, decimal (KB, MB, GB, TB) or binary (KiB, MiB, GiB, TiB), so
// that limits read the same in flags, environment and config files.
type byteSize int64

var byteUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

func parseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return !unicode.IsDigit(r) && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	}
	mult, ok := byteUnits[unit]
	if !ok || num == "" {
		return 0, fmt.Errorf("invalid size %q (want bytes, or a number with KB, MB, GB, KiB, MiB or GiB)", s)
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		if n > math.MaxInt64/mult {
			return 0, fmt.Errorf("size %q is too large", s)
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f*float64(mult) >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return int64(f * float64(mult)), nil
}

func (b *byteSize) Set(s string) error {
	n, err := parseByteSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

func (b *byteSize) String() string {
	if b == nil {
		return "0"
	}
	n := int64(*b)
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// duration is a flag.Value for durations that also takes whole days ("30d"),
// the unit retention is usually thought in, which time.ParseDuration lacks.
type duration time.Duration

func (d *duration) Set(s string) error {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err == nil && n >= 0 && n <= math.MaxInt64/int64(24*time.Hour) {
			*d = duration(time.Duration(n) * 24 * time.Hour)
			return nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q (want e.g. 90m, 12h or 30d)", s)
	}
	if v < 0 {
		return errors.New("a duration cannot be negative")
	}
	*d = duration(v)
	return nil
}

func (d *duration) String() string {
	if d == nil || *d == 0 {
		return "0"
	}
	v := time.Duration(*d)
	if v%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(v/(24*time.Hour)), 10) + "d"
	}
	return v.String()
}

// stringList is a repeatable flag. From the environment it takes a
// comma-separated list; from a config file, a list.
type stringList []string

func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}

func (l *stringList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

// choice is a flag.Value restricted to a few words, so a typo fails at
// startup rather than silently picking a default.
type choice struct {
	value   string
	choices []string
}

func (c *choice) Set(s string) error {
	for _, v := range c.choices {
		if s == v {
			c.value = s
			return nil
		}
	}
	return fmt.Errorf("invalid value %q (want %s)", s, strings.Join(c.choices, " or "))
}

func (c *choice) String() string {
	if c == nil {
		return ""
	}
	return c.value
}

func timeDuration(d duration) time.Duration { return time.Duration(d) }
