package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/chronostream/chronostream/internal/auth"
	"github.com/chronostream/chronostream/internal/server"
	"github.com/chronostream/chronostream/internal/testutil/servertest"
)

// TestWebSocketSubprotocolTokenNotRecorded: a browser's WebSocket offers its
// token as the subprotocol "bearer.TOKEN"; the source recorded for the
// connection (readable by any read token through /api/v1/sources) must not
// keep it.
func TestWebSocketSubprotocolTokenNotRecorded(t *testing.T) {
	const token = "subprotocol-secret-0123456789"
	s := servertest.RunServer(t, server.Options{Tokens: []string{token}, AutoCreate: true})
	conn, _, err := websocket.Dial(context.Background(), "ws://"+s.Addr()+"/?chronicle=app&story=ws", &websocket.DialOptions{
		Subprotocols: []string{auth.WebSocketSubprotocol, "bearer." + token}})
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Write(context.Background(), websocket.MessageText, []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := conn.Read(context.Background()); err != nil || string(b) != "1" {
		t.Fatalf("count %q, %v", b, err)
	}
	conn.Close(websocket.StatusNormalClosure, "")
	c := scopeClient{t, "http://" + s.Addr()}
	code, out := c.do("GET", "/api/v1/sources?limit=1000", token, nil, nil)
	if code != http.StatusOK || !strings.Contains(out, "websocket") {
		t.Fatalf("sources: %d %s", code, out)
	}
	if strings.Contains(out, token) {
		t.Errorf("the recorded source holds the token: %s", out)
	}
}
