package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/pingora-go/pingora/protocols/ws"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
	"github.com/pingora-go/pingora/upstream"
)

// chatProxy proxies a chat service's WebSocket sessions: it masks a word in what clients
// send, drops their empty messages, ends a session that sends a banned command, and keeps
// idle sessions open for 10 minutes.
type chatProxy struct {
	proxy.Defaults[chatCtx]
	peer *upstream.Peer
}

type chatCtx struct {
	fromClient int
}

func (p *chatProxy) NewCtx() chatCtx { return chatCtx{} }

func (p *chatProxy) UpstreamPeer(*proxy.Session, *chatCtx) (*upstream.Peer, error) {
	return p.peer, nil
}

// WebSocketMessage makes chatProxy a proxy.WebSocketFilter.
func (p *chatProxy) WebSocketMessage(_ *proxy.Session, ctx *chatCtx, m *ws.Message) (ws.Action, error) {
	if m.Direction != ws.FromClient {
		return ws.Pass, nil
	}
	ctx.fromClient++
	switch {
	case len(m.Payload) == 0:
		return ws.Drop, nil
	case bytes.HasPrefix(m.Payload, []byte("/shutdown")):
		return ws.Close(ws.ClosePolicyViolation, "command not allowed"), nil
	}
	// m.Payload is only valid during the call; ReplaceAll returns a new slice.
	m.Payload = bytes.ReplaceAll(m.Payload, []byte("password"), []byte("********"))
	return ws.Pass, nil
}

// WebSocketOptions makes chatProxy a proxy.WebSocketConfig.
func (p *chatProxy) WebSocketOptions(*proxy.Session, *chatCtx) ws.Options {
	return ws.Options{IdleTimeout: 10 * time.Minute, Config: ws.Config{MaxMessageSize: 1 << 20}}
}

// A proxy that filters the messages of the WebSocket sessions it carries, in front of an echo
// server: a word is masked, an empty message dropped, a banned command ends the session.
func Example_webSocketFilter() {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	origin, originAddr := exampleOrigin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, data, err := c.Read(r.Context())
			if err != nil || c.Write(r.Context(), typ, data) != nil {
				return
			}
		}
	}))
	defer origin.Close()
	peer, _ := upstream.NewPeer(originAddr, false, "")
	app := &chatProxy{peer: peer}
	svc := proxy.NewService("chat", app, proxy.Options{Logger: quiet})
	svc.AddTCP("127.0.0.1:0")
	svc.SetLogger(quiet)
	srv := server.New(server.Options{GracePeriod: time.Second, Logger: quiet})
	srv.AddService(svc)
	done := make(chan error, 1)
	go func() { done <- srv.RunServices(context.Background()) }()
	defer func() { srv.Shutdown(true); <-done }()
	addr := waitListening(svc)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/chat", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	for _, msg := range []string{"my password is 1234", "", "still here"} {
		c.Write(ctx, websocket.MessageText, []byte(msg))
	}
	for range 2 { // the empty message was dropped
		_, data, err := c.Read(ctx)
		fmt.Printf("%q %v\n", data, err)
	}
	c.Write(ctx, websocket.MessageText, []byte("/shutdown now"))
	_, _, err = c.Read(ctx)
	var ce websocket.CloseError
	errors.As(err, &ce)
	fmt.Println(ce.Code, ce.Reason)
	// Output:
	// "my ******** is 1234" <nil>
	// "still here" <nil>
	// StatusPolicyViolation command not allowed
}
