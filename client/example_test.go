package client_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/chronostream/chronostream/client"
)

// fakeServer stands in for a chronostream server in the examples: it
// acknowledges every NDJSON batch posted to it and prints its events.
func fakeServer() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := r.Body.Read(buf)
			body.Write(buf[:n])
			if err != nil {
				break
			}
		}
		lines := strings.Split(strings.TrimSpace(body.String()), "\n")
		for _, l := range lines {
			fmt.Println("server got:", l)
		}
		fmt.Fprintf(w, "%d\n", len(lines))
	}))
}

// Send events to a story and wait until the server holds them.
func Example() {
	srv := fakeServer() // a real server: "http://127.0.0.1:4318" or "ws://127.0.0.1:4318"
	defer srv.Close()

	c, err := client.New(srv.URL, client.Chronicle("shop"), client.Story("orders"))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	_ = c.SendJSON(ctx, map[string]any{"order": 42, "status": "paid", "tags": map[string]string{"region": "eu"}})
	_ = c.Send(ctx, []byte(`{"order":43,"status":"refunded"}`))

	// Close flushes: it returns once the server acknowledged both events.
	if err := c.Close(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("acknowledged:", c.Stats().Acked)
	// Output:
	// server got: {"order":42,"status":"paid","tags":{"region":"eu"}}
	// server got: {"order":43,"status":"refunded"}
	// acknowledged: 2
}

// Ship a program's structured logs with one line of setup.
func ExampleNewHandler() {
	srv := fakeServer()
	defer srv.Close()

	c, err := client.New(srv.URL, client.Chronicle("app"), client.Story("logs"))
	if err != nil {
		log.Fatal(err)
	}
	logger := slog.New(client.NewHandler(c, &slog.HandlerOptions{
		// Drop the time so that the output below is stable.
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	logger.Info("order paid", "order", 42, slog.Group("tags", "region", "eu"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// server got: {"level":"INFO","msg":"order paid","order":42,"tags":{"region":"eu"}}
}

// Choose what happens when the server is slow or away and the buffer fills.
func ExampleOverflowPolicy() {
	c, err := client.New("ws://127.0.0.1:1", // nothing listens: events stay buffered
		client.BufferSize(2), client.OverflowPolicy(client.DropOldest))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for i := range 5 {
		_ = c.SendJSON(ctx, map[string]int{"i": i})
	}
	s := c.Stats()
	fmt.Println("buffered:", s.Buffered, "dropped oldest:", s.DroppedOldest)

	ctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	fmt.Println(c.Close(ctx) != nil) // two events were never acknowledged
	// Output:
	// buffered: 2 dropped oldest: 3
	// true
}

// Flush waits until what was sent is durable, e.g. before a checkpoint.
func ExampleClient_Flush() {
	srv := fakeServer()
	defer srv.Close()
	c, _ := client.New(srv.URL, client.Batch(100, time.Second))
	defer c.Close(context.Background())

	_ = c.Send(context.Background(), []byte(`{"step":"done"}`))
	// Without Flush the batch would wait up to its linger (1s) for more events.
	if err := c.Flush(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("durable")
	// Output:
	// server got: {"step":"done"}
	// durable
}
