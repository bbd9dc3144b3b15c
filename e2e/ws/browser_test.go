// Package wse2e tests WebSocket proxying end to end with a real browser: headless Chromium
// loads a page through the proxy, opens a WebSocket through it, and writes what came back
// into the page, which the test reads. Chromium missing skips the test, unless the
// environment variable CI is set.
package wse2e

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pingora-go/pingora/internal/testserve"
	"github.com/pingora-go/pingora/protocols/ws"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
	"github.com/pingora-go/pingora/upstream"
)

// page opens a WebSocket to the host it came from, sends text (short, long, non-ASCII) and
// binary messages, and writes what it received into #out; then it closes with 4000.
const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>ws</title></head><body>
<pre id="out">pending</pre>
<script>
const out = document.getElementById('out');
const sock = new WebSocket('ws://' + location.host + '/ws');
sock.binaryType = 'arraybuffer';
const got = [];
sock.onopen = () => {
  sock.send('hello');
  sock.send('x'.repeat(5000));
  sock.send('ünïcödé 🚀');
  sock.send(new Uint8Array([1, 2, 3]));
};
sock.onmessage = (e) => {
  if (typeof e.data === 'string') {
    got.push(e.data.length > 100 ? 'long:' + e.data.length + ':' + e.data.slice(-13) : e.data);
  } else {
    got.push('binary:' + new Uint8Array(e.data).join(','));
  }
  if (got.length === 4) {
    out.textContent = got.join('|');
    sock.close(4000, 'done');
  }
};
sock.onerror = () => { out.textContent = 'websocket error'; };
</script>
<img src="/wait" alt="">
</body></html>`

// origin serves the page, a WebSocket echo at /ws (compression on, as browsers offer it), and
// /wait, which answers once a session ended, so that the page's load event (after which
// Chromium dumps the DOM) comes after the exchange.
type origin struct {
	once    sync.Once
	ended   chan struct{}
	mu      sync.Mutex
	closeBy websocket.StatusCode
	exts    string
}

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	case "/wait":
		select {
		case <-o.ended:
		case <-time.After(30 * time.Second):
		}
		w.WriteHeader(http.StatusNoContent)
	case "/ws":
		o.mu.Lock()
		o.exts = r.Header.Get("Sec-WebSocket-Extensions")
		o.mu.Unlock()
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionContextTakeover})
		if err != nil {
			return
		}
		defer c.CloseNow()
		defer o.once.Do(func() { close(o.ended) })
		for {
			typ, data, err := c.Read(context.Background())
			if err != nil {
				o.mu.Lock()
				o.closeBy = websocket.CloseStatus(err)
				o.mu.Unlock()
				return
			}
			if err := c.Write(context.Background(), typ, data); err != nil {
				return
			}
		}
	default:
		http.NotFound(w, r)
	}
}

// app proxies everything to one peer; its filter marks the text the server sends.
type app struct {
	proxy.Defaults[struct{}]
	peer       *upstream.Peer
	compressed atomic.Int64 // messages that arrived compressed
}

func (a *app) NewCtx() struct{} { return struct{}{} }

func (a *app) UpstreamPeer(*proxy.Session, *struct{}) (*upstream.Peer, error) { return a.peer, nil }

func (a *app) WebSocketMessage(_ *proxy.Session, _ *struct{}, m *ws.Message) (ws.Action, error) {
	if m.Compressed {
		a.compressed.Add(1)
	}
	if m.Direction == ws.FromServer && m.Opcode == ws.OpText && len(m.Payload) < 100 {
		m.Payload = append([]byte(nil), string(m.Payload)+" (via proxy)"...)
	}
	return ws.Pass, nil
}

func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (CI is set, so this test may not skip)")
	}
	t.Skip("chromium is not installed")
	return ""
}

func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

func startProxy(t *testing.T, a *app) string {
	t.Helper()
	quiet := testserve.Quiet()
	svc := server.NewListeningService("proxy", proxy.New[struct{}](a, proxy.Options{Logger: quiet}))
	svc.SetLogger(quiet)
	addr := testserve.Listen(t, svc)
	testserve.Run(t, testserve.Options{Logger: quiet}, svc)
	return addr
}

func TestBrowserThroughProxy(t *testing.T) {
	bin := chromium(t)
	o := &origin{ended: make(chan struct{})}
	peer, err := upstream.NewPeer(serve(t, o), false, "")
	if err != nil {
		t.Fatal(err)
	}
	a := &app{peer: peer}
	addr := startProxy(t, a)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=20000", "--dump-dom", "http://"+addr+"/")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	dom, err := cmd.Output()
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("chromium did not finish: %s", stderr.String())
		}
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	want := `<pre id="out">hello (via proxy)|long:5000:xxxxxxxxxxxxx|ünïcödé 🚀 (via proxy)|binary:1,2,3</pre>`
	if !strings.Contains(string(dom), want) {
		t.Fatalf("page shows:\n%s\nwant %s", dom, want)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closeBy != 4000 {
		t.Fatalf("the server saw close %d, want 4000", o.closeBy)
	}
	if !strings.Contains(o.exts, "permessage-deflate") {
		t.Fatalf("the browser offered %q, not permessage-deflate", o.exts)
	}
	if a.compressed.Load() == 0 {
		t.Fatal("no message was compressed: permessage-deflate was not relayed")
	}
}
