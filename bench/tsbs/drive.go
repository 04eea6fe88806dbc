package main

import (
	"bytes"
	"fmt"
	"github.com/chronostream/chronostream/bench/internal/cpuonly"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// load is what one run of writers against one server measured.
type load struct {
	requests int64           // answered 2xx
	lines    int64           // in the requests answered 2xx
	elapsed  time.Duration   // from the first request sent to the last answer
	lat      []time.Duration // per answered request, sorted
	errors   int64           // requests not answered 2xx
	errKinds map[string]int64
	firstErr string
	ranOut   bool // the batches ran out before the duration was up
}

// drive posts batches in order from `writers` goroutines, each with its own
// keep-alive connection, until every batch is sent or, if dur > 0, dur has
// passed (requests in flight then are waited for and counted).
func drive(writeURL string, batches []cpuonly.Batch, writers int, dur time.Duration) load {
	tr := &http.Transport{MaxIdleConnsPerHost: writers, MaxConnsPerHost: writers, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Minute}

	var next atomic.Int64
	var mu sync.Mutex
	res := load{errKinds: map[string]int64{}}
	var wg sync.WaitGroup
	begin := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var lines, reqs int64
			for {
				if dur > 0 && time.Since(begin) >= dur {
					break
				}
				i := int(next.Add(1)) - 1
				if i >= len(batches) {
					if dur > 0 {
						mu.Lock()
						res.ranOut = true
						mu.Unlock()
					}
					break
				}
				t0 := time.Now()
				kind, detail := post(client, writeURL, batches[i].Body)
				if kind == "" {
					lat = append(lat, time.Since(t0))
					lines += int64(batches[i].Lines)
					reqs++
					continue
				}
				mu.Lock()
				res.errors++
				res.errKinds[kind]++
				if res.firstErr == "" {
					res.firstErr = kind + ": " + detail
				}
				mu.Unlock()
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			res.lines += lines
			res.requests += reqs
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(begin)
	slices.Sort(res.lat)
	return res
}

// post sends one batch; it returns "" when the server answered 2xx, or what
// went wrong (a short kind to count, and a detail for the first of them).
func post(client *http.Client, u string, body []byte) (kind, detail string) {
	req, err := http.NewRequest("POST", u, bytes.NewReader(body))
	if err != nil {
		return "request", err.Error()
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := client.Do(req)
	if err != nil {
		return "transport", err.Error()
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return "", ""
	}
	return fmt.Sprintf("HTTP %d", resp.StatusCode), strings.TrimSpace(string(b))
}

func (l load) rate() float64 {
	if l.elapsed <= 0 {
		return 0
	}
	return float64(l.lines) / l.elapsed.Seconds()
}

func (l load) pct(p float64) time.Duration {
	if len(l.lat) == 0 {
		return 0
	}
	return l.lat[min(len(l.lat)-1, int(float64(len(l.lat))*p))]
}
