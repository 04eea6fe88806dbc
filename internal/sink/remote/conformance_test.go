package remote_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/sink"
	"github.com/chronostream/chronostream/internal/sink/remote"
	"github.com/chronostream/chronostream/internal/store"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

// sources are the two implementations of sink.Source over one server's log.
func sources(t *testing.T) (*server.Server, map[string]sink.Source) {
	srv := servertest.RunServer(t, server.Options{AutoCreate: true})
	return srv, map[string]sink.Source{
		"local":  sink.LocalSource{Store: srv.Store()},
		"remote": &remote.Server{Base: "http://" + srv.Addr(), Client: &http.Client{}},
	}
}

// seed writes events of every stored format: line protocol (verbatim
// lines), JSON bodies, and typed fields with a text body.
func seed(t *testing.T, srv *server.Server) store.Appended {
	t.Helper()
	post := func(path, ctype, body string) {
		resp, err := http.Post("http://"+srv.Addr()+path, ctype, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("POST %s: %s", path, resp.Status)
		}
	}
	post("/write?db=c", "text/plain", "cpu,host=a f=2,i=3i,u=4u,s=\"x y\",b=true 1700000000000000000\ncpu,host=b f=2.5 1700000000000000001\n")
	post("/api/v1/chronicles/c/stories/logs/events", "application/x-ndjson", `{"msg":"hello","n":2,"x":2.5,"tags":{"env":"prod"}}`+"\n"+`{"level":"warn","ok":false}`+"\n")
	a, err := srv.Store().Append("c", "raw", []event.Event{
		{Time: 5, Kind: event.KindMetric, Fields: map[string]event.Value{"v": event.Float(2)}, Body: []byte("raw.metric 2 5")},
		{Time: 6, Kind: event.KindLog, Body: []byte{0xff, 0x00, 'x'}},
	}).Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func readAll(t *testing.T, src sink.Source, after uint64, limit int) ([]event.Event, []store.Gap) {
	t.Helper()
	var (
		evs  []event.Event
		gaps []store.Gap
		p    fastjson.Parser
	)
	n, err := src.Read(context.Background(), "c", after, limit, func(e *event.Event) error {
		c := *e
		sink.Expand(&p, &c)
		c.Source, c.Body = "", nil // bodies differ in form (a JSON body is compacted); fields are compared
		c.Format = 0
		evs = append(evs, c)
		return nil
	}, func(g store.Gap) error { gaps = append(gaps, g); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if n != len(evs) {
		t.Fatalf("Read returned %d, passed %d", n, len(evs))
	}
	return evs, gaps
}

// TestSourceConformance runs the same checks against both sources: the
// runner sees the same events, cursors and errors through either.
func TestSourceConformance(t *testing.T) {
	srv, srcs := sources(t)
	last := seed(t, srv)
	ctx := context.Background()
	// Both read the same events, with the same tags and typed fields.
	reference, _ := readAll(t, srcs["local"], 0, 0)
	if len(reference) != 6 || reference[5].Seq != last.Last {
		t.Fatalf("read %d events; want 6 ending at %d", len(reference), last.Last)
	}
	if all, _ := readAll(t, srcs["remote"], 0, 0); !reflect.DeepEqual(all, reference) {
		for i := range all {
			if i >= len(reference) || !reflect.DeepEqual(all[i], reference[i]) {
				t.Errorf("event %d:\nremote: %+v\nlocal:  %+v", i, all[i], reference[min(i, len(reference)-1)])
			}
		}
	}
	for _, name := range []string{"local", "remote"} {
		src := srcs[name]
		all := reference
		t.Run(name, func(t *testing.T) {
			some, _ := readAll(t, src, all[0].Seq, 2)
			if len(some) != 2 || some[0].Seq != all[1].Seq {
				t.Errorf("Read after %d limit 2: %v", all[0].Seq, some)
			}
			var back []uint64
			if err := src.ReadBack(ctx, "c", all[3].Seq, 2, func(e *event.Event) error { back = append(back, e.Seq); return nil }); err != nil ||
				len(back) != 2 || back[0] != all[2].Seq || back[1] != all[3].Seq {
				t.Errorf("ReadBack up to %d: %v %v", all[3].Seq, back, err)
			}
			head, err := src.Head(ctx, "c")
			if err != nil || head < last.Last {
				t.Fatalf("Head %d %v, want ≥ %d", head, err, last.Last)
			}
			if rest, _ := readAll(t, src, head, 0); len(rest) != 0 {
				t.Errorf("events after Head: %v", rest)
			}
			at, err := src.SeqAt(ctx, "c", time.Unix(0, 1700000000000000001))
			if err != nil || at != all[1].Seq-1 {
				t.Errorf("SeqAt = %d %v, want %d", at, err, all[1].Seq-1)
			}
			for _, err := range []error{
				func() error {
					_, err := src.Read(ctx, "nope", 0, 0, func(*event.Event) error { return nil }, nil)
					return err
				}(),
				func() error { _, err := src.Head(ctx, "nope"); return err }(),
				func() error { _, err := src.Tail(ctx, "nope", 0); return err }(),
			} {
				if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("an unknown chronicle: %v, want store.ErrNotFound", err)
				}
			}
			feed, err := src.Tail(ctx, "c", head)
			if err != nil {
				t.Fatal(err)
			}
			defer feed.Close()
			story := "tail-" + name
			a, err := srv.Store().Append("c", story, []event.Event{{Time: 9, Fields: map[string]event.Value{"n": event.Int(1)}}}).Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			for {
				it, err := feed.Next(tctx)
				if err != nil {
					t.Fatalf("tail: %v", err)
				}
				if n := len(it.Events); n > 0 && it.Events[n-1].Seq == a.Last {
					if it.Events[n-1].Story != story {
						t.Errorf("tail event %+v", it.Events[n-1])
					}
					break
				}
			}
			if err := src.DeadLetter(ctx, "c", sink.DeadLetterPrefix+name, []event.Event{{Body: []byte(`{"error":"refused"}`), Format: event.FormatJSON}}); err != nil {
				t.Fatal(err)
			}
			n := 0
			_, err = srv.Store().Read(ctx, store.Query{Chronicle: "c", Story: sink.DeadLetterPrefix + name}, func(e *event.Event) error {
				n++
				if !strings.Contains(string(e.Body), "refused") {
					t.Errorf("dead letter body %q", e.Body)
				}
				return nil
			}, nil)
			if err != nil || n != 1 {
				t.Errorf("dead letters stored: %d %v", n, err)
			}
		})
	}
}
