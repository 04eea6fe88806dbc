package canary

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/chronostream/chronostream/client"
)

// payload is one canary event to write.
type payload struct {
	seq  uint64
	sent time.Time
}

// A writer sends canary events through one protocol with that protocol's
// own client. write makes one attempt at a batch (in seq order) and
// returns nil once the server acknowledged all of it; the sender retries a
// failed batch with backoff. An error wrapping errRefused will not be cured
// by a retry.
type writer interface {
	write(ctx context.Context, batch []payload) error
	close(ctx context.Context) error
}

var errRefused = errors.New("refused")

// partialError is a write that failed after the first acked events of its
// batch were acknowledged (Forward acknowledges message by message): only
// the rest is written again.
type partialError struct {
	acked int
	err   error
}

func (e *partialError) Error() string { return e.err.Error() }
func (e *partialError) Unwrap() error { return e.err }

// maybeDelivered reports whether a failed attempt may have stored events:
// only a failure to connect proves it did not, so a retry after any other
// failure may store a copy, which the protocol allows.
func maybeDelivered(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false
	}
	return !strings.Contains(err.Error(), "connection refused")
}

// jsonPayload is the event NDJSON, WebSocket and Forward carry.
func (c *Canary) jsonPayload(proto string, p payload) map[string]any {
	return map[string]any{keyRun: c.runID, keyProto: proto, keySeq: p.seq, keySent: p.sent.UnixNano()}
}

// clientWriter writes through the Go client (client/): NDJSON over HTTP or
// WebSocket. The client resends on its own and the server drops what it
// already holds of the client's stream, so no duplicate is ever allowed.
type clientWriter struct {
	c      *Canary
	proto  string
	cl     *client.Client
	handed uint64 // the last seq given to the client: a retried batch is not sent twice
}

func (c *Canary) newClientWriter(proto string, t target) (writer, error) {
	u := c.cfg.Server
	if proto == "ws" {
		u = "ws" + strings.TrimPrefix(u, "http")
	}
	opts := []client.Option{client.Chronicle(t.chronicle), client.Story(t.story), client.HTTPClient(c.hc),
		client.Stream("canary-"+c.runID+"-"+proto, 0), client.Backoff(100*time.Millisecond, 5*time.Second),
		client.BufferSize(1 << 20), client.Logger(c.log.With("protocol", proto))}
	if c.cfg.Token != "" {
		opts = append(opts, client.Token(c.cfg.Token))
	}
	cl, err := client.New(u, opts...)
	if err != nil {
		return nil, fmt.Errorf("canary %s: %w", proto, err)
	}
	return &clientWriter{c: c, proto: proto, cl: cl}, nil
}

func (w *clientWriter) write(ctx context.Context, batch []payload) error {
	for _, p := range batch {
		if p.seq <= w.handed {
			continue
		}
		if err := w.cl.SendJSON(ctx, w.c.jsonPayload(w.proto, p)); err != nil {
			return fmt.Errorf("%w: %w", errRefused, err)
		}
		w.handed = p.seq
	}
	// Flush retries until acknowledged; it fails only for good (a
	// *client.ServerError, a rejected event) or when ctx ends.
	if err := w.cl.Flush(ctx); err != nil {
		if ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("%w: %w", errRefused, err)
	}
	return nil
}

func (w *clientWriter) close(ctx context.Context) error { return w.cl.Close(ctx) }

// lineWriter posts InfluxDB line protocol to /write: the story is the
// measurement, the run a tag, seq and sent integer fields.
type lineWriter struct {
	c   *Canary
	t   target
	buf bytes.Buffer
}

