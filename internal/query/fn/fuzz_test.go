package fn_test

import (
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/query/fn"
)

// value decodes a fuzzed value: kind picks the type.
func value(kind uint8, bits uint64, s string) fn.Value {
	switch kind % 6 {
	case 0:
		return math.Float64frombits(bits)
	case 1:
		return int64(bits)
	case 2:
		return bits
	case 3:
		return s
	case 4:
		return bits&1 == 1
	}
	return nil
}

var ops = []string{"+", "-", "*", "/", "%", "&", "|", "^", "=", "!=", "<>", "<", "<=", ">", ">=", "AND", "OR", "??"}

// FuzzBinaryOp: no operands panic, and the result types follow InfluxDB's
// rules (those the differential test checks on a few values).
func FuzzBinaryOp(f *testing.F) {
	f.Add(uint8(0), uint8(1), uint8(1), uint64(7), uint64(0), "a", "b")
	f.Add(uint8(3), uint8(1), uint8(1), uint64(1<<63), uint64(math.MaxUint64), "", "")
	f.Add(uint8(4), uint8(0), uint8(0), math.Float64bits(math.Inf(1)), math.Float64bits(math.NaN()), "", "")
	f.Add(uint8(5), uint8(4), uint8(5), uint64(1), uint64(0), "", "")
	f.Add(uint8(9), uint8(3), uint8(3), uint64(0), uint64(0), "x", "x")
	f.Fuzz(func(t *testing.T, op, lk, rk uint8, lb, rb uint64, ls, rs string) {
		o := ops[int(op)%len(ops)]
		l, r := value(lk, lb, ls), value(rk, rb, rs)
		for _, m := range []string{"abs", "round", "sqrt", "ln", "pow", "log", "atan2"} {
			args := []fn.Value{l}
			if m == "pow" || m == "log" || m == "atan2" {
				args = append(args, r)
			}
			v := fn.Math(m, args)
			if f, ok := v.(float64); ok && math.IsNaN(f) {
				t.Fatalf("%s(%#v) is NaN, want null", m, l)
			}
		}
		got := fn.BinaryOp(o, l, r)
		switch o {
		case "=", "!=", "<>", "<", "<=", ">", ">=":
			if _, ok := got.(bool); !ok {
				t.Fatalf("%#v %s %#v = %#v, want a bool", l, o, r, got)
			}
			return
		}
		_, li := l.(int64)
		_, ri := r.(int64)
		_, lf := l.(float64)
		_, rf := r.(float64)
		switch {
		case li && ri && o == "/":
			if _, ok := got.(float64); !ok {
				t.Fatalf("%d / %d = %#v, want a float", l, r, got)
			}
		case li && ri && o != "??" && o != "AND" && o != "OR":
			if _, ok := got.(int64); !ok {
				t.Fatalf("%d %s %d = %#v, want an integer", l, o, r, got)
			}
		case (lf || rf) && (li || ri || (lf && rf)) && (o == "+" || o == "-" || o == "*" || o == "/"):
			if _, ok := got.(float64); !ok {
				t.Fatalf("%#v %s %#v = %#v, want a float", l, o, r, got)
			}
		case l == nil && r == nil:
			if got != nil {
				t.Fatalf("nil %s nil = %#v", o, got)
			}
		}
		if (o == "/" || o == "%") && (rb == 0 && (rk%6 == 1)) && li {
			if got != int64(0) && got != float64(0) {
				t.Fatalf("%d %s 0 = %#v, want 0", l, o, got)
			}
		}
	})
}

// points decodes a fuzzed byte string into points in time order, of one
// type per input (as one field's values are).
func points(data []byte, kind uint8) []fn.Point {
	var pts []fn.Point
	var t int64
	for len(data) >= 9 {
		t += int64(data[0] % 4) // 0: a tie
		bits := binary.LittleEndian.Uint64(data[1:9])
		data = data[9:]
		v := value(kind, bits, string(rune('a'+bits%5)))
		if bits%11 == 0 {
			v = nil
		}
		pts = append(pts, fn.Point{Time: t * int64(time.Second), Value: v})
	}
	return pts
}

var reducerCalls = []struct {
	name string
	args []fn.Value
}{
	{"count", nil}, {"sum", nil}, {"mean", nil}, {"min", nil}, {"max", nil}, {"first", nil}, {"last", nil},
	{"spread", nil}, {"stddev", nil}, {"median", nil}, {"mode", nil}, {"integral", nil},
	{"percentile", []fn.Value{50.0}}, {"percentile", []fn.Value{int64(99)}}, {"percentile", []fn.Value{0.0}},
}

