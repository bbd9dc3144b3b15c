package proxy

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"net"
	"sync"
	"time"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/protocols/h1"
	"github.com/pingora-go/pingora/protocols/h2"
)

// WebSocket over HTTP/2 (RFC 8441): a client opens a stream with an extended CONNECT
// (:protocol websocket) and exchanges WebSocket frames in its DATA frames. The proxy bridges
// such a stream to an HTTP/1.1 upgrade upstream: the phases see the request as the HTTP/1.1
// handshake it becomes (GET with Upgrade: websocket and a Sec-WebSocket-Key of the proxy's),
// the upstream's 101 becomes the stream's 200, and the bytes are relayed both ways.

// wsGUID is the key suffix of RFC 6455 §1.3.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// wsAccept returns the Sec-WebSocket-Accept value for key.
func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

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
	if string(got) != wsAccept(key) {
		return perr.Explain(perr.InvalidHTTPHeader, "upstream's 101 has a wrong Sec-WebSocket-Accept").AsUp()
	}
	resp.SetStatus(200)
	resp.Remove("Sec-WebSocket-Accept")
	resp.Remove("Upgrade")
	resp.Remove("Connection")
	return nil
}

// tunnelH2 relays the bytes of an HTTP/2 stream accepted as a WebSocket and the upstream's
// upgraded HTTP/1.1 connection, until both directions ended or nothing moved for the idle
// timeout (the peer's ReadTimeout, as nginx's proxy_read_timeout bounds its WebSocket tunnels).
func (p *Proxy[C]) tunnelH2(st *conn[C], cs *h1.ClientSession) error {
	ss := st.h2s
	cs.MarkBroken()
	if err := ss.Flush(); err != nil {
		return err
	}
	uconn, urest := cs.Hijack()
	uconn.SetDeadline(time.Time{})
	idle := st.sess.peer.Options.ReadTimeout
	if idle <= 0 {
		idle = DefaultWebSocketIdleTimeout
	}
	t := &h2Tunnel{ss: ss, up: uconn}
	t.timer = time.AfterFunc(idle, t.expire)
	defer t.timer.Stop()
	var wg sync.WaitGroup
	wg.Add(2)
	// Client → upstream: the stream's DATA, until END_STREAM, then a half-close.
	go func() {
		defer wg.Done()
		for {
			b, err := ss.ReadBody()
			if len(b) > 0 {
				t.timer.Reset(idle)
				if _, werr := uconn.Write(b); werr != nil {
					t.abort()
					return
				}
			}
			if err != nil {
				if ss.BodyDone() {
					closeWrite(uconn)
				} else {
					t.abort()
				}
				return
			}
		}
	}()
	// Upstream → client: what arrived with the 101, then the connection, then END_STREAM.
	go func() {
		defer wg.Done()
		if len(urest) > 0 {
			if ss.WriteBody(urest) != nil {
				t.abort()
				return
			}
		}
		buf := make([]byte, 16<<10)
		for {
			n, err := uconn.Read(buf)
			if n > 0 {
				t.timer.Reset(idle)
				if ss.WriteBody(buf[:n]) != nil {
					t.abort()
					return
				}
			}
			if err != nil {
				if t.aborted() {
					return
				}
				if ss.FinishResponse(nil) != nil {
					t.abort()
				}
				return
			}
		}
	}()
	wg.Wait()
	uconn.Close()
	if t.aborted() {
		return perr.Explain(perr.ReadTimedout, "WebSocket over HTTP/2 ended by a reset, an error or the idle timeout").AsUp()
	}
	return nil
}

// DefaultWebSocketIdleTimeout ends a WebSocket tunnel over HTTP/2 in which no byte moved for
// this long, when the peer has no ReadTimeout.
const DefaultWebSocketIdleTimeout = 60 * time.Second

// h2Tunnel is the shared state of the two directions of tunnelH2.
type h2Tunnel struct {
	ss    *h2.ServerStream
	up    net.Conn
	timer *time.Timer
	once  sync.Once
	done  bool
	mu    sync.Mutex
}

func (t *h2Tunnel) expire() { t.abort() }

// abort ends both directions: the upstream connection closes and the stream is reset.
func (t *h2Tunnel) abort() {
	t.once.Do(func() {
		t.mu.Lock()
		t.done = true
		t.mu.Unlock()
		t.up.Close()
		t.ss.AbortBody()
		t.ss.Reset()
	})
}

func (t *h2Tunnel) aborted() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.done
}

// closeWrite half-closes c when it can, and closes it otherwise.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		c.Close()
	}
}
