package store

import (
	"maps"
	"slices"
)

// sortedKeys makes block encoding deterministic.
func sortedKeys[V any](m map[string]V) []string {
	if len(m) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(m))
}
