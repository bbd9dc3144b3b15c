// Command ctx shows the per-request context: each request counts its upstream attempts in its
// context and knows its place on its keep-alive connection (carried from one request to the
// next with PersistConnectionContext and OnConnectionReuse), while the count of all requests
// is state shared by the whole proxy. The counts are sent back in response headers.
//
//	go run ./examples/ctx -listen 127.0.0.1:6194 -upstream 127.0.0.1:8001,127.0.0.1:8002
package main

import (
	"context"
	"flag"
	"log"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
	"github.com/pingora-go/pingora/upstream"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:6194", "address to accept HTTP on")
	upstreams := flag.String("upstream", "127.0.0.1:8001,127.0.0.1:8002", "comma-separated upstreams, tried in this order")
	flag.Parse()

	app, err := newProxy(strings.Split(*upstreams, ",")...)
	if err != nil {
		log.Fatal(err)
	}
	svc := proxy.NewService("ctx", app, proxy.Options{})
	svc.AddTCP(*listen)
	srv := server.New(server.Options{})
	srv.AddService(svc)
	if err := srv.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

// counter tries its upstreams in order and reports what it counted.
type counter struct {
	proxy.Defaults[reqCtx]
	peers []*upstream.Peer
	// requests is shared by all requests: ordinary shared state, safe for concurrent use.
	requests atomic.Uint64
}

// reqCtx is the state of one request. Each request gets its own, and only that request's
// phases touch it, so it needs no locking.
type reqCtx struct {
	attempts int    // how many upstreams were asked for
	onConn   int    // this request's place on its downstream connection, from 1
	number   uint64 // this request's place among all requests, from 1
}

// newProxy returns the proxy trying addrs in order.
func newProxy(addrs ...string) (*counter, error) {
	c := &counter{}
	for _, a := range addrs {
		p, err := upstream.NewPeer(a, false, "")
		if err != nil {
			return nil, err
		}
		c.peers = append(c.peers, p)
	}
	return c, nil
}

// NewCtx starts a request as the first on its connection; OnConnectionReuse corrects that for
// later ones.
func (c *counter) NewCtx() reqCtx {
	return reqCtx{onConn: 1, number: c.requests.Add(1)}
}

// OnConnectionReuse receives what PersistConnectionContext returned for the previous request
// on the same connection.
func (c *counter) OnConnectionReuse(_ *proxy.Session, ctx *reqCtx, prev any) {
	ctx.onConn = prev.(int) + 1
}

// PersistConnectionContext hands this request's place to the next request on the connection.
func (c *counter) PersistConnectionContext(_ *proxy.Session, ctx *reqCtx) any {
	return ctx.onConn
}

// UpstreamPeer asks the upstreams in order: the context says how many were asked already.
func (c *counter) UpstreamPeer(_ *proxy.Session, ctx *reqCtx) (*upstream.Peer, error) {
	p := c.peers[ctx.attempts%len(c.peers)]
	ctx.attempts++
	return p, nil
}

// FailToConnect retries on the next upstream while some were not asked yet.
func (c *counter) FailToConnect(_ *proxy.Session, _ *upstream.Peer, ctx *reqCtx, err *perr.Error) *perr.Error {
	if ctx.attempts < len(c.peers) {
		err.SetRetry(true)
	}
	return err
}

// ResponseFilter reports the counts in response headers.
func (c *counter) ResponseFilter(s *proxy.Session, resp *header.ResponseHeader, ctx *reqCtx) error {
	resp.Set("X-Attempts", strconv.Itoa(ctx.attempts))
	resp.Set("X-Connection-Request", strconv.Itoa(ctx.onConn))
	resp.Set("X-Connection-Served", strconv.Itoa(s.RequestsServed()))
	resp.Set("X-Request-Number", strconv.FormatUint(ctx.number, 10))
	return nil
}