// FuzzReducers: no input panics a reducer, a summary or a transformation;
// result types hold (count int64, mean float64, sum of integers int64);
// selectors return one of the points; a summary agrees with the reducers.
func FuzzReducers(f *testing.F) {
	f.Add([]byte("\x01\x00\x00\x00\x00\x00\x00\xf0\x3f\x00\x00\x00\x00\x00\x00\x00\x04\x40"), uint8(0))
	f.Add([]byte("\x01\x05\x00\x00\x00\x00\x00\x00\x00\x01\xfb\xff\xff\xff\xff\xff\xff\xff\x00\x07\x00\x00\x00\x00\x00\x00\x00"), uint8(1))
	f.Add([]byte("\x01\x01\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00"), uint8(4))
	f.Add([]byte("\x03\x61\x00\x00\x00\x00\x00\x00\x00\x00\x62\x00\x00\x00\x00\x00\x00\x00"), uint8(3))
	f.Add([]byte("\x01\x00\x00\x00\x00\x00\x00\xf8\x7f\x01\x00\x00\x00\x00\x00\x00\xf0\x7f"), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, kind uint8) {
		pts := points(data, kind)
		var sum fn.Summary
		for _, p := range pts {
			sum.Add(p)
		}
		for _, c := range reducerCalls {
			r, err := fn.NewReducer(c.name, c.args)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pts {
				r.Add(p)
			}
			got, ok := r.Result()
			if !ok {
				continue
			}
			switch c.name {
			case "count":
				if _, isInt := got.Value.(int64); !isInt {
					t.Fatalf("count %#v", got.Value)
				}
			case "mean", "median", "integral":
				if _, isFloat := got.Value.(float64); !isFloat {
					t.Fatalf("%s %#v", c.name, got.Value)
				}
			case "sum", "spread":
				if kind%6 == 1 {
					if _, isInt := got.Value.(int64); !isInt {
						t.Fatalf("%s of integers %#v", c.name, got.Value)
					}
				}
			}
			if fn.IsSelector(c.name) && !contains(pts, got) {
				t.Fatalf("%s selected %#v, not an input point", c.name, got)
			}
			if fn.Mergeable(c.name) {
				s, sok, err := fn.FromSummary(c.name, &sum)
				if err != nil || sok != ok {
					t.Fatalf("%s: summary ok %v err %v, reducer ok %v", c.name, sok, err, ok)
				}
				if c.name != "mean" && c.name != "stddev" && c.name != "sum" && !sameBits(s, got) {
					t.Fatalf("%s: summary %#v, reducer %#v", c.name, s, got)
				}
			}
		}
		fn.Derivative(pts, time.Second, true)
		fn.Difference(pts, false)
		fn.MovingAverage(pts, 3)
		fn.CumulativeSum(pts)
		fn.Elapsed(pts, time.Millisecond)
		fn.Distinct(pts)
		for _, n := range []int{0, 1, 3} {
			for _, sel := range [][]fn.Point{fn.Top(pts, n), fn.Bottom(pts, n)} {
				if len(sel) > n {
					t.Fatalf("%d points selected, want at most %d", len(sel), n)
				}
				for _, p := range sel {
					if !contains(pts, p) {
						t.Fatalf("selected %#v, not an input point", p)
					}
				}
			}
		}
		fn.Integral(pts, time.Second, func(t int64) (int64, int64) { s := t - t%(3*int64(time.Second)); return s, s + 3*int64(time.Second) })
	})
}

func contains(pts []fn.Point, p fn.Point) bool {
	for _, q := range pts {
		if sameBits(q, p) {
			return true
		}
	}
	return false
}

// sameBits compares points, NaN equal to NaN.
func sameBits(a, b fn.Point) bool {
	if a.Time != b.Time {
		return false
	}
	fa, aok := a.Value.(float64)
	fb, bok := b.Value.(float64)
	if aok && bok {
		return math.Float64bits(fa) == math.Float64bits(fb) || fa == fb
	}
	return a.Value == b.Value
}

// FuzzFill: any windows and values fill without panicking, one point per
// window (fill(none) drops only empty ones), present values untouched.
func FuzzFill(f *testing.F) {
	f.Add([]byte{1, 0, 3, 0, 0, 9}, uint8(4), int64(5))
	f.Add([]byte{0, 0, 0}, uint8(3), int64(0))
	f.Add([]byte{2, 7, 0, 0, 1}, uint8(2), int64(-3))
	f.Fuzz(func(t *testing.T, data []byte, mode uint8, n int64) {
		windows := make([]int64, len(data))
		vals := make([]fn.Point, len(data))
		nonNil := 0
		for i, b := range data {
			windows[i] = int64(i) * 10
			switch b % 4 {
			case 1:
				vals[i].Value = int64(b)
			case 2:
				vals[i].Value = float64(b) / 3
			case 3:
				vals[i].Value = -int64(b)
			}
			if vals[i].Value != nil {
				nonNil++
			}
		}
		m := fn.FillMode(mode % 5)
		out := fn.Fill(windows, vals, m, n)
		want := len(windows)
		if m == fn.FillNone {
			want = nonNil
		}
		if len(out) != want {
			t.Fatalf("%d points, want %d", len(out), want)
		}
		for _, p := range out {
			i := p.Time / 10
			if vals[i].Value != nil && p.Value != vals[i].Value {
				t.Fatalf("window %d: %v replaced by %v", i, vals[i].Value, p.Value)
			}
		}
	})
}
