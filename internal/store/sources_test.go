package store

import (
	"context"
	"sync"
	"testing"
)

// TestMergeSourceConcurrent: writers merging one record at once (the nodes
// of a cluster counting one client's requests) lose no update, on the
// embedded server and through an external nats-server, where a copy may
// lag and the revision check is what keeps the count.
func TestMergeSourceConcurrent(t *testing.T) {
	for name, open := range map[string]func(testing.TB, Options) *Store{"embedded": openStore, "external": openExternal} {
		t.Run(name, func(t *testing.T) {
			s := open(t, Options{})
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 20 {
						err := s.MergeSource(context.Background(), "c=client", func(cur Source, found bool) Source {
							cur.ID, cur.Protocol = "c=client", "test"
							cur.Count++
							return cur
						})
						if err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			src, err := s.GetSource(context.Background(), "c=client")
			if err != nil {
				t.Fatal(err)
			}
			if src.Count != 160 {
				t.Errorf("count %d after 160 concurrent merges", src.Count)
			}
		})
	}
}
