package ingest

import "time"

// SetClock makes c read the time from now (tests of its timing).
func (c *Clients) SetClock(now func() time.Time) {
	c.mu.Lock()
	c.now = now
	c.mu.Unlock()
}
