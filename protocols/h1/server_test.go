package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/perr"
)

// handler answers one request on a server session.
type handler func(t *testing.T, s *ServerSession)

// echoHandler answers with the method, the target and the request body.
func echoHandler(t *testing.T, s *ServerSession) {
	body := readBody(t, s.ReadBody)
	out := string(s.Req.Method()) + " " + string(s.Req.Target()) + " " + string(body)
	resp := header.NewResponse(200)
	resp.Append("Content-Length", itoa(len(out)))
	writeResponse(t, s, resp, out)
}

func readBody(t *testing.T, next func() ([]byte, error)) []byte {
	t.Helper()
	var body []byte
	for {
		p, err := next()
		body = append(body, p...)
		if err == io.EOF {
			return body
		}
		if err != nil {
			t.Errorf("reading body: %v", err)
			return body
		}
	}
}

func writeResponse(t *testing.T, s *ServerSession, resp *header.ResponseHeader, body string) {
	t.Helper()
	if err := s.WriteResponseHeader(resp); err != nil {
		t.Errorf("WriteResponseHeader: %v", err)
		return
	}
	if body != "" {
		if err := s.WriteBody([]byte(body)); err != nil {
			t.Errorf("WriteBody: %v", err)
		}
	}
	if err := s.FinishResponse(nil); err != nil {
		t.Errorf("FinishResponse: %v", err)
	}
}

// serve runs the usual server loop on s until the connection should end, and returns the
// error that ended it (nil for a clean io.EOF or a decision to close). The caller closes s.
func serve(t *testing.T, s *ServerSession, h handler) error {
	for {
		err := s.ReadRequest()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if code := perr.StatusFor(err); code != 0 {
				s.RespondError(code)
			}
			return err
		}
		h(t, s)
		if !s.Finish() {
			return nil
		}
	}
}

// startServer listens on loopback and serves one connection with h. The returned channel
// yields serve's result.
func startServer(t *testing.T, opts *ServerOptions, h handler) (net.Conn, <-chan error) {
	t.Helper()
	return startServerOpts(t, opts, nil, h)
}

// startServerWith is startServer with the accepted connection wrapped by wrap.
func startServerWith(t *testing.T, wrap func(net.Conn) net.Conn, h handler) (net.Conn, <-chan error) {
	t.Helper()
	return startServerOpts(t, nil, wrap, h)
}

func startServerOpts(t *testing.T, opts *ServerOptions, wrap func(net.Conn) net.Conn, h handler) (net.Conn, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		if wrap != nil {
			conn = wrap(conn)
		}
		s := NewServerSession(conn, opts)
		done <- serve(t, s, h)
		s.Close() // may linger until the client closes: report first
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, done
}

func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("server did not finish")
		return nil
	}
}

// readResp reads one response with net/http, an independent parser, and its whole body.
func readResp(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("ReadResponse: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response body: %v", err)
	}
	resp.Body.Close()
	return resp, string(body)
}

func expectClosed(t *testing.T, br *bufio.Reader) {
	t.Helper()
	if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
		t.Fatalf("connection not closed cleanly: %q, %v", rest, err)
	}
}

func TestServerKeepAlive(t *testing.T) {
	c, done := startServer(t, nil, echoHandler)
	br := bufio.NewReader(c)
	for i, req := range []string{
		"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody",
		"POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n",
	} {
		io.WriteString(c, req)
		resp, body := readResp(t, br, "GET")
		want := []string{"GET /1 ", "POST /2 body", "POST /3 abc"}[i]
		if body != want || resp.Close || resp.Header.Get("Date") == "" {
			t.Fatalf("request %d: body %q close %v date %q", i, body, resp.Close, resp.Header.Get("Date"))
		}
	}
	c.(*net.TCPConn).CloseWrite()
	expectClosed(t, br)
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
}

