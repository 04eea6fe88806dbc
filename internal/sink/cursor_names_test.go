package sink

import (
	"errors"
	"strings"
	"testing"

	"github.com/chronostream/chronostream/internal/store"
)

// TestCursorNamesRefused: a cursor request naming an invalid sink or
// chronicle is refused before the state is read, with an error the API
// answers with 400.
func TestCursorNamesRefused(t *testing.T) {
	m := &Manager{} // no state: a request that got past the check would panic
	if _, err := m.Cursor(t.Context(), "a b"); !errors.Is(err, store.ErrInvalidName) {
		t.Errorf("Cursor(\"a b\"): %v", err)
	}
	for _, tc := range []struct{ name, chronicle string }{
		{"a b", ""},
		{"", "app"},
		{"ok", strings.Repeat("c", 81)},
		{"ok", "\xff"},
	} {
		if _, err := m.SetCursor(t.Context(), tc.name, "now", tc.chronicle); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("SetCursor(%q, chronicle %.10q): %v", tc.name, tc.chronicle, err)
		}
	}
}
