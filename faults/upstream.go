// Package faults is a fault-injection kit for testing a proxy: HTTP/1 upstreams and clients
// that misbehave on real 127.0.0.1 sockets (resets, truncated bodies, garbage, 1xx storms,
// silence, slowness; slowloris, slow bodies, slow readers, oversized heads, pipeline floods,
// half-closes), and a helper that runs a proxy.ProxyHTTP behind a real server to aim them at.
//
// Every wait the kit makes is bounded (Bound, DefaultBound when zero), and everything it
// starts stops when the test ends, so a proxy that hangs makes a test fail instead of hang.
package faults

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// DefaultBound is the longest the kit waits for anything when no Bound is given.
const DefaultBound = 10 * time.Second

// Fault is what an Upstream does with each connection it accepts. It runs on its own
// goroutine; the connection's deadline is already set to the upstream's bound, and the
// connection is closed when the Fault returns.
type Fault func(c *Conn)

// Upstream is an HTTP/1 server on 127.0.0.1 that runs a Fault on every connection.
type Upstream struct {
	ln       net.Listener
	fault    Fault
	bound    time.Duration
	accepted atomic.Int64
	requests atomic.Int64
	wg       sync.WaitGroup

	mu     sync.Mutex // guards the fields below
	conns  map[net.Conn]struct{}
	closed bool
}

// NewUpstream starts an upstream running f on 127.0.0.1 with DefaultBound; it stops when
// the test ends. It fails tb if it cannot listen.
func NewUpstream(tb testing.TB, f Fault) *Upstream {
	tb.Helper()
	u, err := StartUpstream(f, DefaultBound)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(u.Close)
	return u
}

// StartUpstream starts an upstream running f on a free 127.0.0.1 port; every connection is
// closed at the latest bound after it was accepted. Close stops it.
func StartUpstream(f Fault, bound time.Duration) (*Upstream, error) {
	if bound <= 0 {
		bound = DefaultBound
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &Upstream{ln: ln, fault: f, bound: bound, conns: map[net.Conn]struct{}{}}
	u.wg.Add(1)
	go u.accept()
	return u, nil
}

// Addr returns the upstream's "127.0.0.1:port".
func (u *Upstream) Addr() string { return u.ln.Addr().String() }

// Accepted returns how many connections the upstream accepted.
func (u *Upstream) Accepted() int { return int(u.accepted.Load()) }

// Requests returns how many request heads the upstream's faults read (Conn.ReadRequest and
// Conn.ReadHead count).
func (u *Upstream) Requests() int { return int(u.requests.Load()) }

// Close stops accepting, closes the connections in flight and waits for their faults to
// return.
func (u *Upstream) Close() {
	u.mu.Lock()
	u.closed = true
	for c := range u.conns {
		c.Close()
	}
	u.mu.Unlock()
	u.ln.Close()
	u.wg.Wait()
}

func (u *Upstream) accept() {
	defer u.wg.Done()
	for {
		nc, err := u.ln.Accept()
		if err != nil {
			return
		}
		u.mu.Lock()
		if u.closed {
			u.mu.Unlock()
			nc.Close()
			return
		}
		u.conns[nc] = struct{}{}
		u.wg.Add(1)
		u.mu.Unlock()
		u.accepted.Add(1)
		go u.serve(nc)
	}
}

func (u *Upstream) serve(nc net.Conn) {
	defer u.wg.Done()
	defer func() {
		nc.Close()
		u.mu.Lock()
		delete(u.conns, nc)
		u.mu.Unlock()
	}()
	nc.SetDeadline(time.Now().Add(u.bound))
	u.fault(&Conn{Conn: nc, r: bufio.NewReader(nc), up: u})
}

// Conn is one connection of an Upstream, with helpers for writing faults.
type Conn struct {
	net.Conn
	r  *bufio.Reader
	up *Upstream
}

// MaxHead bounds the request head ReadHead and ReadRequest accept.
const MaxHead = 64 << 10

// ReadHead reads a request head, up to and including its empty line, without its body.
func (c *Conn) ReadHead() (string, error) {
	var b strings.Builder
	for {
		line, err := c.r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if b.Len() > MaxHead {
			return b.String(), errors.New("faults: request head over MaxHead")
		}
		if line == "\r\n" || line == "\n" {
			if strings.TrimSpace(b.String()) == "" {
				b.Reset() // empty lines before a request are allowed
				continue
			}
			c.up.requests.Add(1)
			return b.String(), nil
		}
	}
}

// ReadRequest reads a whole request, its body included (Content-Length or chunked), as an
// origin server does before it answers.
func (c *Conn) ReadRequest() (*http.Request, error) {
	req, err := http.ReadRequest(c.r)
	if err != nil {
		return nil, err
	}
	c.up.requests.Add(1)
	if _, err := io.Copy(io.Discard, io.LimitReader(req.Body, 1<<30)); err != nil {
		return req, err
	}
	return req, req.Body.Close()
}

// Drain reads and drops what the client sends until it closes or the bound passes.
func (c *Conn) Drain() { io.Copy(io.Discard, c.r) }

// WriteSlowly writes b one byte at a time, gap apart.
func (c *Conn) WriteSlowly(b []byte, gap time.Duration) error {
	for i := range b {
		if _, err := c.Write(b[i : i+1]); err != nil {
			return err
		}
		if i < len(b)-1 {
			time.Sleep(gap)
		}
	}
	return nil
}

// Reset closes the connection with a TCP reset (SO_LINGER 0) instead of a FIN, once what was
// written has been acknowledged by the peer (a reset drops the unsent rest): the peer reads
// those bytes, then "connection reset by peer".
func (c *Conn) Reset() error {
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		waitAcked(tc, time.Second)
		tc.SetLinger(0)
	}
	return c.Close()
}

