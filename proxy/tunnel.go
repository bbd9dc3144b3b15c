package proxy

import (
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/protocols/h1"
	"github.com/pingora-go/pingora/protocols/ws"
)

// errWebSocket is the type of a session the peer ended by breaking the WebSocket protocol or
// a message limit.
var errWebSocket = perr.NewType("WebSocketError")

// tunnel relays an upgraded connection after its 101 response went downstream, until both
// sides finished or a timeout ended it. A WebSocket session of an app that implements
// WebSocketFilter is relayed message by message through the filter; any other upgrade as raw
// bytes. Neither connection is reused afterwards.
func (p *Proxy[C]) tunnel(st *conn[C], cs *h1.ClientSession, ctx *C) error {
	s := &st.sess
	if err := st.ds.Flush(); err != nil {
		return err
	}
	cs.MarkBroken()
	s.SetKeepAlive(false)
	if st.ds.RequestFraming().Kind != h1.BodyNone {
		// The body goroutine reads the downstream connection until the request body ends;
		// what follows it is the new protocol. Wait for it, and leave its result for the
		// caller, which collects it.
		err := <-st.pumpErr
		st.pumpErr <- err
		if err != nil {
			return err
		}
	}
	dconn, drest := st.ds.Hijack()
	uconn, urest := cs.Hijack()
	// The HTTP sessions' read and write deadlines do not apply to the new protocol: the relay
	// enforces its own timeouts.
	dconn.SetDeadline(time.Time{})
	uconn.SetDeadline(time.Time{})

	client := ws.Endpoint{Conn: dconn, Buffered: drest}
	server := ws.Endpoint{Conn: uconn, Buffered: urest}
	return p.relay(st, ctx, client, server, &cs.Resp, isWebSocket(&st.upReq, &cs.Resp))
}

// relay runs an upgraded session between client and server until it ends: a WebSocket (as
// the request and resp negotiated it) through the app's WebSocketFilter when it has one,
// anything else, or a WebSocket without a filter, as raw bytes; both under the app's
// WebSocket options.
func (p *Proxy[C]) relay(st *conn[C], ctx *C, client, server ws.Endpoint, resp *header.ResponseHeader, websocket bool) error {
	s := &st.sess
	o := DefaultWebSocketOptions
	if wc, ok := p.app.(WebSocketConfig[C]); ok {
		o = wc.WebSocketOptions(s, ctx)
	}
	if !websocket {
		o.Stats = otherUpgrades
		return tunnelErr(ws.Pipe(client, server, &o))
	}
	if f, ok := p.app.(WebSocketFilter[C]); ok && p.filtersWebSocket(s, ctx) {
		if deflate, ok := negotiated(&st.upReq, resp); ok {
			o.Deflate = deflate
			return tunnelErr(ws.Relay(client, server, &o, func(m *ws.Message) (ws.Action, error) {
				return f.WebSocketMessage(s, ctx, m)
			}))
		}
		p.log.Warn("websocket session relayed unfiltered: its extensions are not understood",
			"request", p.app.RequestSummary(s, ctx), "extensions", resp.Value("Sec-WebSocket-Extensions"))
	}
	return tunnelErr(ws.Pipe(client, server, &o))
}

// filtersWebSocket asks the app's WebSocketFilterFor, when it has one, whether the session
// goes through its WebSocketFilter.
func (p *Proxy[C]) filtersWebSocket(s *Session, ctx *C) bool {
	if fc, ok := p.app.(WebSocketFilterFor[C]); ok {
		return fc.FilterWebSocket(s, ctx)
	}
	return true
}

// tunnelErr turns how a relay ended into the request's error: nil for a normal end.
func tunnelErr(err error) error {
	if err == nil {
		return nil
	}
	var ee *ws.EndpointError
	var fe *ws.FilterError
	switch {
	case errors.Is(err, ws.ErrIdleTimeout), errors.Is(err, ws.ErrTotalTimeout):
		return perr.Because(perr.ReadTimedout, "upgraded connection", err).AsIn()
	case errors.As(err, &fe):
		return perr.Because(perr.InternalError, "upgraded connection", err).AsIn()
	case errors.As(err, &ee):
		t := perr.ReadError
		switch _, proto := ws.IsCloseError(err); {
		case proto:
			t = errWebSocket
		case errors.Is(err, ws.ErrWriteTimeout):
			t = perr.WriteTimedout
		case ee.Op == "write":
			t = perr.WriteError
		case isClosed(ee.Err):
			t = perr.ConnectionClosed
		}
		e := perr.Because(t, "upgraded connection", err)
		if ee.Side == ws.ClientSide {
			return e.AsDown()
		}
		return e.AsUp()
	}
	return perr.Because(perr.InternalError, "upgraded connection", err).AsIn()
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