func TestServerConnectionPersistence(t *testing.T) {
	tests := []struct {
		name    string
		opts    *ServerOptions
		reqs    []string
		proto   string // protocol of the responses
		conn    []string
		closeAt int // index of the response after which the server closes
	}{
		{"1.0 default closes", nil,
			[]string{"GET / HTTP/1.0\r\n\r\n"}, "HTTP/1.1", []string{"close"}, 0},
		{"1.0 keep-alive", nil,
			[]string{"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "GET / HTTP/1.0\r\n\r\n"},
			"HTTP/1.0", []string{"keep-alive", "close"}, 1},
		{"1.1 Connection: close", nil,
			[]string{"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"}, "HTTP/1.1", []string{"close"}, 0},
		{"1.1 close token in list", nil,
			[]string{"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, Close\r\n\r\n"}, "HTTP/1.1", []string{"close"}, 0},
		{"MaxRequests", &ServerOptions{MaxRequests: 2},
			[]string{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"},
			"HTTP/1.1", []string{"", "close"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, done := startServer(t, tt.opts, echoHandler)
			br := bufio.NewReader(c)
			for i, req := range tt.reqs {
				io.WriteString(c, req)
				resp, body := readResp(t, br, "GET")
				if body != "GET / " {
					t.Fatalf("response %d body %q", i, body)
				}
				got := resp.Header.Get("Connection")
				if resp.Close { // net/http moves "close" out of the header
					got = "close"
				}
				if got != tt.conn[i] {
					t.Fatalf("response %d Connection %q, want %q", i, got, tt.conn[i])
				}
				if i == tt.closeAt {
					expectClosed(t, br)
					break
				}
			}
			if err := wait(t, done); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestServerPipelined(t *testing.T) {
	c, done := startServer(t, nil, echoHandler)
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"+
		"POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyz"+
		"\r\nGET /c HTTP/1.1\r\nHost: a\r\n\r\n"+
		"GET /d HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	br := bufio.NewReader(c)
	for _, want := range []string{"GET /a ", "POST /b xyz", "GET /c ", "GET /d "} {
		if _, body := readResp(t, br, "GET"); body != want {
			t.Fatalf("body %q, want %q", body, want)
		}
	}
	expectClosed(t, br)
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
}

func TestServerExpectContinue(t *testing.T) {
	c, done := startServer(t, nil, echoHandler)
	br := bufio.NewReader(c)
	io.WriteString(c, "PUT /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("first line %q, %v; want a 100 Continue", line, err)
	}
	if l, _ := br.ReadString('\n'); l != "\r\n" {
		t.Fatalf("100 Continue head not ended: %q", l)
	}
	io.WriteString(c, "hello")
	if resp, body := readResp(t, br, "PUT"); body != "PUT /up hello" || resp.Close {
		t.Fatalf("body %q close %v", body, resp.Close)
	}
	c.(*net.TCPConn).CloseWrite()
	expectClosed(t, br)
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
}

// TestServerExpectContinueRejected: a final response before the body is read must not send
// 100 and must close, since the client may or may not send the body.
func TestServerExpectContinueRejected(t *testing.T) {
	c, done := startServer(t, nil, func(t *testing.T, s *ServerSession) {
		resp := header.NewResponse(413)
		resp.Append("Content-Length", "0")
		writeResponse(t, s, resp, "")
	})
	io.WriteString(c, "PUT /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5000000\r\n\r\n")
	br := bufio.NewReader(c)
	if resp, _ := readResp(t, br, "PUT"); resp.StatusCode != 413 || !resp.Close {
		t.Fatalf("status %d close %v; want 413 and close", resp.StatusCode, resp.Close)
	}
	expectClosed(t, br)
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
}

// rawExchange sends req to a server running h and returns everything the server wrote until
// it closed.
func rawExchange(t *testing.T, opts *ServerOptions, h handler, req string) string {
	t.Helper()
	c, done := startServer(t, opts, h)
	io.WriteString(c, req)
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// streamHandler writes a response of unknown length in two pieces.
func streamHandler(status int) handler {
	return func(t *testing.T, s *ServerSession) {
		resp := header.NewResponse(status)
		resp.Append("X-Kind", "stream")
		if err := s.WriteResponseHeader(resp); err != nil {
			t.Error(err)
			return
		}
		s.WriteBody([]byte("hello "))
		s.WriteBody([]byte("world"))
		if err := s.FinishResponse(nil); err != nil {
			t.Error(err)
		}
	}
}

func TestServerResponseFraming(t *testing.T) {
	tests := []struct {
		name, req string
		status    int
		want      string // the response after the Date line
		head      string // the response up to the Date line
	}{
		{"chunked to 1.1", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 200,
			"HTTP/1.1 200 OK\r\nX-Kind: stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n",
			"\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"},
		{"close-delimited to 1.0", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 200,
			"HTTP/1.1 200 OK\r\nX-Kind: stream\r\nConnection: close\r\n", "\r\nhello world"},
		{"HEAD has no body", "HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 200,
			"HTTP/1.1 200 OK\r\nX-Kind: stream\r\nConnection: close\r\n", "\r\n"},
		{"204 has no body", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 204,
			"HTTP/1.1 204 No Content\r\nX-Kind: stream\r\nConnection: close\r\n", "\r\n"},
		{"304 has no body", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 304,
			"HTTP/1.1 304 Not Modified\r\nX-Kind: stream\r\nConnection: close\r\n", "\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := rawExchange(t, nil, streamHandler(tt.status), tt.req)
			head, rest, ok := strings.Cut(out, "Date: ")
			if !ok {
				t.Fatalf("no Date in %q", out)
			}
			_, rest, _ = strings.Cut(rest, "\r\n")
			if head != tt.want || rest != tt.head {
				t.Fatalf("response %q, want %q + Date + %q", out, tt.want, tt.head)
			}
		})
	}
}

// TestServerNoBodyKeepsConnection: for HEAD, 204 and 304 the body bytes a handler writes are
// dropped, so the next response on the connection is read correctly.
func TestServerNoBodyKeepsConnection(t *testing.T) {
	for _, tc := range []struct {
		method string
		status int
	}{{"HEAD", 200}, {"GET", 204}, {"GET", 304}} {
		c, done := startServer(t, nil, func(t *testing.T, s *ServerSession) {
			status := tc.status
			if s.Req.IsMethod("GET") && string(s.Req.Target()) == "/next" {
				status = 200
			}
			resp := header.NewResponse(status)
			resp.Append("Content-Length", "5")
			writeResponse(t, s, resp, "12345")
		})
		io.WriteString(c, tc.method+" / HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		br := bufio.NewReader(c)
		if resp, body := readResp(t, br, tc.method); resp.StatusCode != tc.status || body != "" {
			t.Fatalf("%s %d: got %d %q", tc.method, tc.status, resp.StatusCode, body)
		}
		if resp, body := readResp(t, br, "GET"); resp.StatusCode != 200 || body != "12345" {
			t.Fatalf("after %s %d: got %d %q", tc.method, tc.status, resp.StatusCode, body)
		}
		expectClosed(t, br)
		if err := wait(t, done); err != nil {
			t.Fatal(err)
		}
	}
}

func TestServerGracefulClose(t *testing.T) {
	out := rawExchange(t, nil, func(t *testing.T, s *ServerSession) {
		s.SetKeepAlive(false)
		resp := header.NewResponse(200)
		resp.Append("Content-Length", "2")
		resp.Append("Connection", "keep-alive")
		writeResponse(t, s, resp, "ok")
	}, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if !strings.Contains(out, "\r\nConnection: close\r\n") || strings.Contains(out, "keep-alive") || !strings.HasSuffix(out, "\r\n\r\nok") {
		t.Fatalf("response %q: want Connection: close and the body", out)
	}
}

func TestServerIdleTimeout(t *testing.T) {
	c, done := startServer(t, &ServerOptions{IdleTimeout: 50 * time.Millisecond}, echoHandler)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	br := bufio.NewReader(c)
	readResp(t, br, "GET")
	// Then stay silent: the server ends the connection quietly (serve sees io.EOF).
	expectClosed(t, br)
	if err := wait(t, done); err != nil {
		t.Fatalf("idle timeout ended with %v, want a quiet close", err)
	}
}

func TestServerHeadTimeout(t *testing.T) {
	c, done := startServer(t, &ServerOptions{HeadTimeout: 50 * time.Millisecond}, echoHandler)
	io.WriteString(c, "GET / HTTP/1.1\r\nHo")
	err := wait(t, done)
	if e, ok := perr.As(err); !ok || e.Type != perr.ReadTimedout || e.Source != perr.Downstream {
		t.Fatalf("slow head ended with %v, want a downstream ReadTimedout", err)
	}
}

// TestServerMalformedBeforeHeadEnd: a head whose complete lines are already malformed is
// refused with 400 as soon as they arrive, without waiting for the rest of the head (the
// HeadTimeout here is far longer than the test's bound). A partial head whose lines are
// fine so far is still waited for, and then served.
func TestServerMalformedBeforeHeadEnd(t *testing.T) {
	c, done := startServer(t, &ServerOptions{HeadTimeout: time.Minute}, echoHandler)
	io.WriteString(c, "GET /\r\nHost: a\r\n")
	select {
	case err := <-done:
		if code := perr.StatusFor(err); code != 400 {
			t.Fatalf("ended with %v (status %d), want 400", err, code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a malformed request line waited for the end of its head")
	}
	if resp, _ := readResp(t, bufio.NewReader(c), "GET"); resp.StatusCode != 400 {
		t.Fatalf("answered %d, want 400", resp.StatusCode)
	}

	c, _ = startServer(t, &ServerOptions{HeadTimeout: time.Minute}, echoHandler)
	io.WriteString(c, "GET /in-parts HTTP/1.1\r\nHo")
	time.Sleep(20 * time.Millisecond)
	io.WriteString(c, "st: a\r\n\r\n")
	if _, body := readResp(t, bufio.NewReader(c), "GET"); body != "GET /in-parts " {
		t.Fatalf("answered %q", body)
	}
}

func TestServerBodyReadTimeout(t *testing.T) {
	var bodyErr error
	c, done := startServer(t, &ServerOptions{ReadTimeout: 50 * time.Millisecond}, func(t *testing.T, s *ServerSession) {
		for bodyErr == nil {
			_, bodyErr = s.ReadBody()
		}
	})
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
	wait(t, done)
	if e, ok := perr.As(bodyErr); !ok || e.Type != perr.ReadTimedout {
		t.Fatalf("stalled body ended with %v, want ReadTimedout", bodyErr)
	}
}

func TestServerRejectsMalformed(t *testing.T) {
	tests := []struct {
		name, req string
		status    int
	}{
		{"smuggling CL+TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"bare LF", "GET / HTTP/1.1\nHost: a\n\n", 400},
		{"version", "GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505},
		{"TE gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"long request line", "GET /" + strings.Repeat("x", 9000), 414},
		{"head too large", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: "+strings.Repeat("y", 90)+"\r\n", 30), 431},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, done := startServer(t, &ServerOptions{Limits: Limits{MaxHeadSize: 2048}}, func(t *testing.T, s *ServerSession) {
				t.Errorf("handler called for %q", tt.req)
			})
			io.WriteString(c, tt.req)
			br := bufio.NewReader(c)
			resp, _ := readResp(t, br, "GET")
			if resp.StatusCode != tt.status || !resp.Close {
				t.Fatalf("status %d close %v, want %d and close", resp.StatusCode, resp.Close, tt.status)
			}
			expectClosed(t, br)
			if got := perr.StatusFor(wait(t, done)); got != tt.status {
				t.Fatalf("session error maps to %d, want %d", got, tt.status)
			}
		})
	}
}

// TestServerHeadFillsBuffer: a head that exactly fills the pooled buffer, followed by a body.
func TestServerHeadFillsBuffer(t *testing.T) {
	head := "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX-Pad: "
	head += strings.Repeat("p", BufferSize-len(head)-4) + "\r\n\r\n"
	if len(head) != BufferSize {
		t.Fatalf("head is %d bytes", len(head))
	}
	c, done := startServer(t, nil, func(t *testing.T, s *ServerSession) {
		body := readBody(t, s.ReadBody)
		resp := header.NewResponse(200)
		resp.Append("Content-Length", itoa(len(body)))
		writeResponse(t, s, resp, string(body))
	})
	io.WriteString(c, head)
	time.Sleep(10 * time.Millisecond) // let the head arrive alone, as one read
	io.WriteString(c, "hello")
	if _, body := readResp(t, bufio.NewReader(c), "POST"); body != "hello" {
		t.Fatalf("body %q", body)
	}
	c.Close()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
}

func TestServerTrailers(t *testing.T) {
	var got string
	out := rawExchange(t, nil, func(t *testing.T, s *ServerSession) {
		body := readBody(t, s.ReadBody)
		got = string(body) + "|" + fieldDump(s.Trailers())
		resp := header.NewResponse(200)
		resp.Append("Trailer", "X-Sum")
		if err := s.WriteResponseHeader(resp); err != nil {
			t.Error(err)
		}
		s.WriteBody([]byte("data"))
		var tr header.Fields
		tr.Append("X-Sum", "42")
		if err := s.FinishResponse(&tr); err != nil {
			t.Error(err)
		}
	}, "POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-In: 1\r\nx-in2: 2\r\n\r\n")
	if got != "abc|X-In=1|x-in2=2" {
		t.Fatalf("server read %q", got)
	}
	if !strings.HasSuffix(out, "\r\n\r\n4\r\ndata\r\n0\r\nX-Sum: 42\r\n\r\n") {
		t.Fatalf("response %q does not end with trailers", out)
	}
}

func TestServerHijackAfter101(t *testing.T) {
	c, done := startServer(t, nil, func(t *testing.T, s *ServerSession) {
		if !s.IsUpgradeRequest() {
			t.Error("not seen as an upgrade request")
		}
		resp := header.NewResponse(101)
		resp.Append("Upgrade", "echo")
		resp.Append("Connection", "Upgrade")
		if err := s.WriteResponseHeader(resp); err != nil {
			t.Error(err)
		}
		conn, rest := s.Hijack()
		// Echo what came with the head, then one more message.
		conn.Write(bytes.ToUpper(rest))
		buf := make([]byte, 5)
		if _, err := io.ReadFull(conn, buf); err != nil {
			t.Error(err)
		}
		conn.Write(bytes.ToUpper(buf))
	})
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nearly")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 || resp.Header.Get("Connection") != "Upgrade" {
		t.Fatalf("response %v, %v", resp, err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "EARLY" {
		t.Fatalf("echo of early bytes %q, %v", buf, err)
	}
	io.WriteString(c, "later")
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "LATER" {
		t.Fatalf("echo %q, %v", buf, err)
	}
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
}

func TestServerSecondFinalHead(t *testing.T) {
	rawExchange(t, nil, func(t *testing.T, s *ServerSession) {
		hint := header.NewResponse(103)
		hint.Append("Link", "</a.css>; rel=preload")
		if err := s.WriteResponseHeader(hint); err != nil {
			t.Error(err)
		}
		resp := header.NewResponse(200)
		resp.Append("Content-Length", "0")
		writeResponse(t, s, resp, "")
		if err := s.WriteResponseHeader(resp); !errors.Is(err, ErrHeadAlreadySent) {
			t.Errorf("second final head: %v", err)
		}
	}, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
}

// TestServerReadRequestQuietEnd: a client that goes away, or stays silent past the idle
// timeout, before sending a byte ends the session with io.EOF.
func TestServerReadRequestQuietEnd(t *testing.T) {
	tests := []struct {
		name   string
		client func(net.Conn)
	}{
		{"idle timeout", func(net.Conn) {}},
		{"client closes", func(c net.Conn) { c.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, cli := net.Pipe()
			defer cli.Close()
			s := NewServerSession(srv, &ServerOptions{IdleTimeout: 20 * time.Millisecond})
			defer s.Close()
			tt.client(cli)
			if err := s.ReadRequest(); err != io.EOF {
				t.Fatalf("ReadRequest = %v, want io.EOF", err)
			}
		})
	}
}

func TestServerClientGoneMidHead(t *testing.T) {
	srv, cli := net.Pipe()
	s := NewServerSession(srv, nil)
	defer s.Close()
	go func() {
		io.WriteString(cli, "GET / HTTP/1.1\r\nHo")
		cli.Close()
	}()
	err := s.ReadRequest()
	if e, ok := perr.As(err); !ok || e.Type != perr.ConnectionClosed || perr.StatusFor(err) != 0 {
		t.Fatalf("ReadRequest = %v, want a ConnectionClosed that is answered with nothing", err)
	}
}

func TestServerConnectTunnel(t *testing.T) {
	c, done := startServer(t, nil, func(t *testing.T, s *ServerSession) {
		if !s.Req.IsMethod("CONNECT") || string(s.Req.Target()) != "db.internal:5432" {
			t.Errorf("request %q", s.Req.String())
		}
		if err := s.WriteResponseHeader(header.NewResponse(200)); err != nil {
			t.Error(err)
		}
		conn, rest := s.Hijack()
		buf := make([]byte, 4-len(rest))
		io.ReadFull(conn, buf)
		conn.Write(append(rest, buf...))
	})
	io.WriteString(c, "CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\nping")
	br := bufio.NewReader(c)
	line, _ := br.ReadString('\n')
	if line != "HTTP/1.1 200 OK\r\n" {
		t.Fatalf("status line %q", line)
	}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.EqualFold(l, "Transfer-Encoding: chunked\r\n") || strings.HasPrefix(l, "Content-Length") {
			t.Fatalf("tunnel response has framing %q", l)
		}
		if l == "\r\n" {
			break
		}
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("tunnel echo %q, %v", buf, err)
	}
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
}

// TestServerKeepsOtherTransferCodings: a response that carries a transfer coding other than
// chunked (as an upstream's gzip) is sent to a 1.1 client with chunked added as the last one.
func TestServerKeepsOtherTransferCodings(t *testing.T) {
	out := rawExchange(t, nil, func(t *testing.T, s *ServerSession) {
		resp := header.NewResponse(200)
		resp.Append("Transfer-Encoding", "gzip")
		writeResponse(t, s, resp, "GZ")
	}, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if !strings.Contains(out, "\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n") ||
		!strings.HasSuffix(out, "\r\n\r\n2\r\nGZ\r\n0\r\n\r\n") {
		t.Fatalf("response %q", out)
	}
	var resp header.ResponseHeader
	n, err := ParseResponse([]byte(out), &resp, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f, _, _ := ResponseFraming(&resp, false, false, false); f.Kind != BodyChunked {
		t.Fatalf("a client would read the response as %v (%q)", f.Kind, out[:n])
	}
}

// TestServerRejectsMalformedChunkedBody: a request whose chunked body is malformed fails the
// body read with a downstream error answered 400, the answer says Connection: close, and the
// connection closes, so nothing the client sent after the bad chunk is read as a request.
func TestServerRejectsMalformedChunkedBody(t *testing.T) {
	const head = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	const next = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
	tests := []struct{ name, body string }{
		{"negative size", "-1\r\nx\r\n0\r\n\r\n"},
		{"non-hex size", "zz\r\nx\r\n0\r\n\r\n"},
		{"0x prefix", "0x1\r\nx\r\n0\r\n\r\n"},
		{"overflowing size", "10000000000000000\r\nx\r\n0\r\n\r\n"},
		{"bad extension", "1;a@b\r\nx\r\n0\r\n\r\n"},
		{"unterminated quoted extension", "1;a=\"b\r\nx\r\n0\r\n\r\n"},
		{"bare LF after size", "1\nx\r\n0\r\n\r\n"},
		{"data longer than size", "1\r\nxy\r\n0\r\n\r\n"},
		{"trailer obs-fold", "1\r\nx\r\n0\r\nA: b\r\n c\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			var bodyErr error
			c, done := startServer(t, nil, func(t *testing.T, s *ServerSession) {
				if calls++; calls > 1 {
					t.Errorf("request %q read after a malformed chunked body", s.Req.Target())
					return
				}
				for bodyErr == nil {
					_, bodyErr = s.ReadBody()
				}
				if bodyErr == io.EOF {
					t.Errorf("malformed chunked body %q accepted", tt.body)
					return
				}
				if err := s.RespondError(perr.StatusFor(bodyErr)); err != nil {
					t.Error(err)
				}
			})
			io.WriteString(c, head+tt.body+next)
			br := bufio.NewReader(c)
			resp, _ := readResp(t, br, "POST")
			if resp.StatusCode != 400 || !resp.Close {
				t.Fatalf("status %d close %v, want 400 and close", resp.StatusCode, resp.Close)
			}
			expectClosed(t, br)
			if err := wait(t, done); err != nil {
				t.Fatal(err)
			}
			if e, ok := perr.As(bodyErr); !ok || e.Source != perr.Downstream || !errors.Is(bodyErr, perr.InvalidHTTPHeader) {
				t.Fatalf("body error %v, want a downstream InvalidHTTPHeader", bodyErr)
			}
		})
	}
}

// TestServerWriteTimeout: a client that stops reading fails the response body write with a
// downstream WriteTimedout once the socket buffers are full, and the connection is not kept.
func TestServerWriteTimeout(t *testing.T) {
	var writeErr error
	var keep bool
	c, done := startServer(t, &ServerOptions{WriteTimeout: 100 * time.Millisecond}, func(t *testing.T, s *ServerSession) {
		resp := header.NewResponse(200)
		resp.Append("Content-Length", itoa(1<<30))
		if err := s.WriteResponseHeader(resp); err != nil {
			t.Error(err)
			return
		}
		piece := make([]byte, 1<<20)
		// The loopback socket buffers hold a few MiB at most: 1 GiB cannot fit.
		for i := 0; i < 1<<10 && writeErr == nil; i++ {
			writeErr = s.WriteBody(piece)
		}
		keep = s.KeepAlive()
	})
	io.WriteString(c, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
	// Read nothing: the server's writes fill the buffers and then time out.
	wait(t, done)
	if e, ok := perr.As(writeErr); !ok || e.Type != perr.WriteTimedout || e.Source != perr.Downstream {
		t.Fatalf("write to a client that does not read ended with %v, want a downstream WriteTimedout", writeErr)
	}
	if keep {
		t.Fatal("connection kept alive after a write timeout")
	}
}