// Response returns an HTTP/1.1 response with status, a Content-Length and body.
func Response(status int, body string) []byte {
	return []byte(fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n%s",
		status, http.StatusText(status), len(body), body))
}

// Respond is a well-behaved upstream: it reads each request and answers it with resp, over
// keep-alive. Use it for the healthy half of a test.
func Respond(resp []byte) Fault {
	return func(c *Conn) {
		for {
			if _, err := c.ReadRequest(); err != nil {
				return
			}
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	}
}

// ResetAfter reads the request, writes the first n bytes of resp, and resets the
// connection: n inside the head cuts the head, n inside the body cuts the body.
func ResetAfter(resp []byte, n int) Fault {
	return func(c *Conn) {
		if _, err := c.ReadRequest(); err != nil {
			return
		}
		if n > 0 {
			c.Write(resp[:min(n, len(resp))])
		}
		c.Reset()
	}
}

// TruncateBody reads the request and answers 200 with Content-Length declared but only sent
// bytes of body, then closes the connection normally (FIN).
func TruncateBody(declared, sent int) Fault {
	return func(c *Conn) {
		if _, err := c.ReadRequest(); err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", declared)
		c.Write(body(sent))
	}
}

// ChunkedWithoutLastChunk reads the request and answers 200 with a chunked body made of
// chunks, then closes the connection without the last (zero-size) chunk.
func ChunkedWithoutLastChunk(chunks ...string) Fault {
	return func(c *Conn) {
		if _, err := c.ReadRequest(); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
		for _, ch := range chunks {
			fmt.Fprintf(c, "%x\r\n%s\r\n", len(ch), ch)
		}
	}
}

// Garbage reads the request and answers junk instead of a status line, then closes.
func Garbage(junk []byte) Fault {
	return func(c *Conn) {
		if _, err := c.ReadRequest(); err != nil {
			return
		}
		c.Write(junk)
	}
}

// AnswerBeforeBody reads only the request head and answers resp at once, before the request
// body; then it drops the body as it arrives until the client closes or the bound passes, as
// an origin rejecting an upload (413, 401) does.
func AnswerBeforeBody(resp []byte) Fault {
	return func(c *Conn) {
		if _, err := c.ReadHead(); err != nil {
			return
		}
		if _, err := c.Write(resp); err != nil {
			return
		}
		c.Drain()
	}
}

// InformationalStorm reads the request and sends n interim responses with status (100 or
// 103, for example) before final.
func InformationalStorm(n, status int, final []byte) Fault {
	interim := []byte(fmt.Sprintf("HTTP/1.1 %d %s\r\n\r\n", status, http.StatusText(status)))
	return func(c *Conn) {
		if _, err := c.ReadRequest(); err != nil {
			return
		}
		bw := bufio.NewWriter(c)
		for range n {
			if _, err := bw.Write(interim); err != nil {
				return
			}
		}
		bw.Write(final)
		bw.Flush()
	}
}

// NeverAnswer reads the request and then holds the connection without a byte of answer,
// until the client closes it or the bound passes.
func NeverAnswer() Fault {
	return func(c *Conn) {
		if _, err := c.ReadRequest(); err != nil {
			return
		}
		c.Drain()
	}
}

// SlowResponse reads the request and writes resp one byte each gap.
func SlowResponse(resp []byte, gap time.Duration) Fault {
	return func(c *Conn) {
		if _, err := c.ReadRequest(); err != nil {
			return
		}
		c.WriteSlowly(resp, gap)
	}
}

// CloseAfterHead reads the request, sends a 200 head announcing contentLength bytes of body,
// and closes the connection without a byte of it.
func CloseAfterHead(contentLength int) Fault {
	return func(c *Conn) {
		if _, err := c.ReadRequest(); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(contentLength)+"\r\n\r\n")
	}
}

// body returns n bytes of printable filler.
func body(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}
