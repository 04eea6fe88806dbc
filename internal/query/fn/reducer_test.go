package fn_test

import (
	"testing"
	"time"

	"github.com/chronostream/chronostream/internal/query/fn"
)

// TestNewReducerErrors: the errors influxd 1.6 answers for the same calls
// (its wording, taken from a live server).
func TestNewReducerErrors(t *testing.T) {
	cases := []struct {
		name string
		args []fn.Value
		want string
	}{
		{"percentile", []fn.Value{"a"}, "expected float argument in percentile()"},
		{"percentile", nil, "invalid number of arguments for percentile, expected 2, got 1"},
		{"percentile", []fn.Value{1.0, 2.0}, "invalid number of arguments for percentile, expected 2, got 3"},
		{"mean", []fn.Value{int64(1)}, "invalid number of arguments for mean, expected 1, got 2"},
		{"median", []fn.Value{int64(2)}, "invalid number of arguments for median, expected 1, got 2"},
		{"foo", nil, "undefined function foo()"},
		{"integral", []fn.Value{time.Second, int64(2)}, "invalid number of arguments for integral, expected at least 1 but no more than 2, got 3"},
		{"integral", []fn.Value{"a"}, "second argument must be a duration"},
		{"integral", []fn.Value{time.Duration(0)}, "duration argument must be positive, got 0s"},
		{"integral", []fn.Value{-time.Second}, "duration argument must be positive, got -1s"},
	}
	for _, c := range cases {
		_, err := fn.NewReducer(c.name, c.args)
		if err == nil || err.Error() != c.want {
			t.Errorf("NewReducer(%s, %v) = %v, want %q", c.name, c.args, err, c.want)
		}
	}
	for _, name := range []string{"COUNT", "Mean", "percentile"} {
		args := []fn.Value(nil)
		if name == "percentile" {
			args = []fn.Value{int64(50)} // an integer literal is a number too
		}
		if _, err := fn.NewReducer(name, args); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	checks := []struct {
		name string
		v    fn.Value
		want string
	}{
		{"mean", "s", "unsupported mean iterator type: *query.stringInterruptIterator"},
		{"sum", true, "unsupported sum iterator type: *query.booleanInterruptIterator"},
		{"min", "s", "unsupported min iterator type: *query.stringInterruptIterator"},
		{"cumulative_sum", "s", "unsupported cumulative sum iterator type: *query.stringInterruptIterator"},
		{"non_negative_derivative", "s", "unsupported derivative iterator type: *query.stringInterruptIterator"},
		{"moving_average", true, "unsupported moving average iterator type: *query.booleanInterruptIterator"},
	}
	for _, c := range checks {
		if err := fn.CheckType(c.name, c.v); err == nil || err.Error() != c.want {
			t.Errorf("CheckType(%s, %#v) = %v, want %q", c.name, c.v, err, c.want)
		}
	}
	for _, ok := range []struct {
		name string
		v    fn.Value
	}{{"count", "s"}, {"first", true}, {"mode", "s"}, {"min", true}, {"max", false}, {"mean", int64(1)}, {"elapsed", "s"}, {"distinct", true}} {
		if err := fn.CheckType(ok.name, ok.v); err != nil {
			t.Errorf("CheckType(%s, %#v): %v", ok.name, ok.v, err)
		}
	}
}

func TestCallFill(t *testing.T) {
	cases := []struct {
		name       string
		mode       fn.FillMode
		number     fn.Value
		wantMode   fn.FillMode
		wantNumber fn.Value
	}{
		{"count", fn.FillNull, nil, fn.FillNumber, int64(0)},
		{"COUNT", fn.FillNumber, 1.5, fn.FillNumber, int64(1)},
		{"count", fn.FillNumber, -2.7, fn.FillNumber, int64(-2)},
		{"count", fn.FillPrevious, nil, fn.FillPrevious, nil},
		{"count", fn.FillNone, nil, fn.FillNone, nil},
		{"mean", fn.FillNull, nil, fn.FillNull, nil},
		{"sum", fn.FillNumber, 1.5, fn.FillNumber, 1.5},
	}
	for _, c := range cases {
		m, n := fn.CallFill(c.name, c.mode, c.number)
		if m != c.wantMode || n != c.wantNumber {
			t.Errorf("CallFill(%s, %v, %v) = %v, %#v; want %v, %#v", c.name, c.mode, c.number, m, n, c.wantMode, c.wantNumber)
		}
	}
}
