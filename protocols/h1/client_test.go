package h1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/perr"
)

// upstream starts a loopback server that runs script on the one connection it accepts, and
// returns a client session connected to it.
func upstream(t *testing.T, opts *ClientOptions, script func(conn net.Conn, br *bufio.Reader)) *ClientSession {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		script(conn, bufio.NewReader(conn))
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	c := NewClientSession(conn, opts)
	t.Cleanup(func() {
		c.Close()
		ln.Close()
		<-done
	})
	return c
}

// answer reads n requests with net/http and writes resp after each.
func answer(t *testing.T, n int, resp ...string) func(net.Conn, *bufio.Reader) {
	return func(conn net.Conn, br *bufio.Reader) {
		for i := 0; i < n; i++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				t.Errorf("upstream ReadRequest: %v", err)
				return
			}
			io.Copy(io.Discard, req.Body)
			io.WriteString(conn, resp[i])
		}
	}
}

func get(target string, fields ...string) *header.RequestHeader {
	req := header.NewRequest("GET", target)
	req.Append("Host", "up.example")
	for i := 0; i+1 < len(fields); i += 2 {
		req.Append(fields[i], fields[i+1])
	}
	return req
}

// roundTrip writes req (without body) and reads the final response and its body.
func roundTrip(t *testing.T, c *ClientSession, req *header.RequestHeader) string {
	t.Helper()
	if err := c.WriteRequestHeader(req); err != nil {
		t.Fatalf("WriteRequestHeader: %v", err)
	}
	if err := c.FinishRequest(nil); err != nil {
		t.Fatalf("FinishRequest: %v", err)
	}
	for {
		if err := c.ReadResponseHeader(); err != nil {
			t.Fatalf("ReadResponseHeader: %v", err)
		}
		if c.Resp.Status >= 200 || c.Resp.Status == 101 {
			break
		}
	}
	return string(readBody(t, c.ReadBody))
}

