package fn

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Top returns the n largest values of a window (ties: the earlier point,
// then arrival order), as InfluxDB's top(field, n): each keeps its own
// time, and they are returned in time order (equal times: larger first).
func Top(pts []Point, n int) []Point { return pick(pts, n, -1) }

// Bottom is Top for the n smallest values (equal times: smaller first).
func Bottom(pts []Point, n int) []Point { return pick(pts, n, 1) }

// pick selects by value in dir order (-1: descending).
func pick(pts []Point, n int, dir int) []Point {
	if n < 1 {
		return nil
	}
	var s []Point
	for _, p := range pts {
		if isNumeric(p.Value) {
			s = append(s, p)
		}
	}
	slices.SortStableFunc(s, func(a, b Point) int {
		if c := dir * compare(a.Value, b.Value); c != 0 {
			return c
		}
		return cmp.Compare(a.Time, b.Time)
	})
	s = s[:min(n, len(s))]
	slices.SortStableFunc(s, func(a, b Point) int {
		if c := cmp.Compare(a.Time, b.Time); c != 0 {
			return c
		}
		return dir * compare(a.Value, b.Value)
	})
	return s
}

// LimitArg reads top's and bottom's last argument (the number of points),
// with InfluxDB's errors.
func LimitArg(name string, v Value) (int, error) {
	name = strings.ToLower(name)
	var n int64
	switch x := v.(type) {
	case int64:
		n = x
	case float64:
		return 0, fmt.Errorf("expected integer as last argument in %s(), found %s", name, strconv.FormatFloat(x, 'f', 3, 64))
	default:
		return 0, fmt.Errorf("expected integer as last argument in %s(), found %v", name, v)
	}
	if n < 1 {
		return 0, fmt.Errorf("limit (%d) in %s function must be at least 1", n, name)
	}
	return int(n), nil
}
