package proxy

import (
	"crypto/rand"
	"encoding/base64"
	"sync/atomic"
	"time"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/protocols/h1"
	"github.com/pingora-go/pingora/protocols/h2"
	"github.com/pingora-go/pingora/protocols/ws"
)

// WebSocket over HTTP/2 (RFC 8441): a client opens a stream with an extended CONNECT
// (:protocol websocket) and exchanges WebSocket frames in its DATA frames. The proxy bridges
// such a stream to an HTTP/1.1 upgrade upstream: the phases see the request as the HTTP/1.1
// handshake it becomes (GET with Upgrade: websocket and a Sec-WebSocket-Key of the proxy's),
// the upstream's 101 becomes the stream's 200, and the bytes are relayed both ways.

// extendedConnect turns the extended CONNECT of st's HTTP/2 stream into the HTTP/1.1
// WebSocket handshake it stands for, remembering the key the proxy chose; it reports false for
// a :protocol other than websocket.
func (st *conn[C]) extendedConnect() bool {
	ss := st.h2s
	if !header.EqualFold([]byte(ss.Protocol()), "websocket") {
		return false
	}
	var k [16]byte
	rand.Read(k[:])
	st.wsKey = base64.StdEncoding.EncodeToString(k[:])
	req := &ss.Req
	req.SetMethod("GET")
	req.Remove("sec-websocket-key")
	req.Append("upgrade", "websocket")
	req.Append("connection", "upgrade")
	req.Append("sec-websocket-key", st.wsKey)
	if !req.Has("sec-websocket-version") {
		req.Append("sec-websocket-version", "13")
	}
	return true
}

// h2WebSocketAccepted checks the upstream's 101 against the key the proxy sent and turns it
// into the 200 that accepts an extended CONNECT.
func h2WebSocketAccepted(resp *header.ResponseHeader, key string) error {
	got, _ := resp.Get("Sec-WebSocket-Accept")
	if string(header.TrimOWS(got)) != ws.AcceptKey(key) {
		return perr.Explain(perr.InvalidHTTPHeader, "upstream's 101 has a wrong Sec-WebSocket-Accept").AsUp()
	}
	resp.SetStatus(200)
	resp.Remove("Sec-WebSocket-Accept")
	resp.Remove("Upgrade")
	resp.Remove("Connection")
	return nil
}

// tunnelH2 relays an HTTP/2 stream accepted as a WebSocket and the upstream's upgraded
// HTTP/1.1 connection, as tunnel does for an HTTP/1.1 client: message by message through the
// app's WebSocketFilter when it has one, else as raw bytes, under the WebSocket timeouts.
func (p *Proxy[C]) tunnelH2(st *conn[C], cs *h1.ClientSession, ctx *C) error {
	ss := st.h2s
	cs.MarkBroken()
	if err := ss.Flush(); err != nil {
		return err
	}
	uconn, urest := cs.Hijack()
	uconn.SetDeadline(time.Time{})
	return p.relay(st, ctx, ws.Endpoint{Conn: newH2StreamConn(ss)}, ws.Endpoint{Conn: uconn, Buffered: urest}, &cs.Resp, true)
}

// toExtendedConnect turns the HTTP/1.1 handshake that an extended CONNECT was translated to
// back into an extended CONNECT, for an HTTP/2 upstream.
func toExtendedConnect(req *header.RequestHeader, up upstreamSession) {
	req.SetMethod("CONNECT")
	req.Remove("Upgrade")
	req.Remove("Connection")
	req.Remove("Sec-WebSocket-Key")
	up.(*h2Up).cs().SetProtocol("websocket")
}

// tunnelH2H2 relays a WebSocket between a downstream HTTP/2 stream and an upstream one, both
// opened by extended CONNECT, as tunnelH2 does with an HTTP/1.1 upstream.
func (p *Proxy[C]) tunnelH2H2(st *conn[C], cs *h2.ClientStream, ctx *C) error {
	if err := st.h2s.Flush(); err != nil {
		return err
	}
	cs.SetTimeouts(0, 0) // the relay enforces the WebSocket timeouts
	return p.relay(st, ctx, ws.Endpoint{Conn: newH2StreamConn(st.h2s)}, ws.Endpoint{Conn: newH2ClientStreamConn(cs)}, &cs.Resp, true)
}

// streamIO reads and writes the body of an HTTP/2 stream as a byte stream.
type streamIO struct {
	body interface {
		ReadBody() ([]byte, error)
		WriteBody(p []byte) error
	}
	unread []byte // the rest of the last piece ReadBody returned
}

func (c *streamIO) Read(p []byte) (int, error) {
	for len(c.unread) == 0 {
		b, err := c.body.ReadBody()
		if len(b) == 0 && err != nil {
			return 0, err
		}
		c.unread = b
	}
	n := copy(p, c.unread)
	c.unread = c.unread[n:]
	return n, nil
}

func (c *streamIO) Write(p []byte) (int, error) {
	if err := c.body.WriteBody(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// h2ClientStreamConn is the byte stream of an upstream HTTP/2 stream opened by extended
// CONNECT: the request body is written, the response body read.
type h2ClientStreamConn struct {
	streamIO
	cs *h2.ClientStream
}

func newH2ClientStreamConn(cs *h2.ClientStream) *h2ClientStreamConn {
	return &h2ClientStreamConn{streamIO: streamIO{body: cs}, cs: cs}
}

// CloseWrite ends the request body: END_STREAM.
func (c *h2ClientStreamConn) CloseWrite() error { return c.cs.FinishRequest(nil) }

// Close resets the stream, unblocking a Read or Write in progress.
func (c *h2ClientStreamConn) Close() error {
	c.cs.Abort()
	return nil
}

// h2StreamConn is the byte stream of an HTTP/2 stream carrying a WebSocket: the request's
// DATA frames are read, the response's written. Close unblocks a Read or Write in progress on
// another goroutine, as the relay's timeouts need.
type h2StreamConn struct {
	streamIO
	ss       *h2.ServerStream
	finished atomic.Bool
}

func newH2StreamConn(ss *h2.ServerStream) *h2StreamConn {
	return &h2StreamConn{streamIO: streamIO{body: ss}, ss: ss}
}

// CloseWrite ends the response: END_STREAM, the HTTP/2 half-close.
func (c *h2StreamConn) CloseWrite() error {
	if c.finished.Swap(true) {
		return nil
	}
	return c.ss.FinishResponse(nil)
}

// Close stops reading, and resets the stream unless its response was ended by CloseWrite
// (the connection then tells the client with RST_STREAM NO_ERROR that the rest of its data is
// not wanted, once the handler returns).
func (c *h2StreamConn) Close() error {
	c.ss.AbortBody()
	if !c.finished.Load() {
		c.ss.Reset()
	}
	return nil
}
