package remote

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/sink"
	"github.com/chronostream/chronostream/internal/store"
)

// feedItems bounds what a remote tail holds for a runner that does not
// keep up; beyond it the feed ends with store.ErrSlowConsumer and the
// runner catches up by reading, as with the server's own tails.
const (
	feedItems     = 64
	feedItemBatch = 1000
)

// feed is an SSE tail of a chronicle.
type feed struct {
	ch     chan store.TailItem
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	err    error
}

// Tail implements sink.Source with the SSE tail, from after the cursor.
func (s *Server) Tail(ctx context.Context, chronicle string, after uint64) (sink.Feed, error) {
	ctx, cancel := context.WithCancel(ctx)
	q := url.Values{"after": {strconv.FormatUint(after, 10)}}
	resp, err := s.do(ctx, http.MethodGet, chroniclePath(chronicle)+"/tail", q, nil, "")
	if err != nil {
		cancel()
		return nil, err
	}
	f := &feed{ch: make(chan store.TailItem, feedItems), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		defer resp.Body.Close()
		f.fail(f.read(bufio.NewReaderSize(resp.Body, 64<<10)))
	}()
	return f, nil
}

func (f *feed) fail(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
}

// read parses Server-Sent Events until the stream ends. Events that
// arrived together are handed over as one item.
func (f *feed) read(r *bufio.Reader) error {
	var (
		typ  string
		data bytes.Buffer
		evs  []event.Event
	)
	send := func(it store.TailItem) error {
		select {
		case f.ch <- it:
			return nil
		default:
			return store.ErrSlowConsumer
		}
	}
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A long line: gather it whole, within MaxLine.
			buf := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) && len(buf) < MaxLine {
				line, err = r.ReadSlice('\n')
				buf = append(buf, line...)
			}
			if err != nil {
				return fmt.Errorf("remote: tail: message over %d bytes: %w", MaxLine, err)
			}
			line = buf
		}
		if err != nil {
			return fmt.Errorf("remote: tail: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) > 0 {
			k, v, _ := bytes.Cut(line, []byte(":"))
			v = bytes.TrimPrefix(v, []byte(" "))
			switch string(k) {
			case "event":
				typ = string(v)
			case "data":
				if data.Len()+len(v) > MaxLine {
					return fmt.Errorf("remote: tail: message over %d bytes", MaxLine)
				}
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.Write(v)
			}
			continue
		}
		switch typ {
		case "event":
			e, err := DecodeEvent(data.Bytes())
			if err != nil {
				return err
			}
			evs = append(evs, e)
		case "gap":
			var g store.Gap
			if err := json.Unmarshal(data.Bytes(), &g); err != nil {
				return fmt.Errorf("remote: tail: gap: %w", err)
			}
			if len(evs) > 0 {
				if err := send(store.TailItem{Events: evs}); err != nil {
					return err
				}
				evs = nil
			}
			if err := send(store.TailItem{Gap: &g}); err != nil {
				return err
			}
		case "error":
			var e struct{ Reason string }
			_ = json.Unmarshal(data.Bytes(), &e)
			if e.Reason == "slow_consumer" {
				return store.ErrSlowConsumer
			}
			return fmt.Errorf("remote: the server ended the tail: %s", e.Reason)
		}
		typ = ""
		data.Reset()
		if len(evs) > 0 && (r.Buffered() == 0 || len(evs) >= feedItemBatch) {
			if err := send(store.TailItem{Events: evs}); err != nil {
				return err
			}
			evs = nil
		}
	}
}

// Next implements sink.Feed.
func (f *feed) Next(ctx context.Context) (store.TailItem, error) {
	select {
	case it := <-f.ch:
		return it, nil
	case <-f.done:
		select {
		case it := <-f.ch:
			return it, nil
		default:
			f.mu.Lock()
			defer f.mu.Unlock()
			return store.TailItem{}, f.err
		}
	case <-ctx.Done():
		return store.TailItem{}, ctx.Err()
	}
}

// Close implements sink.Feed.
func (f *feed) Close() {
	f.cancel()
	<-f.done
}
