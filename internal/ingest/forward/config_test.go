package forward_test

import (
	"testing"

	"github.com/chronostream/chronostream/internal/ingest"
	"github.com/chronostream/chronostream/internal/ingest/forward"
	"github.com/chronostream/chronostream/internal/store"
	tu "github.com/chronostream/chronostream/internal/testutil"
)

// TestNewRejectsPasswordWithoutUsername: the handshake checks the password
// only with a username, so a password alone would let anyone in.
func TestNewRejectsPasswordWithoutUsername(t *testing.T) {
	log := tu.OpenStore(t, store.Options{})
	if _, err := forward.New(forward.Config{Config: ingest.Config{Log: log}, SharedKey: "k", Password: "pw"}); err == nil {
		t.Fatal("New accepted a password without a username")
	}
	if _, err := forward.New(forward.Config{Config: ingest.Config{Log: log}, SharedKey: "k", Username: "u", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
}
