package proxy

import (
	"strings"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/protocols/ws"
)

// WebSocketFilter is an optional phase: a ProxyHTTP that implements it sees every message of
// the WebSocket sessions it proxies, in either direction (m.Direction), after the 101
// response was sent. It may pass the message (ws.Pass, after changing m.Payload if it likes),
// drop it (ws.Drop), or end the session with a close code and reason sent to both sides
// (ws.Close). An error ends the session with close code 1011 and becomes the request's error.
//
// m.Payload is only valid during the call. The calls of one session never run at once, but
// they run on the relay's goroutines, after the request's other phases: ctx is the request's
// context, and Logging runs once the session ended.
//
// Without this phase an upgraded connection is relayed as raw bytes, with no parsing.
type WebSocketFilter[C any] interface {
	WebSocketMessage(s *Session, ctx *C, m *ws.Message) (ws.Action, error)
}

// WebSocketFilterFor is an optional interface of a ProxyHTTP that implements WebSocketFilter:
// asked once a session's 101 response was sent, it tells whether this session goes through
// the filter. A session it declines is relayed as raw bytes, which costs no parsing; without
// this interface every WebSocket session is filtered.
type WebSocketFilterFor[C any] interface {
	FilterWebSocket(s *Session, ctx *C) bool
}

// WebSocketConfig is an optional interface of a ProxyHTTP: the options of an upgraded
// connection (timeouts, message limits, compression level), asked for once its 101 response
// was sent. Without it every upgrade gets DefaultWebSocketOptions.
type WebSocketConfig[C any] interface {
	WebSocketOptions(s *Session, ctx *C) ws.Options
}

// DefaultWebSocketOptions are the options of upgraded connections when the ProxyHTTP does not
// implement WebSocketConfig: the defaults of ws.Options, counting in ws.DefaultStats.
var DefaultWebSocketOptions = ws.Options{}

// otherUpgrades counts tunnels of protocols other than WebSocket, which the WebSocket metrics
// leave out.
var otherUpgrades = new(ws.Stats)

// isWebSocket reports whether an upgrade is a WebSocket handshake that succeeded: the request
// asked for websocket, and the 101 agreed with the Sec-WebSocket-Accept its key calls for.
func isWebSocket(req *header.RequestHeader, resp *header.ResponseHeader) bool {
	if resp.Status != 101 || !req.HasToken("Upgrade", "websocket") || !resp.HasToken("Upgrade", "websocket") {
		return false
	}
	key, ok := req.Get("Sec-WebSocket-Key")
	accept, ok2 := resp.Get("Sec-WebSocket-Accept")
	return ok && ok2 && string(header.TrimOWS(accept)) == ws.AcceptKey(string(header.TrimOWS(key)))
}

// negotiated returns the permessage-deflate parameters the handshake agreed on (nil for none),
// and false when the relay cannot read the session's frames: an extension other than
// permessage-deflate, or an answer the client would reject.
func negotiated(req *header.RequestHeader, resp *header.ResponseHeader) (*ws.DeflateParams, bool) {
	answer, err := ws.ParseExtensions(fieldValues(&resp.Fields, "Sec-WebSocket-Extensions")...)
	if err != nil {
		return nil, false
	}
	if len(answer) == 0 {
		return nil, true
	}
	for _, e := range answer {
		if !strings.EqualFold(e.Name, ws.DeflateName) {
			return nil, false
		}
	}
	offers, err := ws.ParseExtensions(fieldValues(&req.Fields, "Sec-WebSocket-Extensions")...)
	if err != nil {
		return nil, false
	}
	p, found, err := ws.ParseDeflateResponse(answer, offers)
	if err != nil || !found {
		return nil, false
	}
	return &p, true
}

func fieldValues(f *header.Fields, name string) []string {
	var vs []string
	f.Values(name, func(v []byte) bool {
		vs = append(vs, string(v))
		return true
	})
	return vs
}