func TestClientInterimThenFinal(t *testing.T) {
	c := upstream(t, nil, answer(t, 1, "HTTP/1.1 100 Continue\r\n\r\n"+
		"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"+
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	if err := c.WriteRequestHeader(get("/")); err != nil {
		t.Fatal(err)
	}
	var seen []int
	for {
		if err := c.ReadResponseHeader(); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, c.Resp.Status)
		if c.Resp.Status >= 200 {
			break
		}
		if c.Resp.Status == 103 && c.Resp.Value("Link") != "</a.css>; rel=preload" {
			t.Fatalf("103 fields %q", fieldDump(&c.Resp.Fields))
		}
	}
	if body := readBody(t, c.ReadBody); string(body) != "ok" {
		t.Fatalf("body %q", body)
	}
	if len(seen) != 3 || seen[0] != 100 || seen[1] != 103 || seen[2] != 200 {
		t.Fatalf("statuses %v", seen)
	}
	if !c.Reusable() {
		t.Fatal("clean exchange not reusable")
	}
}

func TestClientReusable(t *testing.T) {
	tests := []struct {
		name     string
		req      *header.RequestHeader
		resp     string
		readBody bool
		body     string
		want     bool
		kind     BodyKind
	}{
		{"length", get("/"), "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", true, "abc", true, BodyLength},
		{"chunked", get("/"), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", true, "abc", true, BodyChunked},
		{"no body 204", get("/"), "HTTP/1.1 204 No Content\r\n\r\n", true, "", true, BodyNone},
		{"HEAD with length", header.NewRequest("HEAD", "/"), "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true, "", true, BodyNone},
		{"1.0 keep-alive", get("/"), "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", true, "x", true, BodyLength},
		{"body not read", get("/"), "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", false, "", false, BodyLength},
		{"response close", get("/"), "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", true, "x", false, BodyLength},
		{"request close", get("/", "Connection", "close"), "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", true, "x", false, BodyLength},
		{"1.0 default", get("/"), "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", true, "x", false, BodyLength},
		{"until close", get("/"), "HTTP/1.1 200 OK\r\n\r\nuntil close", true, "until close", false, BodyUntilClose},
		{"TE and CL", get("/"), "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", true, "x", false, BodyChunked},
		{"bytes after response", get("/"), "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxEXTRA", true, "x", false, BodyLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := upstream(t, nil, func(conn net.Conn, br *bufio.Reader) {
				if _, err := http.ReadRequest(br); err != nil {
					t.Errorf("upstream: %v", err)
				}
				io.WriteString(conn, tt.resp)
				if tt.kind == BodyUntilClose {
					return
				}
				io.Copy(io.Discard, br) // hold the connection open until the client closes
			})
			if err := c.WriteRequestHeader(tt.req); err != nil {
				t.Fatal(err)
			}
			if tt.name == "bytes after response" {
				// Let the stray bytes arrive with the head, in the same read.
				time.Sleep(20 * time.Millisecond)
			}
			if err := c.ReadResponseHeader(); err != nil {
				t.Fatal(err)
			}
			if c.ResponseFraming() != tt.kind {
				t.Fatalf("framing %v, want %v", c.ResponseFraming(), tt.kind)
			}
			if tt.readBody {
				if body := readBody(t, c.ReadBody); string(body) != tt.body {
					t.Fatalf("body %q, want %q", body, tt.body)
				}
				if !c.BodyDone() {
					t.Fatal("body not done after io.EOF")
				}
			}
			if got := c.Reusable(); got != tt.want {
				t.Fatalf("Reusable = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestClientKeepAliveSequence(t *testing.T) {
	c := upstream(t, nil, answer(t, 3,
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nb\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nc"))
	for i, want := range []string{"a", "b", "c"} {
		if body := roundTrip(t, c, get("/")); body != want || !c.Reusable() {
			t.Fatalf("exchange %d: body %q reusable %v", i, body, c.Reusable())
		}
		c.Release()
	}
	if c.Exchanges() != 3 {
		t.Fatalf("Exchanges = %d", c.Exchanges())
	}
}

func TestClientRequestBodies(t *testing.T) {
	tests := []struct {
		name   string
		fields []string
		pieces []string
		tr     bool
		kind   BodyKind
		want   string
	}{
		{"length", []string{"Content-Length", "5"}, []string{"he", "llo"}, false, BodyLength, "POST hello "},
		{"chunked with trailers", []string{"Transfer-Encoding", "chunked", "Trailer", "X-Sum"}, []string{"chunk", "ed"}, true,
			BodyChunked, "POST chunked 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan string, 1)
			c := upstream(t, nil, func(conn net.Conn, br *bufio.Reader) {
				req, err := http.ReadRequest(br)
				if err != nil {
					t.Errorf("upstream: %v", err)
					return
				}
				body, _ := io.ReadAll(req.Body)
				got <- req.Method + " " + string(body) + " " + req.Trailer.Get("X-Sum")
				io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
			})
			req := header.NewRequest("POST", "/")
			req.Append("Host", "up")
			for i := 0; i < len(tt.fields); i += 2 {
				req.Append(tt.fields[i], tt.fields[i+1])
			}
			if err := c.WriteRequestHeader(req); err != nil {
				t.Fatal(err)
			}
			if c.RequestFraming() != tt.kind {
				t.Fatalf("framing %v, want %v", c.RequestFraming(), tt.kind)
			}
			for _, p := range tt.pieces {
				if err := c.WriteBody([]byte(p)); err != nil {
					t.Fatal(err)
				}
			}
			var tr *header.Fields
			if tt.tr {
				tr = &header.Fields{}
				tr.Append("X-Sum", "7")
			}
			if err := c.FinishRequest(tr); err != nil {
				t.Fatal(err)
			}
			if s := <-got; s != tt.want {
				t.Fatalf("upstream got %q, want %q", s, tt.want)
			}
			if err := c.ReadResponseHeader(); err != nil || c.Resp.Status != 200 {
				t.Fatalf("response %d, %v", c.Resp.Status, err)
			}
			readBody(t, c.ReadBody)
			if !c.Reusable() {
				t.Fatal("not reusable after a complete exchange")
			}
		})
	}
}

func TestClientRejectsBadRequestFraming(t *testing.T) {
	for _, fields := range [][]string{
		{"Transfer-Encoding", "gzip"},
		{"Content-Length", "1", "Content-Length", "2"},
	} {
		c := NewClientSession(&memConn{}, nil)
		req := header.NewRequest("POST", "/")
		for i := 0; i < len(fields); i += 2 {
			req.Append(fields[i], fields[i+1])
		}
		if err := c.WriteRequestHeader(req); perr.StatusFor(err) != 500 {
			t.Errorf("%q: err %v, want an internal error", fields, err)
		}
	}
}

func TestClientResponseTrailers(t *testing.T) {
	c := upstream(t, nil, answer(t, 1,
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n4\r\ndata\r\n0\r\nX-Sum: 9\r\n\r\n"))
	if body := roundTrip(t, c, get("/")); body != "data" {
		t.Fatalf("body %q", body)
	}
	if got := fieldDump(c.Trailers()); got != "X-Sum=9" {
		t.Fatalf("trailers %q", got)
	}
}

func TestClientReadUntilClose(t *testing.T) {
	big := strings.Repeat("z", 3*BufferSize+5)
	c := upstream(t, nil, answer(t, 1, "HTTP/1.0 200 OK\r\n\r\n"+big))
	if body := roundTrip(t, c, get("/")); body != big {
		t.Fatalf("body of %d bytes, want %d", len(body), len(big))
	}
	if c.Reusable() {
		t.Fatal("close-delimited response reusable")
	}
}

func TestClientExpectContinue(t *testing.T) {
	bodySeen := make(chan string, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		s := NewServerSession(conn, nil)
		defer s.Close()
		serve(t, s, func(t *testing.T, s *ServerSession) {
			body := readBody(t, s.ReadBody)
			bodySeen <- string(body)
			resp := header.NewResponse(201)
			resp.Append("Content-Length", "0")
			writeResponse(t, s, resp, "")
		})
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	c := NewClientSession(conn, nil)
	defer c.Close()
	req := header.NewRequest("PUT", "/obj")
	req.Append("Host", "up")
	req.Append("Expect", "100-continue")
	req.Append("Content-Length", "4")
	if err := c.WriteRequestHeader(req); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := c.ReadResponseHeader(); err != nil || c.Resp.Status != 100 {
		t.Fatalf("first response %d, %v; want 100 before the body", c.Resp.Status, err)
	}
	c.WriteBody([]byte("data"))
	if err := c.FinishRequest(nil); err != nil {
		t.Fatal(err)
	}
	if err := c.ReadResponseHeader(); err != nil || c.Resp.Status != 201 {
		t.Fatalf("final response %d, %v", c.Resp.Status, err)
	}
	readBody(t, c.ReadBody)
	if got := <-bodySeen; got != "data" {
		t.Fatalf("server read %q", got)
	}
	if !c.Reusable() {
		t.Fatal("not reusable")
	}
}

func TestClientRetryOnClosedBeforeHead(t *testing.T) {
	c := upstream(t, nil, func(conn net.Conn, br *bufio.Reader) {
		http.ReadRequest(br)
	})
	if err := c.WriteRequestHeader(get("/")); err != nil {
		t.Fatal(err)
	}
	err := c.ReadResponseHeader()
	e, ok := perr.As(err)
	if !ok || e.Type != perr.ConnectionClosed || e.Source != perr.Upstream || e.Retry != perr.ReusedOnly {
		t.Fatalf("err %v, want an upstream ConnectionClosed retryable when reused", err)
	}
	if c.Reusable() {
		t.Fatal("reusable after an error")
	}
}

func TestClientBadResponse(t *testing.T) {
	tests := []struct{ name, resp string }{
		{"malformed", "HTTP/1.1 OK\r\n\r\n"},
		{"conflicting lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"},
		{"partial head then close", "HTTP/1.1 200 OK\r\nContent-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := upstream(t, nil, answer(t, 1, tt.resp))
			if err := c.WriteRequestHeader(get("/")); err != nil {
				t.Fatal(err)
			}
			err := c.ReadResponseHeader()
			if got := perr.StatusFor(err); got != 502 {
				t.Fatalf("err %v maps to %d, want 502", err, got)
			}
			if e, _ := perr.As(err); e.Retry == perr.ReusedOnly {
				t.Fatalf("err %v retryable though the head had started", err)
			}
		})
	}
}

func TestClientReadTimeout(t *testing.T) {
	c := upstream(t, &ClientOptions{ReadTimeout: 50 * time.Millisecond}, func(conn net.Conn, br *bufio.Reader) {
		http.ReadRequest(br)
		io.Copy(io.Discard, br)
	})
	if err := c.WriteRequestHeader(get("/")); err != nil {
		t.Fatal(err)
	}
	err := c.ReadResponseHeader()
	if perr.StatusFor(err) != 504 {
		t.Fatalf("err %v, want an upstream ReadTimedout (504)", err)
	}
}

func TestClientHijackAfter101(t *testing.T) {
	c := upstream(t, nil, func(conn net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			t.Errorf("upstream: %v", err)
			return
		}
		io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nhello")
		buf := make([]byte, 3)
		io.ReadFull(br, buf)
		conn.Write(buf)
	})
	if err := c.WriteRequestHeader(get("/", "Upgrade", "echo", "Connection", "Upgrade")); err != nil {
		t.Fatal(err)
	}
	if err := c.ReadResponseHeader(); err != nil || c.Resp.Status != 101 || c.ResponseFraming() != BodyRaw {
		t.Fatalf("response %d %v, %v", c.Resp.Status, c.ResponseFraming(), err)
	}
	time.Sleep(10 * time.Millisecond)
	conn, rest := c.Hijack()
	for len(rest) < 5 {
		buf := make([]byte, 5-len(rest))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		rest = append(rest, buf[:n]...)
	}
	if string(rest) != "hello" {
		t.Fatalf("bytes after 101: %q", rest)
	}
	conn.Write([]byte("abc"))
	buf := make([]byte, 3)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "abc" {
		t.Fatalf("echo %q, %v", buf, err)
	}
	if c.Reusable() {
		t.Fatal("upgraded connection reusable")
	}
}

// Every read gets at least its timeout, also after earlier reads armed the deadline (the body
// read that waits half the timeout for its byte leaves the next read too little, which re-arms),
// and the deadline is not moved on every read (a read that starts with at least the timeout
// left keeps the armed one).
func TestClientReadTimeoutAfterEarlierReads(t *testing.T) {
	const timeout = 200 * time.Millisecond
	sent := make(chan struct{})
	c := upstream(t, &ClientOptions{ReadTimeout: timeout}, func(conn net.Conn, br *bufio.Reader) {
		http.ReadRequest(br)
		// The head now, the body's first byte after a pause, then nothing.
		io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
		<-sent
		time.Sleep(timeout / 2)
		io.WriteString(conn, "a")
		io.Copy(io.Discard, br)
	})
	if err := c.WriteRequestHeader(get("/")); err != nil {
		t.Fatal(err)
	}
	if err := c.ReadResponseHeader(); err != nil {
		t.Fatal(err)
	}
	armed := c.rd.armed
	close(sent)
	if b, err := c.ReadBody(); len(b) != 1 || err != nil {
		t.Fatalf("first body byte: %q %v", b, err)
	}
	if c.rd.armed != armed {
		t.Errorf("a read started right after the head's re-armed the deadline")
	}
	start := time.Now()
	_, err := c.ReadBody()
	took := time.Since(start)
	if perr.StatusFor(err) != 504 {
		t.Fatalf("err %v, want an upstream ReadTimedout (504)", err)
	}
	if took < timeout || took > timeout*5/4+time.Second {
		t.Fatalf("the read timed out after %v, want between %v and %v", took, timeout, timeout*5/4)
	}
}

// TestClientHeadGoesOutWithTheWait: the head of a request without a body stays in the session
// until ReadResponseHeader sends it and waits for the answer in one go; Flush sends it at once.
// The head is built in the read buffer's free space, so no write buffer is taken; one larger
// than that space goes out whole as well.
func TestClientHeadGoesOutWithTheWait(t *testing.T) {
	got := make(chan string, 4)
	c := upstream(t, nil, func(conn net.Conn, br *bufio.Reader) {
		for {
			conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			req, err := http.ReadRequest(br)
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					got <- "nothing"
					continue
				}
				return
			}
			got <- fmt.Sprint(req.URL.Path, " ", len(req.Header.Get("X-Big")))
			io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	for _, big := range []int{0, BufferSize + 100} {
		for _, flush := range []bool{false, true} {
			want := fmt.Sprint("/a ", big)
			req := get("/a")
			if big > 0 {
				req.Append("X-Big", strings.Repeat("b", big))
			}
			if err := c.WriteRequestHeader(req); err != nil {
				t.Fatal(err)
			}
			if flush {
				if err := c.Flush(); err != nil {
					t.Fatal(err)
				}
				if g := <-got; g != want {
					t.Fatalf("after Flush the upstream read %s", g)
				}
			} else if g := <-got; g != "nothing" {
				t.Fatalf("before ReadResponseHeader the upstream read %s", g)
			}
			if err := c.ReadResponseHeader(); err != nil || c.Resp.Status != 200 {
				t.Fatalf("%v, status %d", err, c.Resp.Status)
			}
			if !flush {
				if g := <-got; g != want {
					t.Fatalf("the upstream read %s", g)
				}
				if c.wr.buf != nil {
					t.Error("a request without a body took a write buffer")
				}
			}
			if b := readBody(t, c.ReadBody); string(b) != "ok" || !c.Reusable() {
				t.Fatalf("body %q, reusable %v", b, c.Reusable())
			}
			c.Release()
		}
	}
}

// TestClientStaleOnSend: a reused session whose upstream closed it, half-closed it (and still
// reads, as a lingering close does) or sent bytes nobody asked for is found out as the next
// request is about to go out: ErrStale at once, Stale true, and the upstream receives nothing.
// With a body the check is WriteRequestHeader's. The first request of a new connection fails
// the same check as an ordinary ConnectionClosed, not ErrStale.
func TestClientStaleOnSend(t *testing.T) {
	for _, how := range []string{"close", "half-close", "unsolicited"} {
		for _, body := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/body=%v", how, body), func(t *testing.T) {
				rest := make(chan int, 1)
				c := upstream(t, nil, func(conn net.Conn, br *bufio.Reader) {
					answer(t, 1, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")(conn, br)
					switch how {
					case "close":
						conn.Close()
						rest <- 0
						return
					case "half-close":
						conn.(*net.TCPConn).CloseWrite()
					case "unsolicited":
						// Later than the response (in the same read it would make the
						// session not reusable at once).
						time.Sleep(20 * time.Millisecond)
						io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil")
					}
					conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
					n, _ := io.Copy(io.Discard, br)
					rest <- int(n)
				})
				if b := roundTrip(t, c, get("/1")); b != "ok" || !c.Reusable() {
					t.Fatalf("first exchange: %q, reusable %v", b, c.Reusable())
				}
				time.Sleep(50 * time.Millisecond) // the upstream has acted
				if !c.CheckOnSend() {
					t.Skip("no raw socket access here")
				}
				start := time.Now()
				req := get("/2")
				if body {
					req.Append("Content-Length", "3")
				}
				err := c.WriteRequestHeader(req)
				if !body {
					if err != nil {
						t.Fatal(err)
					}
					err = c.ReadResponseHeader()
				}
				if !errors.Is(err, ErrStale) || !c.Stale() || c.Reusable() {
					t.Fatalf("err %v, Stale %v, Reusable %v; want ErrStale", err, c.Stale(), c.Reusable())
				}
				if e, ok := perr.As(err); !ok || e.Type != perr.ConnectionClosed || e.Source != perr.Upstream {
					t.Fatalf("err %v, want an upstream ConnectionClosed", err)
				}
				// The upstream's connection would answer nothing until its 10 s deadline.
				if d := time.Since(start); d > 5*time.Second {
					t.Fatalf("found out after %v", d)
				}
				c.Close()
				if n := <-rest; n != 0 {
					t.Fatalf("the upstream received %d bytes of the second request", n)
				}
			})
		}
	}
	t.Run("new connection", func(t *testing.T) {
		c := upstream(t, nil, func(conn net.Conn, br *bufio.Reader) {})
		time.Sleep(50 * time.Millisecond)
		if err := c.WriteRequestHeader(get("/")); err != nil {
			t.Fatal(err)
		}
		err := c.ReadResponseHeader()
		e, ok := perr.As(err)
		if errors.Is(err, ErrStale) || c.Stale() || !ok || e.Type != perr.ConnectionClosed {
			t.Fatalf("err %v, Stale %v; want a ConnectionClosed that is not ErrStale", err, c.Stale())
		}
	})
}

// TestClientMalformedBeforeHeadEnd: a response whose status line is already malformed fails
// as soon as it arrives, without waiting for the rest of the head (the read timeout is far
// longer than the test's bound); one whose lines are fine so far is waited for.
func TestClientMalformedBeforeHeadEnd(t *testing.T) {
	release := make(chan struct{})
	c := upstream(t, &ClientOptions{ReadTimeout: time.Minute}, func(conn net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(conn, "HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n")
		<-release
	})
	defer close(release)
	if err := c.WriteRequestHeader(get("/a")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := c.ReadResponseHeader()
	if e, ok := perr.As(err); !ok || e.Type != perr.InvalidHTTPHeader {
		t.Fatalf("got %v, want InvalidHTTPHeader", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the malformed status line was refused after %v", d)
	}

	c = upstream(t, nil, func(conn net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(conn, "HTTP/1.1 200 OK\r\nConte")
		time.Sleep(20 * time.Millisecond)
		io.WriteString(conn, "nt-Length: 2\r\n\r\nok")
	})
	if err := c.WriteRequestHeader(get("/b")); err != nil {
		t.Fatal(err)
	}
	if err := c.ReadResponseHeader(); err != nil || c.Resp.Status != 200 {
		t.Fatalf("%v, status %d", err, c.Resp.Status)
	}
	if b := readBody(t, c.ReadBody); string(b) != "ok" {
		t.Fatalf("body %q", b)
	}
}

// A response of head and body up to about ResponseBufferSize that is all in the socket is
// read with one read: its body comes as one piece, which the proxy sends on with the head in
// one write. With a buffer of BufferSize, a 24 KiB body took two reads and two writes.
func TestClientReadsResponseWhole(t *testing.T) {
	body := strings.Repeat("0123456789abcdef", 24<<10/16)
	resp := "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	c := upstream(t, nil, answer(t, 1, resp))
	if err := c.WriteRequestHeader(get("/")); err != nil {
		t.Fatal(err)
	}
	if err := c.FinishRequest(nil); err != nil {
		t.Fatal(err)
	}
	// Wait until the whole response is in the socket, so that the one read finds it all.
	rc, err := c.Conn().(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	peek := make([]byte, len(resp)+1)
	for deadline := time.Now().Add(5 * time.Second); ; {
		n := 0
		rc.Read(func(fd uintptr) bool {
			n, _, _ = syscall.Recvfrom(int(fd), peek, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			return true
		})
		if n >= len(resp) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d response bytes arrived", n, len(resp))
		}
		time.Sleep(time.Millisecond)
	}
	if err := c.ReadResponseHeader(); err != nil {
		t.Fatal(err)
	}
	p, err := c.ReadBody()
	if err != nil && err != io.EOF {
		t.Fatal(err)
	}
	if len(p) != len(body) || string(p) != body {
		t.Fatalf("first body piece has %d bytes, want the whole body, %d", len(p), len(body))
	}
	if !c.BodyDone() {
		t.Fatal("body not done after its one piece")
	}
}