func (w *lineWriter) write(ctx context.Context, batch []payload) error {
	w.buf.Reset()
	for _, p := range batch {
		fmt.Fprintf(&w.buf, "%s,%s=%s %s=\"lineproto\",%s=%di,%s=%di %d\n",
			escapeMeasurement(w.t.story), keyRun, w.c.runID, keyProto, keySeq, p.seq, keySent, p.sent.UnixNano(), p.sent.UnixNano())
	}
	u := w.c.cfg.Server + "/write?precision=ns&db=" + url.QueryEscape(w.t.chronicle)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(w.buf.Bytes()))
	if err != nil {
		return fmt.Errorf("%w: %w", errRefused, err)
	}
	if w.c.cfg.Token != "" {
		req.Header.Set("Authorization", "Token "+w.c.cfg.Token)
	}
	resp, err := w.c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	switch {
	case resp.StatusCode == http.StatusNoContent:
		return nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("POST /write: %s: %s", resp.Status, bytes.TrimSpace(msg))
	default:
		return fmt.Errorf("%w: POST /write: %s: %s", errRefused, resp.Status, bytes.TrimSpace(msg))
	}
}

func (w *lineWriter) close(context.Context) error { return nil }

func escapeMeasurement(s string) string {
	return strings.NewReplacer(",", `\,`, " ", `\ `).Replace(s)
}

// otlpWriter exports log records with the OpenTelemetry Go SDK's OTLP/HTTP
// log exporter (its retries off, as for Forward). The service.name of the
// resource names the story; the marker travels as record attributes.
type otlpWriter struct {
	c      *Canary
	exp    *otlploghttp.Exporter
	lp     *sdklog.LoggerProvider
	logger otellog.Logger
	col    *collector
}

func (c *Canary) newOTLPWriter(ctx context.Context, t target) (writer, error) {
	opts := []otlploghttp.Option{otlploghttp.WithEndpointURL(c.cfg.Server + "/v1/logs"),
		otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}), otlploghttp.WithTimeout(10 * time.Second)}
	// The exporter refuses a TLS configuration for an http:// endpoint.
	if c.cfg.TLS != nil && strings.HasPrefix(c.cfg.Server, "https://") {
		opts = append(opts, otlploghttp.WithTLSClientConfig(c.cfg.TLS.Clone()))
	}
	if c.cfg.Token != "" {
		opts = append(opts, otlploghttp.WithHeaders(map[string]string{"Authorization": "Bearer " + c.cfg.Token}))
	}
	exp, err := otlploghttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("canary otlp: %w", err)
	}
	col := &collector{}
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(col),
		sdklog.WithResource(resource.NewSchemaless(attribute.String("service.name", t.story))))
	return &otlpWriter{c: c, exp: exp, lp: lp, logger: lp.Logger("chronostream-canary"), col: col}, nil
}

func (w *otlpWriter) write(ctx context.Context, batch []payload) error {
	for _, p := range batch {
		var r otellog.Record
		r.SetTimestamp(p.sent)
		r.SetSeverity(otellog.SeverityInfo)
		r.SetBody(attribute.StringValue("canary"))
		r.AddAttributes(attribute.String(keyRun, w.c.runID), attribute.String(keyProto, "otlp"),
			attribute.Int64(keySeq, int64(p.seq)), attribute.Int64(keySent, p.sent.UnixNano()))
		w.logger.Emit(ctx, r)
	}
	return w.exp.Export(ctx, w.col.take())
}

func (w *otlpWriter) close(ctx context.Context) error {
	return errors.Join(w.lp.Shutdown(ctx), w.exp.Shutdown(ctx))
}

// collector is a log processor that keeps the emitted records, so that the
// writer exports them itself and learns the outcome (the SDK's processors
// report export errors only to the global error handler).
type collector struct {
	mu  sync.Mutex
	out []sdklog.Record
}

func (p *collector) OnEmit(_ context.Context, r *sdklog.Record) error {
	p.mu.Lock()
	p.out = append(p.out, r.Clone())
	p.mu.Unlock()
	return nil
}

func (p *collector) take() []sdklog.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.out
	p.out = nil
	return out
}

func (p *collector) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }
func (p *collector) Shutdown(context.Context) error                         { return nil }
func (p *collector) ForceFlush(context.Context) error                       { return nil }
