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

// readWSFrame reads one unmasked frame from a server and returns its opcode and payload.
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
	p := make([]byte, n)
	_, err := io.ReadFull(r, p)
	return h[0] & 0x0f, p, err
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

	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, a string, _ *tls.Config) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, a)
	}}
	defer tr.CloseIdleConnections()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "CONNECT", "http://"+addr+"/chat", pr)
	req.Header.Set(":protocol", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Protocol", "chat")
	req.Header.Set("Origin", "http://"+addr)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
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
	req, _ = http.NewRequestWithContext(ctx, "CONNECT", "http://"+addr+"/x", http.NoBody)
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
