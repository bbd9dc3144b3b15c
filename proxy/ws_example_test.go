package proxy_test

import (
	"bytes"
	"time"

	"github.com/pingora-go/pingora/protocols/ws"
	"github.com/pingora-go/pingora/proxy"
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

// A proxy that filters the messages of the WebSocket sessions it carries.
func Example_webSocketFilter() {
	peer, _ := upstream.NewPeer("127.0.0.1:8080", false, "")
	app := &chatProxy{peer: peer}
	p := proxy.New(app, proxy.Options{})
	_ = p // serve it: proxy.NewService("chat", app, proxy.Options{}) added to a server.Server
}
