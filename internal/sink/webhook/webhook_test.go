package webhook_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/jsonev"
	"github.com/chronostream/chronostream/internal/sink"
	"github.com/chronostream/chronostream/internal/sink/webhook"
)

// receiver is a webhook endpoint written to the documented contract: it
// checks the content type, verifies the signature the way docs/webhook.md
// tells receivers to, and keeps each delivery once by its id.
type receiver struct {
	secret string
	fail   atomic.Int32 // status to answer instead (0: accept)

	mu         sync.Mutex
	attempts   []string          // delivery ids, every attempt
	deliveries map[string][]line // accepted, by delivery id
	headers    http.Header       // of the last request
}

// line is one event as the read API's NDJSON encodes it.
type line struct {
	Seq    uint64            `json:"seq"`
	Time   time.Time         `json:"time"`
	Story  string            `json:"story"`
	Kind   string            `json:"kind"`
	Tags   map[string]string `json:"tags"`
	Fields map[string]any    `json:"fields"`
	Body   json.RawMessage   `json:"body"`
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	id := r.Header.Get(webhook.HeaderDelivery)
	rc.mu.Lock()
	rc.attempts = append(rc.attempts, id)
	rc.headers = r.Header.Clone()
	rc.mu.Unlock()
	if code := rc.fail.Load(); code != 0 {
		w.Header().Set("Retry-After", "2")
		http.Error(w, "not now", int(code))
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-ndjson" {
		http.Error(w, "want POST application/x-ndjson", http.StatusUnsupportedMediaType)
		return
	}
	// Verify over the bytes received, before decompressing anything.
	mac := hmac.New(sha256.New, []byte(rc.secret))
	mac.Write(raw)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(r.Header.Get(webhook.HeaderSignature)), []byte(want)) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	body := raw
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err == nil {
			body, err = io.ReadAll(io.LimitReader(zr, 8<<20))
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	var lines []line
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			http.Error(w, "bad line: "+err.Error(), http.StatusBadRequest)
			return
		}
		lines = append(lines, l)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.deliveries == nil {
		rc.deliveries = map[string][]line{}
	}
	if _, dup := rc.deliveries[id]; !dup {
		rc.deliveries[id] = lines
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) snapshot() (attempts []string, deliveries map[string][]line, h http.Header) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.attempts), rc.deliveries, rc.headers
}

