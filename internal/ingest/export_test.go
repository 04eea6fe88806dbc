package ingest

import "time"

// SetClock makes c read the time from now (tests of its timing).
func (c *Clients) SetClock(now func() time.Time) {
	c.mu.Lock()
	c.now = now
	c.mu.Unlock()
}

// Sweep runs one pass of c's sweeper now.
func (c *Clients) Sweep() { c.sweepOnce() }

// Len is the count of clients c holds.
func (c *Clients) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.clients)
}

// Wait waits for the writes under way.
func (c *Clients) Wait() {
	c.mu.Lock()
	var ws []*write
	for _, cl := range c.clients {
		if cl.inflight != nil {
			ws = append(ws, cl.inflight)
		}
	}
	c.mu.Unlock()
	for _, w := range ws {
		<-w.done
	}
}
