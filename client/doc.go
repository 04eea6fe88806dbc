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
// For https:// and wss://, the HTTPClient option's transport carries the
// TLS settings of both transports: a private CA's roots, a client
// certificate for a server that requires one.
//
//	tr := http.DefaultTransport.(*http.Transport).Clone()
//	tr.TLSClientConfig = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}
//	c, err := client.New("wss://hub.example:4318", client.HTTPClient(&http.Client{Transport: tr}))
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
// A stream id must belong to one producer, and its indexes must keep
// increasing across that producer's restarts: the server drops every event
// whose index is not above the stream's last one, so two producers with one
// id, or a restart numbering from 0 again with an old id (Stream(id, 0)),
// have their events acknowledged and silently not stored.
//
// Duplicate removal is exact against a single server, and across the nodes
// of a cluster when the client moves between them (Failover): a node checks
// the log for the stream's position rather than trusting what it remembers.
// One window remains: a request the client gave up on (a timeout) that the
// old node is still appending when the client resends it to another node
// can be stored twice.
//
// Flush waits until everything sent so far is acknowledged; Close stops
// accepting events, flushes, and ends the stream. Events still buffered when
// Close's context ends are lost, and Close says how many.
//
// # Refusals
//
// Over HTTP a batch is at most Batch events and BatchBytes bytes (4 MiB). A
// server answering 413 for a whole request gets it again in halves; an
// event the server refuses on its own (larger than its event limit, say) is
// discarded and counted in Stats.Rejected, and Flush and Close then return
// an error wrapping ErrRejected. Over WebSocket the server closes with 1009
// when an event is too large; the client discards that event and goes on.
// Send refuses events over MaxEventSize (1 MiB) up front with ErrTooLarge.
//
// A refusal no resend can cure — a wrong token (401, 403), a missing
// chronicle (404), an invalid stream id or name (400) — is a configuration
// error: the client stops sending and keeps its events, and Send, Flush and
// Close return a *ServerError. Stats.LastError holds the last failure and
// the OnError option is told of each one. Transient failures (connection
// errors, 5xx) are retried with backoff for ever.
//
// Over WebSocket, a connection with events outstanding that gets no count
// for AckTimeout (30s) is pinged, and replaced unless the pong arrives in
// as long.
//
// # Logging
//
// NewHandler is a slog.Handler that ships a program's structured logs:
//
//	slog.SetDefault(slog.New(client.NewHandler(c, nil)))
//
// With the Block policy, logging waits while the buffer is full (until the
// log call's context ends). Do not give the client itself (the Logger
// option) a logger that sends to the same client: its own records come
// from the goroutine that empties the buffer. The Handler drops those
// records rather than wait, but a handler of your own wrapping it must
// pass the context on for it to tell them.
package client
