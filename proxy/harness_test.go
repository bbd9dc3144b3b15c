package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/internal/testserve"
	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
	"github.com/pingora-go/pingora/upstream"
)

// testCtx is the per-request context of testApp.
type testCtx struct {
	tries int
}

// testApp is a proxy program whose phases tests configure through function fields.
type testApp struct {
	proxy.Defaults[testCtx]
	peers         []*upstream.Peer
	retryConnect  bool
	requestFilter func(s *proxy.Session) (bool, error)
	upReqFilter   func(req *header.RequestHeader)
	respFilter    func(resp *header.ResponseHeader)
	logged        atomic.Int64
	lastErr       atomic.Value
}

func (a *testApp) NewCtx() testCtx { return testCtx{} }

func (a *testApp) UpstreamPeer(_ *proxy.Session, c *testCtx) (*upstream.Peer, error) {
	p := a.peers[c.tries%len(a.peers)]
	c.tries++
	return p, nil
}

func (a *testApp) RequestFilter(s *proxy.Session, _ *testCtx) (bool, error) {
	if a.requestFilter != nil {
		return a.requestFilter(s)
	}
	return false, nil
}

func (a *testApp) UpstreamRequestFilter(_ *proxy.Session, req *header.RequestHeader, _ *testCtx) error {
	if a.upReqFilter != nil {
		a.upReqFilter(req)
	}
	return nil
}

func (a *testApp) ResponseFilter(_ *proxy.Session, resp *header.ResponseHeader, _ *testCtx) error {
	if a.respFilter != nil {
		a.respFilter(resp)
	}
	return nil
}

func (a *testApp) FailToConnect(_ *proxy.Session, _ *upstream.Peer, c *testCtx, err *perr.Error) *perr.Error {
	if a.retryConnect && c.tries < len(a.peers) {
		err.SetRetry(true)
	}
	return err
}

func (a *testApp) Logging(s *proxy.Session, err error, _ *testCtx) {
	// The error first: tests wait for the count, then read the error.
	if err != nil {
		a.lastErr.Store(err.Error())
	}
	a.logged.Add(1)
}

func mustPeer(t testing.TB, addr string) *upstream.Peer {
	t.Helper()
	p, err := upstream.NewPeer(addr, false, "")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startProxy serves app on a fresh loopback port until the test ends and returns the address
// and the proxy.
func startProxy(t testing.TB, app proxy.ProxyHTTP[testCtx], opts proxy.Options) (string, *proxy.Proxy[testCtx]) {
	t.Helper()
	if opts.Logger == nil {
		// Printed only when the test fails.
		opts.Logger = testserve.Kept(t)
	}
	p := proxy.New(app, opts)
	svc := server.NewListeningService("test proxy", p)
	svc.SetLogger(opts.Logger)
	addr := testserve.Listen(t, svc)
	testserve.Run(t, testserve.Options{GracePeriod: 2 * time.Second, Logger: opts.Logger, AfterStop: p.Connector().Close}, svc)
	return addr, p
}

// countingServer is a net/http origin that counts the connections it accepted.
type countingServer struct {
	*http.Server
	addr  string
	conns atomic.Int64
}

func startOrigin(t testing.TB, h http.Handler) *countingServer {
	t.Helper()
	return startOriginWith(t, h, nil)
}

// startOriginWith is startOrigin with tune (may be nil) applied to the server first; a
// server given a TLSConfig serves TLS.
func startOriginWith(t testing.TB, h http.Handler, tune func(*http.Server)) *countingServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingServer{addr: ln.Addr().String()}
	cs.Server = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				cs.conns.Add(1)
			}
		}}
	if tune != nil {
		tune(cs.Server)
	}
	if cs.TLSConfig != nil {
		go cs.ServeTLS(ln, "", "")
	} else {
		go cs.Serve(ln)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// rawOrigin accepts connections and runs handle on each, for origins whose bytes the test
// controls exactly.
func rawOrigin(t testing.TB, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// droppingEchoOrigin is a raw origin that counts the request heads it reads (across its
// connections, from 1) and closes the connection right after a head whose number drop
// selects; it answers any other request with its Content-Length body, which it also sends to
// bodies when that is not nil. It returns its address and the count.
func droppingEchoOrigin(t testing.TB, drop func(n int64) bool, bodies chan<- string) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	addr := rawOrigin(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			head, err := readHead(r)
			if err != nil || drop(n.Add(1)) {
				return
			}
			length := 0
			for _, l := range strings.Split(head, "\r\n") {
				if strings.HasPrefix(strings.ToLower(l), "content-length:") {
					length, _ = strconv.Atoi(strings.TrimSpace(l[len("content-length:"):]))
				}
			}
			b := make([]byte, length)
			if _, err := io.ReadFull(r, b); err != nil {
				return
			}
			if bodies != nil {
				bodies <- string(b)
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
		}
	})
	return addr, &n
}

// readHead reads an HTTP/1 head (up to the empty line) from r.
func readHead(r *bufio.Reader) (string, error) {
	var sb strings.Builder
	for {
		line, err := r.ReadString('\n')
		sb.WriteString(line)
		if err != nil {
			return sb.String(), err
		}
		if line == "\r\n" {
			return sb.String(), nil
		}
	}
}

// dial opens a raw client connection to the proxy.
func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func newClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
}
