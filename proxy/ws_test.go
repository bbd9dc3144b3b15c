package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pingora-go/pingora/protocols/ws"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/upstream"
)

// wsOptsApp is a test app with WebSocket options; wsFilterApp adds a message filter.
type wsOptsApp struct {
	*testApp
	opts ws.Options
}

func (a *wsOptsApp) WebSocketOptions(*proxy.Session, *testCtx) ws.Options { return a.opts }

type wsFilterApp struct {
	wsOptsApp
	mu         sync.Mutex
	filter     func(m *ws.Message) (ws.Action, error)
	compressed int // messages the filter saw arrive compressed
}

func (a *wsFilterApp) WebSocketMessage(_ *proxy.Session, _ *testCtx, m *ws.Message) (ws.Action, error) {
	a.mu.Lock()
	if m.Compressed {
		a.compressed++
	}
	a.mu.Unlock()
	if a.filter == nil {
		return ws.Pass, nil
	}
	return a.filter(m)
}

var (
	_ proxy.WebSocketFilter[testCtx] = (*wsFilterApp)(nil)
	_ proxy.WebSocketConfig[testCtx] = (*wsOptsApp)(nil)
)

// closeSeen is how a session ended for the echo server.
type closeSeen struct {
	code   websocket.StatusCode
	reason string
}

// echoServer accepts WebSocket sessions with compression mode and echoes every message. A text
// message "close N" makes it close with code N; how each session ended goes to closes. Any
// other path than /ws answers 403 "denied".
func echoServer(t *testing.T, mode websocket.CompressionMode, closes chan<- closeSeen) *countingServer {
	return startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" {
			http.Error(w, "denied", http.StatusForbidden)
			return
		}
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: mode})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(64 << 20)
		ctx := context.Background()
		for {
			typ, data, err := c.Read(ctx)
			if err != nil {
				var ce websocket.CloseError
				errors.As(err, &ce)
				if closes != nil {
					closes <- closeSeen{websocket.CloseStatus(err), ce.Reason}
				}
				return
			}
			if code, ok := strings.CutPrefix(string(data), "close "); ok && typ == websocket.MessageText {
				n, _ := strconv.Atoi(code)
				c.Close(websocket.StatusCode(n), "server bye")
				return
			}
			if err := c.Write(ctx, typ, data); err != nil {
				return
			}
		}
	}))
}

// wsClient is a WebSocket client through the proxy whose messages a goroutine reads.
type wsClient struct {
	c    *websocket.Conn
	resp *http.Response
	msgs chan wsMsg
}

type wsMsg struct {
	typ  websocket.MessageType
	data []byte
	err  error
}

func dialWS(t *testing.T, addr string, mode websocket.CompressionMode) *wsClient {
	t.Helper()
	return dialWSPath(t, addr, "/ws", mode)
}

// dialWSPath opens a session to target (a path and query) through the proxy at addr.
func dialWSPath(t *testing.T, addr, target string, mode websocket.CompressionMode) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+addr+target, &websocket.DialOptions{CompressionMode: mode, CompressionThreshold: 64})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(64 << 20)
	cl := &wsClient{c: c, resp: resp, msgs: make(chan wsMsg, 16)}
	go func() {
		for {
			typ, data, err := c.Read(context.Background())
			cl.msgs <- wsMsg{typ, data, err}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { c.CloseNow() })
	return cl
}

func (c *wsClient) send(t *testing.T, typ websocket.MessageType, p []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.c.Write(ctx, typ, p); err != nil {
		t.Fatal(err)
	}
}

func (c *wsClient) next(t *testing.T) wsMsg {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("no message")
		return wsMsg{}
	}
}

func (c *wsClient) expect(t *testing.T, typ websocket.MessageType, p []byte) {
	t.Helper()
	m := c.next(t)
	if m.err != nil {
		t.Fatalf("want a message of %d bytes: %v", len(p), m.err)
	}
	if m.typ != typ || !bytes.Equal(m.data, p) {
		t.Fatalf("got %v %.40q (%d bytes), want %v %.40q (%d bytes)", m.typ, m.data, len(m.data), typ, p, len(p))
	}
}

var compressionModes = []struct {
	name string
	mode websocket.CompressionMode
	ext  string
}{
	{"uncompressed", websocket.CompressionDisabled, ""},
	{"context-takeover", websocket.CompressionContextTakeover, "permessage-deflate"},
	{"no-context-takeover", websocket.CompressionNoContextTakeover, "permessage-deflate; client_no_context_takeover; server_no_context_takeover"},
}

