package query

import "container/heap"

// mergeByTime merges lists, each sorted by time (ascending, or descending
// when !asc), into one stream in exactly the order InfluxDB 1.x's sorted
// merge iterator yields: a container/heap ordered by time alone, built from
// the lists in series-key order. Equal times thus come in the heap's
// order, not in series order, and matching it keeps rows of equal time
// (and the point a tied percentile selects) where InfluxDB puts them.
//
// keys, when not nil, break ties of time first (a raw query selecting tags
// orders equal times by those tags' values, as InfluxDB's iterator does
// when the tags become its dimensions).
func mergeByTime[T any](lists [][]T, keys []string, timeOf func(T) int64, asc bool, emit func(T) error) error {
	h := &mergeHeap[T]{timeOf: timeOf, asc: asc}
	for i, l := range lists {
		if len(l) > 0 {
			it := &mergeItem[T]{list: l}
			if keys != nil {
				it.key = keys[i]
			}
			h.items = append(h.items, it)
		}
	}
	heap.Init(h)
	for h.Len() > 0 {
		it := heap.Pop(h).(*mergeItem[T])
		if err := emit(it.list[it.i]); err != nil {
			return err
		}
		if it.i++; it.i < len(it.list) {
			heap.Push(h, it)
		}
	}
	return nil
}

type mergeItem[T any] struct {
	list []T
	i    int
	key  string
}

type mergeHeap[T any] struct {
	items  []*mergeItem[T]
	timeOf func(T) int64
	asc    bool
}

func (h *mergeHeap[T]) Len() int { return len(h.items) }
func (h *mergeHeap[T]) Less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	x, y := h.timeOf(a.list[a.i]), h.timeOf(b.list[b.i])
	if x == y && a.key != b.key {
		return a.key < b.key == h.asc
	}
	if h.asc {
		return x < y
	}
	return x > y
}
func (h *mergeHeap[T]) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *mergeHeap[T]) Push(x any)    { h.items = append(h.items, x.(*mergeItem[T])) }
func (h *mergeHeap[T]) Pop() any {
	n := len(h.items) - 1
	it := h.items[n]
	h.items = h.items[:n]
	return it
}
