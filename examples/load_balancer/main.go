// Command load_balancer is a round-robin load balancer over several upstreams: each request
// goes to the next upstream in turn, and when connecting to one fails the request is retried
// on an upstream it has not tried yet.
//
//	go run ./examples/load_balancer -listen 127.0.0.1:6190 -upstream 127.0.0.1:8001,127.0.0.1:8002
package main

import (
	"context"
	"flag"
	"log"
	"slices"
	"strings"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/lb"
	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
	"github.com/pingora-go/pingora/upstream"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:6190", "address to accept HTTP on")
	upstreams := flag.String("upstream", "127.0.0.1:8001,127.0.0.1:8002", "comma-separated upstream host:port list")
	host := flag.String("host", "", "Host header sent upstream; empty keeps the client's")
	flag.Parse()

	app, err := newProxy(*host, strings.Split(*upstreams, ",")...)
	if err != nil {
		log.Fatal(err)
	}
	svc := proxy.NewService("load balancer", app, proxy.Options{})
	svc.AddTCP(*listen)
	srv := server.New(server.Options{})
	srv.AddService(svc)
	if err := srv.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

// lbProxy balances requests over its upstreams in turn.
type lbProxy struct {
	proxy.Defaults[attempts]
	upstreams *lb.LoadBalancer
	peers     map[string]*upstream.Peer // by backend address
	host      string
}

// attempts is the per-request context: the upstreams this request has tried.
type attempts struct {
	tried []string
}

// newProxy returns the load balancer over addrs; host, when not empty, replaces the Host
// header of every request sent upstream.
func newProxy(host string, addrs ...string) (*lbProxy, error) {
	upstreams, err := lb.New(lb.RoundRobin, addrs...)
	if err != nil {
		return nil, err
	}
	peers := make(map[string]*upstream.Peer, len(addrs))
	for _, a := range addrs {
		p, err := upstream.NewPeer(a, false, "")
		if err != nil {
			return nil, err
		}
		peers[a] = p
	}
	return &lbProxy{upstreams: upstreams, peers: peers, host: host}, nil
}

// NewCtx starts a request with no upstream tried.
func (p *lbProxy) NewCtx() attempts { return attempts{} }

// UpstreamPeer takes the next upstream in round-robin order, skipping those this request
// already failed to reach.
func (p *lbProxy) UpstreamPeer(_ *proxy.Session, ctx *attempts) (*upstream.Peer, error) {
	b, ok := p.upstreams.SelectWith(nil, 256, func(b *lb.Backend, ready bool) bool {
		return ready && !slices.Contains(ctx.tried, b.Addr)
	})
	if !ok {
		return nil, perr.Explain(perr.HTTPStatus(502), "no upstream left to try").AsUp()
	}
	ctx.tried = append(ctx.tried, b.Addr)
	return p.peers[b.Addr], nil
}

// UpstreamRequestFilter sets the Host header the upstreams expect.
func (p *lbProxy) UpstreamRequestFilter(_ *proxy.Session, req *header.RequestHeader, _ *attempts) error {
	if p.host != "" {
		req.Set("Host", p.host)
	}
	return nil
}

// FailToConnect retries on another upstream while some are left. Nothing was sent to the
// failed one, so retrying is safe for any request.
func (p *lbProxy) FailToConnect(_ *proxy.Session, _ *upstream.Peer, ctx *attempts, err *perr.Error) *perr.Error {
	if len(ctx.tried) < len(p.peers) {
		err.SetRetry(true)
	}
	return err
}