// Echo, 16 MiB messages, fragments, ping/pong and close codes, through the raw tunnel and
// through the filter relay, with and without compression.
func TestWebSocketThroughProxy(t *testing.T) {
	big := make([]byte, 16<<20)
	rand.Read(big)
	bigText := bytes.Repeat([]byte("sixteen mebibytes of text, "), (16<<20)/27)
	for _, filtered := range []bool{false, true} {
		for _, cm := range compressionModes {
			name := cm.name
			if filtered {
				name = "filtered/" + name
			}
			t.Run(name, func(t *testing.T) {
				closes := make(chan closeSeen, 4)
				origin := echoServer(t, cm.mode, closes)
				base := &testApp{peers: []*upstream.Peer{mustPeer(t, origin.addr)}}
				stats := new(ws.Stats)
				var app proxy.ProxyHTTP[testCtx] = &wsOptsApp{testApp: base, opts: ws.Options{Stats: stats}}
				fapp := &wsFilterApp{wsOptsApp: wsOptsApp{testApp: base, opts: ws.Options{Stats: stats}}}
				if filtered {
					app = fapp
				}
				addr, _ := startProxy(t, app, proxy.Options{})
				c := dialWS(t, addr, cm.mode)
				if got := c.resp.Header.Get("Sec-WebSocket-Extensions"); got != cm.ext {
					t.Fatalf("extensions %q, want %q", got, cm.ext)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := c.c.Ping(ctx); err != nil {
					t.Fatalf("ping: %v", err)
				}
				c.send(t, websocket.MessageText, []byte("hello"))
				c.expect(t, websocket.MessageText, []byte("hello"))
				text := bytes.Repeat([]byte("compressible "), 300)
				for range 3 {
					c.send(t, websocket.MessageText, text)
					c.expect(t, websocket.MessageText, text)
				}
				// A message in fragments: each Write is a frame.
				w, err := c.c.Writer(ctx, websocket.MessageBinary)
				if err != nil {
					t.Fatal(err)
				}
				for _, part := range []string{"frag", "men", "ted"} {
					if _, err := w.Write([]byte(part)); err != nil {
						t.Fatal(err)
					}
				}
				w.Close()
				c.expect(t, websocket.MessageBinary, []byte("fragmented"))
				if cm.mode == websocket.CompressionDisabled {
					c.send(t, websocket.MessageBinary, big)
					c.expect(t, websocket.MessageBinary, big)
				} else if filtered {
					c.send(t, websocket.MessageText, bigText)
					c.expect(t, websocket.MessageText, bigText)
				}
				if filtered && cm.mode != websocket.CompressionDisabled && fapp.compressed == 0 {
					t.Fatal("the filter saw no compressed message")
				}
				// The server closes with its code; then a new session, which the client closes.
				c.send(t, websocket.MessageText, []byte("close 4002"))
				if m := c.next(t); websocket.CloseStatus(m.err) != 4002 {
					t.Fatalf("client saw %v, want close 4002", m.err)
				}
				c = dialWS(t, addr, cm.mode)
				c.c.Close(4001, "client bye")
				select {
				case seen := <-closes:
					if seen.code != 4001 || seen.reason != "client bye" {
						t.Fatalf("server saw close %d %q", seen.code, seen.reason)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("the server saw no close")
				}
				waitFor(t, func() bool { return stats.Snapshot().Active == 0 })
				s := stats.Snapshot()
				if s.Sessions != 2 || s.Bytes[ws.FromClient] == 0 || s.Bytes[ws.FromServer] == 0 {
					t.Fatalf("stats %+v", s)
				}
				if filtered && (s.Filtered != 2 || s.Messages[ws.FromClient] < 6 || s.Messages[ws.FromServer] < 5) {
					t.Fatalf("stats %+v", s)
				}
			})
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWebSocketFilterRewritesAndDrops(t *testing.T) {
	for _, cm := range compressionModes {
		t.Run(cm.name, func(t *testing.T) {
			origin := echoServer(t, cm.mode, nil)
			app := &wsFilterApp{wsOptsApp: wsOptsApp{testApp: &testApp{peers: []*upstream.Peer{mustPeer(t, origin.addr)}}}}
			app.filter = func(m *ws.Message) (ws.Action, error) {
				switch s := string(m.Payload); {
				case s == "secret":
					return ws.Drop, nil
				case s == "forbidden":
					return ws.Close(ws.ClosePolicyViolation, "not allowed"), nil
				case m.Direction == ws.FromClient:
					m.Payload = append([]byte("to server: "), m.Payload...)
				default:
					m.Payload = []byte(strings.ToUpper(s))
				}
				return ws.Pass, nil
			}
			addr, _ := startProxy(t, app, proxy.Options{})
			c := dialWS(t, addr, cm.mode)
			c.send(t, websocket.MessageText, []byte("secret"))
			c.send(t, websocket.MessageText, []byte("hello"))
			c.expect(t, websocket.MessageText, []byte("TO SERVER: HELLO"))
			long := strings.Repeat("abc", 1000)
			c.send(t, websocket.MessageText, []byte(long))
			c.expect(t, websocket.MessageText, []byte("TO SERVER: "+strings.ToUpper(long)))
			c.send(t, websocket.MessageText, []byte("forbidden"))
			m := c.next(t)
			var ce websocket.CloseError
			if !errors.As(m.err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "not allowed" {
				t.Fatalf("client saw %v, want close 1008", m.err)
			}
		})
	}
}

// The tunnel ends after the idle timeout, in both modes, and its upstream connection is not
// pooled.
func TestWebSocketIdleTimeout(t *testing.T) {
	for _, filtered := range []bool{false, true} {
		origin := echoServer(t, websocket.CompressionDisabled, nil)
		base := &testApp{peers: []*upstream.Peer{mustPeer(t, origin.addr)}}
		opts := ws.Options{IdleTimeout: 300 * time.Millisecond, Stats: new(ws.Stats)}
		var app proxy.ProxyHTTP[testCtx] = &wsOptsApp{testApp: base, opts: opts}
		if filtered {
			app = &wsFilterApp{wsOptsApp: wsOptsApp{testApp: base, opts: opts}}
		}
		addr, _ := startProxy(t, app, proxy.Options{})
		c := dialWS(t, addr, websocket.CompressionDisabled)
		c.send(t, websocket.MessageText, []byte("still here"))
		c.expect(t, websocket.MessageText, []byte("still here"))
		start := time.Now()
		m := c.next(t)
		if m.err == nil {
			t.Fatalf("filtered %v: got a message instead of the end", filtered)
		}
		if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
			t.Fatalf("filtered %v: ended after %v", filtered, d)
		}
		waitFor(t, func() bool { return base.logged.Load() == 1 })
		if msg, _ := base.lastErr.Load().(string); !strings.Contains(msg, "ReadTimedout") {
			t.Fatalf("logged error %q", msg)
		}
		// A plain request afterwards needs a new upstream connection.
		resp, err := newClient().Get("http://" + addr + "/other")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if n := origin.conns.Load(); n != 2 {
			t.Fatalf("filtered %v: %d upstream connections, want 2 (the upgraded one is never reused)", filtered, n)
		}
	}
}

// An upgrade the server refuses stays a normal response, and the connection serves the next
// request.
func TestWebSocketRefusedUpgrade(t *testing.T) {
	origin := echoServer(t, websocket.CompressionDisabled, nil)
	app := &wsFilterApp{wsOptsApp: wsOptsApp{testApp: &testApp{peers: []*upstream.Peer{mustPeer(t, origin.addr)}}}}
	addr, _ := startProxy(t, app, proxy.Options{})
	c := dial(t, addr)
	io.WriteString(c, "GET /nope HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 403 || string(body) != "denied\n" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	io.WriteString(c, "GET /again HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("second request: %v %v", resp, err)
	}
}

// Bytes that come right behind the handshake, in the same packets as the request and the 101,
// reach the other side in both modes.
func TestWebSocketHandshakeBytes(t *testing.T) {
	for _, filtered := range []bool{false, true} {
		upstreamGot := make(chan string, 1)
		origin := rawOrigin(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			var out bytes.Buffer
			out.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
				"Sec-WebSocket-Accept: " + ws.AcceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n")
			sw := ws.NewWriter(&out, ws.ServerSide, nil)
			sw.WriteMessage(ws.OpText, []byte("server speaks first"), false)
			c.Write(out.Bytes())
			m, err := ws.NewReader(br, ws.ServerSide, nil).ReadMessage()
			if err != nil {
				upstreamGot <- err.Error()
				return
			}
			upstreamGot <- string(m.Payload)
			io.Copy(io.Discard, br)
		})
		base := &testApp{peers: []*upstream.Peer{mustPeer(t, origin)}}
		var app proxy.ProxyHTTP[testCtx] = base
		if filtered {
			app = &wsFilterApp{wsOptsApp: wsOptsApp{testApp: base}}
		}
		addr, _ := startProxy(t, app, proxy.Options{})
		c := dial(t, addr)
		var out bytes.Buffer
		out.WriteString("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
		cw := ws.NewWriter(&out, ws.ClientSide, nil)
		cw.WriteMessage(ws.OpText, []byte("client speaks at once"), false)
		c.Write(out.Bytes())
		br := bufio.NewReader(c)
		head, err := readHead(br)
		if err != nil || !strings.HasPrefix(head, "HTTP/1.1 101 ") || !strings.Contains(head, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") {
			t.Fatalf("head %q %v", head, err)
		}
		m, err := ws.NewReader(br, ws.ClientSide, nil).ReadMessage()
		if err != nil || string(m.Payload) != "server speaks first" {
			t.Fatalf("filtered %v: client read %v %v", filtered, m, err)
		}
		select {
		case got := <-upstreamGot:
			if got != "client speaks at once" {
				t.Fatalf("filtered %v: server read %q", filtered, got)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the server got nothing")
		}
	}
}

// wsChooserApp filters only the sessions whose path is /ws?filter.
type wsChooserApp struct{ wsFilterApp }

func (a *wsChooserApp) FilterWebSocket(s *proxy.Session, _ *testCtx) bool {
	return strings.HasSuffix(string(s.Req().Target()), "?filter")
}

// A session the app's FilterWebSocket declines is relayed unfiltered; one it accepts goes
// through WebSocketMessage.
func TestWebSocketFilterFor(t *testing.T) {
	origin := echoServer(t, websocket.CompressionDisabled, nil)
	app := &wsChooserApp{wsFilterApp{wsOptsApp: wsOptsApp{testApp: &testApp{peers: []*upstream.Peer{mustPeer(t, origin.addr)}}}}}
	app.filter = func(m *ws.Message) (ws.Action, error) {
		if m.Direction == ws.FromServer {
			m.Payload = []byte(strings.ToUpper(string(m.Payload)))
		}
		return ws.Pass, nil
	}
	addr, _ := startProxy(t, app, proxy.Options{})
	c := dialWS(t, addr, websocket.CompressionDisabled)
	c.send(t, websocket.MessageText, []byte("raw"))
	c.expect(t, websocket.MessageText, []byte("raw"))
	c.c.Close(websocket.StatusNormalClosure, "")

	fc := dialWSPath(t, addr, "/ws?filter", websocket.CompressionDisabled)
	fc.send(t, websocket.MessageText, []byte("filtered"))
	fc.expect(t, websocket.MessageText, []byte("FILTERED"))
}

// An upgrade that comes after other requests on a busy kept-alive connection (served inside
// the held wait for the next request) is served outside it, as its tunnel reads the
// connection: the WebSocket works.
func TestWebSocketAfterRequestsOnOneConnection(t *testing.T) {
	origin := echoServer(t, websocket.CompressionDisabled, nil)
	addr, _ := startProxy(t, &testApp{peers: []*upstream.Peer{mustPeer(t, origin.addr)}}, proxy.Options{})
	c := dial(t, addr)
	br := bufio.NewReader(c)
	for _, path := range []string{"/a", "/b", "/c"} {
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
	}
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	head, err := readHead(br)
	if err != nil || !strings.HasPrefix(head, "HTTP/1.1 101 ") {
		t.Fatalf("head %q %v", head, err)
	}
	cw := ws.NewWriter(c, ws.ClientSide, nil)
	rd := ws.NewReader(br, ws.ClientSide, nil)
	for _, msg := range []string{"one", "two"} {
		if err := cw.WriteMessage(ws.OpText, []byte(msg), false); err != nil {
			t.Fatal(err)
		}
		m, err := rd.ReadMessage()
		if err != nil || string(m.Payload) != msg {
			t.Fatalf("echo of %q: %v %v", msg, m, err)
		}
	}
}
