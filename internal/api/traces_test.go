package api

import (
	"fmt"
	"slices"
	"testing"

	"github.com/chronostream/chronostream/event"
)

func TestSpanTree(t *testing.T) {
	sp := func(id, parent string) event.Event {
		return event.Event{Fields: map[string]event.Value{"span_id": event.String(id), "parent_span_id": event.String(parent)}}
	}
	for _, tc := range []struct {
		name  string
		spans []event.Event
		want  []string // span id, depth and marks, in tree order
	}{
		{"nested, children after parents whatever the read order",
			[]event.Event{sp("c", "b"), sp("a", ""), sp("b", "a"), sp("d", "a")},
			[]string{"a0", "b1", "c2", "d1"}},
		{"missing parent is a marked root",
			[]event.Event{sp("a", ""), sp("x", "gone"), sp("y", "x")},
			[]string{"a0", "x0!", "y1"}},
		{"a retried span follows its first copy",
			[]event.Event{sp("a", ""), sp("b", "a"), sp("b", "a")},
			[]string{"a0", "b1", "b1+"}},
		{"a cycle comes last, as roots",
			[]event.Event{sp("a", ""), sp("p", "q"), sp("q", "p"), sp("s", "s")},
			[]string{"a0", "p0!", "q1", "s0!"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, n := range spanTree(tc.spans) {
				s := fmt.Sprintf("%s%d", fieldText(&tc.spans[n.i], "span_id"), n.depth)
				if n.orphan {
					s += "!"
				}
				if n.duplicate {
					s += "+"
				}
				got = append(got, s)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
