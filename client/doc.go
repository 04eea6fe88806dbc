// Package client sends events to a chronostream server, at least once and
// without duplicates in the log.
//
// An event is one JSON value, usually an object. The server takes its time
// from a "time" member (RFC 3339 or Unix seconds/ns) and its kind from
// "kind" (or "msg"/"level" for logs); top-level numbers, strings and
// booleans become fields and the members of a "tags" object become tags.
//
//	c, err := client.New("ws://127.0.0.1:4318", client.Chronicle("app"), client.Story("orders"))
//	...
//	c.SendJSON(ctx, map[string]any{"order": 42, "status": "paid"})
//	...
//	c.Close(ctx) // sends what is buffered, waits for the server's acknowledgement
//
// # Transports
//
// The URL's scheme picks the transport. ws:// and wss:// stream each event
// as a WebSocket message (GET /, the anacrolix/telemetry protocol); the
// server acknowledges with cumulative counts. http:// and https:// post
// NDJSON batches (POST /); a batch is acknowledged by the count in the 200
// reply. Both carry the chronicle and story as query parameters.
//
// # Delivery
//
// Send never waits for the network: it copies the event into a bounded
// buffer (BufferSize) and returns. A goroutine sends the buffer in order. An
// event leaves the buffer only when the server acknowledges it, which the
// server does once it is durable (fsynced). When a connection or request
// fails, the client reconnects with exponential backoff and full jitter
// (Backoff), trying the next server of Failover if any, and sends again
// every event not acknowledged.
//
// Resending is safe: each Client is a stream with an id (random, or set with
// the Stream option) whose events are numbered consecutively, and every
// request or connection names the stream and the number of its first event
// (headers X-Chronostream-Stream and X-Chronostream-Index). The server
// stores the number with each event and drops any it already holds, also
// after a crash, so each event is stored exactly once.
//
// When the buffer is full, OverflowPolicy decides: Block (the default) makes
// Send wait, DropOldest discards the oldest event not yet sent, DropNewest
// discards the new one. Stats counts what was dropped.
//
// Flush waits until everything sent so far is acknowledged; Close stops
// accepting events, flushes, and ends the stream. Events still buffered when
// Close's context ends are lost, and Close says how many.
//
// # Logging
//
// NewHandler is a slog.Handler that ships a program's structured logs:
//
//	slog.SetDefault(slog.New(client.NewHandler(c, nil)))
package client