func newSink(t testing.TB, settings map[string]any) *webhook.Sink {
	t.Helper()
	raw, _ := json.Marshal(settings)
	s, err := webhook.New(raw, nil)
	if err != nil {
		t.Fatalf("webhook.New(%s): %v", raw, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var t0 = time.Date(2026, 11, 22, 3, 30, 0, 123456789, time.UTC)

// batch is n events as the runner passes them: bodies expanded.
func batch(first uint64, n int) sink.Batch {
	b := sink.Batch{Chronicle: "app/prod"}
	var p fastjson.Parser
	for i := range n {
		e := event.Event{
			Seq: first + uint64(i), Time: t0.Add(time.Duration(i) * time.Millisecond).UnixNano(), Story: "orders", Kind: event.KindLog,
			Body: []byte(`{"msg":"order placed","amount":12.5,"n":3,"tags":{"region":"eu"}}`), Format: event.FormatJSON,
		}
		jsonev.Expand(&p, &e)
		b.Events = append(b.Events, e)
	}
	return b
}

func deliver(t *testing.T, s sink.Sink, b sink.Batch) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Deliver(ctx, b)
}

func TestSignedNDJSONInTheAPIShape(t *testing.T) {
	for _, gz := range []bool{false, true} {
		rc := &receiver{secret: "k3y"}
		hs := httptest.NewServer(rc)
		t.Cleanup(hs.Close)
		s := newSink(t, map[string]any{"url": hs.URL + "/hook?x=1", "secret": "k3y", "gzip": gz,
			"headers": map[string]string{"Authorization": "Bearer abc"}})
		b := batch(100, 3)
		if err := deliver(t, s, b); err != nil {
			t.Fatalf("gzip=%v: Deliver: %v", gz, err)
		}
		_, got, h := rc.snapshot()
		lines := got["app%2Fprod/100-102"]
		if len(lines) != 3 {
			t.Fatalf("gzip=%v: deliveries %v, want 3 lines under app%%2Fprod/100-102", gz, got)
		}
		l := lines[1]
		if l.Seq != 101 || !l.Time.Equal(t0.Add(time.Millisecond)) || l.Story != "orders" || l.Kind != "log" ||
			l.Tags["region"] != "eu" || l.Fields["amount"] != 12.5 || l.Fields["msg"] != "order placed" || !json.Valid(l.Body) {
			t.Errorf("gzip=%v: line %+v", gz, l)
		}
		if h.Get("Authorization") != "Bearer abc" || h.Get(webhook.HeaderChronicle) != "app%2Fprod" || h.Get(webhook.HeaderEvents) != "3" {
			t.Errorf("gzip=%v: headers %v", gz, h)
		}
	}
}

func TestWrongSecretIsRefused(t *testing.T) {
	rc := &receiver{secret: "right"}
	hs := httptest.NewServer(rc)
	t.Cleanup(hs.Close)
	s := newSink(t, map[string]any{"url": hs.URL, "secret": "wrong"})
	// No event is at fault: retried until the secret is fixed, never
	// dead-lettered.
	if err := deliver(t, s, batch(1, 2)); err == nil || sink.IsPermanent(err) {
		t.Fatalf("err = %v, want the receiver's 401 as a transient error", err)
	}
}

func TestDeliveryIDIsStableAcrossRetries(t *testing.T) {
	rc := &receiver{secret: "k"}
	hs := httptest.NewServer(rc)
	t.Cleanup(hs.Close)
	s := newSink(t, map[string]any{"url": hs.URL, "secret": "k", "timeout": "5s"})
	rc.fail.Store(http.StatusServiceUnavailable)
	err := deliver(t, s, batch(7, 4))
	if err == nil || sink.IsPermanent(err) || sink.RetryAfter(err) != 2*time.Second {
		t.Fatalf("503: err = %v (after %v), want transient, Retry-After 2s", err, sink.RetryAfter(err))
	}
	rc.fail.Store(http.StatusTooManyRequests)
	if err := deliver(t, s, batch(7, 4)); sink.IsPermanent(err) || sink.RetryAfter(err) != 2*time.Second {
		t.Fatalf("429: err = %v, want transient, Retry-After 2s", err)
	}
	rc.fail.Store(0)
	for range 2 { // accepted, then redelivered (a crash before the cursor was saved)
		if err := deliver(t, s, batch(7, 4)); err != nil {
			t.Fatal(err)
		}
	}
	if err := deliver(t, s, batch(11, 1)); err != nil {
		t.Fatal(err)
	}
	attempts, got, _ := rc.snapshot()
	if want := []string{"app%2Fprod/7-10", "app%2Fprod/7-10", "app%2Fprod/7-10", "app%2Fprod/7-10", "app%2Fprod/11-11"}; !slices.Equal(attempts, want) {
		t.Errorf("delivery ids %q, want %q", attempts, want)
	}
	if len(got) != 2 || len(got["app%2Fprod/7-10"]) != 4 {
		t.Errorf("receiver kept %v, want two deliveries", got)
	}
	rc.fail.Store(http.StatusUnprocessableEntity)
	if err := deliver(t, s, batch(12, 1)); !sink.IsPermanent(err) {
		t.Errorf("422: err = %v, want permanent", err)
	}
}

func TestHTTPSWithCAFile(t *testing.T) {
	rc := &receiver{secret: "k"}
	hs := httptest.NewTLSServer(rc)
	t.Cleanup(hs.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := deliver(t, newSink(t, map[string]any{"url": hs.URL, "secret": "k"}), batch(1, 1)); err == nil || sink.IsPermanent(err) {
		t.Fatalf("untrusted certificate: err = %v, want transient", err)
	}
	if err := deliver(t, newSink(t, map[string]any{"url": hs.URL, "secret": "k", "ca_file": ca}), batch(1, 1)); err != nil {
		t.Fatalf("with ca_file: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	for name, settings := range map[string]string{
		"no url":          `{}`,
		"relative url":    `{"url":"/hook"}`,
		"ftp url":         `{"url":"ftp://h/x"}`,
		"ca over http":    `{"url":"http://h/x","ca_file":"/x"}`,
		"missing ca":      `{"url":"https://h/x","ca_file":"/nonexistent.pem"}`,
		"reserved header": `{"url":"http://h/x","headers":{"content-type":"text/plain"}}`,
		"own header":      `{"url":"http://h/x","headers":{"X-Chronostream-Delivery":"x"}}`,
		"bad header":      `{"url":"http://h/x","headers":{"Bad Name":"x"}}`,
		"header newline":  `{"url":"http://h/x","headers":{"X-A":"a\r\nX-B: b"}}`,
		"bad timeout":     `{"url":"http://h/x","timeout":"never"}`,
		"unknown key":     `{"url":"http://h/x","secrett":"typo"}`,
		"not an object":   `["http://h/x"]`,
	} {
		if _, err := webhook.New(json.RawMessage(settings), nil); err == nil {
			t.Errorf("%s: %s accepted", name, settings)
		}
	}
	if !slices.Contains(sink.Kinds(), webhook.Kind) {
		t.Errorf("kind %q not registered: %v", webhook.Kind, sink.Kinds())
	}
}

// FuzzBody: whatever an event's body holds, the delivery is NDJSON with
// one valid JSON object per event.
func FuzzBody(f *testing.F) {
	for _, s := range []string{`{"msg":"x","tags":{"a":"b"}}`, "{\"a\":\n1}", `"s"`, "\xff\xfe binary", `cpu,host=a v=1i 1`, ``} {
		f.Add([]byte(s), uint8(event.FormatJSON))
	}
	f.Fuzz(func(t *testing.T, body []byte, format uint8) {
		e := event.Event{Seq: 1, Time: t0.UnixNano(), Story: "s", Body: body, Format: event.Format(format % (uint8(event.MaxFormat) + 1))}
		if e.Format == event.FormatJSON && !json.Valid(body) {
			e.Format = event.FormatRaw // ingest stores only valid JSON as JSON
		}
		out := webhook.Body(sink.Batch{Chronicle: "c", Events: []event.Event{e, e}})
		lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if len(lines) != 2 {
			t.Fatalf("%d lines for 2 events: %q", len(lines), out)
		}
		for _, l := range lines {
			var obj map[string]any
			if err := json.Unmarshal([]byte(l), &obj); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
		}
	})
}
