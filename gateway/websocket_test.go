package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pingora-go/pingora/internal/testbin"
)

// startEcho runs a WebSocket server that echoes every message.
func startEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: bound, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		for {
			typ, data, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if err := c.Write(context.Background(), typ, data); err != nil {
				return
			}
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

const wsConf = `
listeners:
  - address: {{LISTEN}}
upstreams:
  echo:
    backends: [{{ECHO}}]
services:
  web:
    routes:
      - name: closed
        match: {path_prefix: /closed}
        websocket: false
        upstream: echo
      - name: rules
        match: {path_prefix: /rules}
        websocket:
          origins: ["https://app.example.com", "https://*.example.org"]
          max_message_size: 1KiB
          message_rate: 5
          deny: ["(?i)drop table"]
        upstream: echo
      - name: dropper
        match: {path_prefix: /dropper}
        websocket:
          deny: ["^secret"]
          on_deny: drop
        upstream: echo
      - name: idle
        match: {path_prefix: /idle}
        websocket: {idle_timeout: 300ms}
        upstream: echo
      - name: open
        match: {path_prefix: /}
        upstream: echo
`

// wsDial opens a session through the gateway; origin "" sends none.
func wsDial(t *testing.T, url, origin string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	if c != nil {
		c.SetReadLimit(1 << 20)
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

// echo sends msg and returns what comes back, or the error that ended the session.
func echo(c *websocket.Conn, msg string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		return "", err
	}
	_, b, err := c.Read(ctx)
	return string(b), err
}

func closeCode(err error) websocket.StatusCode {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

func TestWebSocketRules(t *testing.T) {
	echoAddr := startEcho(t)
	listen := testbin.FreeAddr(t)
	path := writeFile(t, t.TempDir(), expand(wsConf, map[string]string{"LISTEN": listen, "ECHO": echoAddr}))
	serve(t, path)
	base := "ws://" + listen

	t.Run("allowed by default", func(t *testing.T) {
		c, _, err := wsDial(t, base+"/anything", "https://evil.example")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := echo(c, "hi"); got != "hi" || err != nil {
			t.Fatalf("%q %v", got, err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		_, resp, err := wsDial(t, base+"/closed", "")
		if err == nil || resp == nil || resp.StatusCode != 403 {
			t.Fatalf("%v %v", resp, err)
		}
	})
	t.Run("origins", func(t *testing.T) {
		for origin, ok := range map[string]bool{
			"https://app.example.com":      true,
			"HTTPS://APP.EXAMPLE.COM":      true,
			"https://eu.example.org":       true,
			"https://example.org":          false,
			"https://a.b.example.org":      false,
			"https://evil.example.com":     false,
			"http://app.example.com":       false,
			"https://app.example.com:8443": false,
			"":                             true, // not a browser
		} {
			c, resp, err := wsDial(t, base+"/rules", origin)
			if ok != (err == nil) {
				t.Errorf("origin %q: %v", origin, err)
			}
			if !ok && (resp == nil || resp.StatusCode != 403) {
				t.Errorf("origin %q: %v", origin, resp)
			}
			if c != nil {
				c.Close(websocket.StatusNormalClosure, "")
			}
		}
	})
	t.Run("max message size", func(t *testing.T) {
		c, _, err := wsDial(t, base+"/rules", "https://app.example.com")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := echo(c, strings.Repeat("a", 1000)); len(got) != 1000 || err != nil {
			t.Fatalf("%d %v", len(got), err)
		}
		_, err = echo(c, strings.Repeat("a", 2000))
		if closeCode(err) != websocket.StatusMessageTooBig {
			t.Fatalf("%v, want close 1009", err)
		}
	})
	t.Run("deny closes", func(t *testing.T) {
		c, _, err := wsDial(t, base+"/rules", "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = echo(c, "1; DROP TABLE users")
		if closeCode(err) != websocket.StatusPolicyViolation {
			t.Fatalf("%v, want close 1008", err)
		}
	})
	t.Run("message rate", func(t *testing.T) {
		c, _, err := wsDial(t, base+"/rules", "")
		if err != nil {
			t.Fatal(err)
		}
		// A burst of 5 passes; the sixth message at once is over the rate.
		for i := range 5 {
			if got, err := echo(c, "m"); got != "m" || err != nil {
				t.Fatalf("message %d: %q %v", i, got, err)
			}
		}
		_, err = echo(c, "m")
		if closeCode(err) != websocket.StatusPolicyViolation {
			t.Fatalf("%v, want close 1008", err)
		}
	})
	t.Run("deny drops", func(t *testing.T) {
		c, _, err := wsDial(t, base+"/dropper", "")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		c.Write(ctx, websocket.MessageText, []byte("secret plans"))
		if got, err := echo(c, "public"); got != "public" || err != nil {
			t.Fatalf("%q %v: the dropped message came back or the session ended", got, err)
		}
	})
	t.Run("idle timeout", func(t *testing.T) {
		c, _, err := wsDial(t, base+"/idle", "")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		_, _, err = c.Read(ctx)
		if err == nil || time.Since(start) > bound/2 {
			t.Fatalf("%v after %v", err, time.Since(start))
		}
	})
}

func TestWebSocketConfigErrors(t *testing.T) {
	for _, tt := range []struct{ ws, want string }{
		{`"yes"`, "true, false or a mapping"},
		{`{origins: ["example.com"]}`, "origins[0]"},
		{`{origins: ["https://a.*.example.com"]}`, "one wildcard"},
		{`{deny: ["("]}`, "deny[0]"},
		{`{on_deny: ignore}`, "want close or drop"},
		{`{message_burst: 3}`, "a burst needs message_rate"},
		{`{message_rate: -1}`, "not negative"},
		{`{max_message_size: lots}`, "want a size"},
	} {
		conf := "listeners: [{address: 127.0.0.1:1}]\nservices:\n  web:\n    routes:\n      - respond: {body: x}\n        websocket: " + tt.ws + "\n"
		_, err := Parse([]byte(conf), "")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("websocket: %s: %v, want %q", tt.ws, err, tt.want)
		}
	}
	c, err := Parse([]byte("listeners: [{address: 127.0.0.1:1}]\nservices:\n  web:\n    routes:\n      - respond: {body: x}\n        websocket: false\n"), "")
	if err != nil || *c.Services["web"].Routes[0].WebSocket.Allow {
		t.Fatalf("websocket: false: %v", err)
	}
}
