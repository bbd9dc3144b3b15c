package proxy_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/websocket"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/protocols/h2"
	"github.com/pingora-go/pingora/protocols/ws"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/upstream"
)

// wsFrame encodes one final WebSocket frame of opcode with payload, masked as a client must.
func wsFrame(opcode byte, payload []byte) []byte {
	b := []byte{0x80 | opcode}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	mask := [4]byte{1, 2, 3, 4}
	b = append(b, mask[:]...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	return b
}

// readWSFrame reads one frame and returns its opcode and payload, unmasked when the sender
// (a client) masked it.
func readWSFrame(r io.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		if _, err := io.ReadFull(r, e[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		if _, err := io.ReadFull(r, e[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(e[:])
	}
	var mask [4]byte
	if h[1]&0x80 != 0 {
		if _, err := io.ReadFull(r, mask[:]); err != nil {
			return 0, nil, err
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	for i := range p {
		p[i] ^= mask[i%4]
	}
	return h[0] & 0x0f, p, nil
}

// TestWebSocketOverH2 opens a WebSocket over an HTTP/2 stream (RFC 8441 extended CONNECT)
// through the proxy to an HTTP/1.1 WebSocket echo server, and exchanges messages: as a raw
// tunnel, and through a message filter that rewrites what the client sends.
func TestWebSocketOverH2(t *testing.T) {
	t.Run("raw", func(t *testing.T) { testWebSocketOverH2(t, false) })
	t.Run("filtered", func(t *testing.T) { testWebSocketOverH2(t, true) })
}

func testWebSocketOverH2(t *testing.T, filtered bool) {
	var sawPath, sawProto string
	origin := startOrigin(t, websocket.Server{
		Handshake: func(c *websocket.Config, r *http.Request) error {
			sawPath, sawProto = r.URL.Path, r.Header.Get("Sec-WebSocket-Protocol")
			c.Protocol = []string{"chat"}
			return nil
		},
		Handler: func(c *websocket.Conn) {
			for {
				var msg string
				if err := websocket.Message.Receive(c, &msg); err != nil {
					return
				}
				websocket.Message.Send(c, "echo: "+msg)
			}
		},
	})
	base := &testApp{peers: []*upstream.Peer{mustPeer(t, origin.addr)}}
	var app proxy.ProxyHTTP[testCtx] = base
	prefix := "echo: "
	if filtered {
		fa := &wsFilterApp{wsOptsApp: wsOptsApp{testApp: base, opts: proxy.DefaultWebSocketOptions}}
		fa.filter = func(m *ws.Message) (ws.Action, error) {
			if m.Direction == ws.FromClient && m.Opcode == ws.OpText {
				m.Payload = append([]byte("filtered "), m.Payload...)
			}
			return ws.Pass, nil
		}
		app = fa
		prefix = "echo: filtered "
	}
	opts := proxy.Options{H2C: true}
	opts.H2.EnableConnectProtocol = true
	addr, _ := startProxy(t, app, opts)

	tr := h2cTransport(t)
	resp, pw := extendedConnect(t, tr, addr)
	if resp.StatusCode != 200 || resp.Header.Get("Sec-WebSocket-Protocol") != "chat" || resp.Header.Get("Sec-WebSocket-Accept") != "" {
		t.Fatalf("extended CONNECT answered %d %v", resp.StatusCode, resp.Header)
	}
	if sawPath != "/chat" || sawProto != "chat" {
		t.Fatalf("upstream handshake for %q with protocol %q", sawPath, sawProto)
	}
	for _, msg := range []string{"hello", strings.Repeat("big ", 40000)} {
		if _, err := pw.Write(wsFrame(1, []byte(msg))); err != nil {
			t.Fatal(err)
		}
		op, got, err := readWSFrame(resp.Body)
		if err != nil || op != 1 || string(got) != prefix+msg {
			t.Fatalf("op %d, %d bytes %.40q, %v", op, len(got), got, err)
		}
	}
	// A close frame ends the session: the server closes its connection (x/net/websocket does
	// not echo the close), and the proxy ends the stream cleanly, not with a reset.
	pw.Write(wsFrame(8, []byte{0x03, 0xe8}))
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatalf("stream did not end cleanly: %v", err)
	}
	pw.Close()

	// Another :protocol is answered 501.
	req, _ := http.NewRequest("CONNECT", "http://"+addr+"/x", http.NoBody)
	req.Header.Set(":protocol", "webtransport")
	resp2, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != 501 {
		t.Fatalf(":protocol webtransport answered %d, want 501", resp2.StatusCode)
	}
}

// serverWSFrame encodes an unmasked frame, as a server sends.
func serverWSFrame(opcode byte, payload []byte) []byte {
	b := []byte{0x80 | opcode}
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n < 1<<16:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// TestWebSocketOverH2ToH2Upstream runs a WebSocket over HTTP/2 through the proxy to an
// HTTP/2-only upstream: the extended CONNECT goes upstream as it came, through x/net's client
// (Go's own HTTP/2 server refuses extended CONNECT unless GODEBUG=http2xconnect=1, so the
// upstream is a protocols/h2 server), and the frames are relayed stream to stream.
func TestWebSocketOverH2ToH2Upstream(t *testing.T) {
	saw := make(chan string, 1)
	origin := rawOrigin(t, func(c net.Conn) {
		sc := h2.NewServerConn(c, &h2.ServerOptions{EnableConnectProtocol: true})
		sc.Serve(func(ss *h2.ServerStream) {
			saw <- string(ss.Req.Method()) + " " + ss.Protocol()
			resp := header.NewResponse(200)
			if v, ok := ss.Req.Get("sec-websocket-protocol"); ok {
				resp.AppendBytes([]byte("sec-websocket-protocol"), v)
			}
			ss.WriteResponseHeader(resp)
			ss.Flush()
			r := &streamReader{ss: ss}
			for {
				op, p, err := readWSFrame(r)
				if err != nil || op == 8 {
					ss.FinishResponse(nil)
					return
				}
				ss.WriteBody(serverWSFrame(op, append([]byte("h2 echo: "), p...)))
			}
		})
	})
	peer := mustPeer(t, origin)
	peer.Options.ALPN = upstream.H2
	app := &testApp{peers: []*upstream.Peer{peer}}
	opts := proxy.Options{H2C: true}
	opts.H2.EnableConnectProtocol = true
	addr, _ := startProxy(t, app, opts)

	resp, pw := extendedConnect(t, h2cTransport(t), addr)
	if resp.StatusCode != 200 || resp.Header.Get("Sec-WebSocket-Protocol") != "chat" {
		t.Fatalf("answered %d %v: %v", resp.StatusCode, resp.Header, app.lastErr.Load())
	}
	if got := <-saw; got != "CONNECT websocket" {
		t.Fatalf("upstream saw %q, want an extended CONNECT for websocket", got)
	}
	for _, msg := range []string{"one", strings.Repeat("two ", 10000)} {
		if _, err := pw.Write(wsFrame(1, []byte(msg))); err != nil {
			t.Fatal(err)
		}
		op, got, err := readWSFrame(resp.Body)
		if err != nil || op != 1 || string(got) != "h2 echo: "+msg {
			t.Fatalf("op %d, %d bytes %.40q, %v", op, len(got), got, err)
		}
	}
	pw.Write(wsFrame(8, []byte{0x03, 0xe8}))
	pw.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatalf("stream did not end cleanly: %v", err)
	}
}

// streamReader reads a ServerStream's request body as an io.Reader.
type streamReader struct {
	ss   *h2.ServerStream
	rest []byte
}

func (r *streamReader) Read(p []byte) (int, error) {
	for len(r.rest) == 0 {
		b, err := r.ss.ReadBody()
		if len(b) == 0 && err != nil {
			return 0, err
		}
		r.rest = b
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	return n, nil
}

// h2cTransport is x/net's HTTP/2 client over cleartext TCP, which can send extended CONNECT.
func h2cTransport(t testing.TB) *http2.Transport {
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, a string, _ *tls.Config) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, a)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// extendedConnect opens a WebSocket over HTTP/2 to addr's /chat (subprotocol "chat"): the
// response's body reads the server's frames, pw writes the client's.
func extendedConnect(t testing.TB, tr *http2.Transport, addr string) (*http.Response, *io.PipeWriter) {
	t.Helper()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "CONNECT", "http://"+addr+"/chat", pr)
	req.Header.Set(":protocol", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Protocol", "chat")
	req.Header.Set("Origin", "http://"+addr)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, pw
}
