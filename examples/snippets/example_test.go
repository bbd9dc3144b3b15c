package snippets_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/pingora-go/pingora"
	"github.com/pingora-go/pingora/connector"
	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/lb"
	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
	"github.com/pingora-go/pingora/upstream"
)

// The shortest program: a reverse proxy on port 6188 in front of two upstreams, taken in
// turn. Run returns after SIGTERM (graceful) or SIGINT (fast).
func Example_quickStart() {
	srv, err := pingora.NewReverseProxy("0.0.0.0:6188", "1.1.1.1:80", "1.0.0.1:80")
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

// quickLB is the proxy program of the quick start: round robin over a load balancer, with the
// Host header the upstreams expect.
type quickLB struct {
	proxy.Defaults[struct{}]
	upstreams *lb.LoadBalancer
}

func (q *quickLB) NewCtx() struct{} { return struct{}{} }

func (q *quickLB) UpstreamPeer(*proxy.Session, *struct{}) (*upstream.Peer, error) {
	b, ok := q.upstreams.Select(nil, 256)
	if !ok {
		return nil, perr.Explain(perr.HTTPStatus(502), "no upstream").AsUp()
	}
	return upstream.NewPeer(b.Addr, true, "one.one.one.one")
}

func (q *quickLB) UpstreamRequestFilter(_ *proxy.Session, req *header.RequestHeader, _ *struct{}) error {
	req.Set("Host", "one.one.one.one")
	return nil
}

// The program shape of the reference's quick start: a server, a load balancer, a proxy
// program, a listening service with an address, then Run.
func Example_loadBalancer() {
	srv := server.New(server.Options{})

	upstreams, err := lb.New(lb.RoundRobin, "1.1.1.1:443", "1.0.0.1:443")
	if err != nil {
		log.Fatal(err)
	}

	svc := proxy.NewService("load balancer", &quickLB{upstreams: upstreams}, proxy.Options{})
	svc.AddTCP("0.0.0.0:6188")

	srv.AddService(svc)
	if err := srv.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

// A peer is where and how to connect; its options are connection settings.
func Example_peer() {
	p, err := upstream.NewPeer("192.0.2.10:443", true, "api.example.com")
	if err != nil {
		log.Fatal(err)
	}
	p.Options.ConnectTimeout = time.Second // each of TCP connect and TLS handshake
	p.Options.TotalConnectTimeout = 3 * time.Second
	p.Options.ReadTimeout = 30 * time.Second  // each read of the response
	p.Options.WriteTimeout = 30 * time.Second // each write of the request
	p.Options.IdleTimeout = 90 * time.Second  // how long it may wait in the pool
	p.Options.TCPKeepalive = &upstream.TCPKeepalive{Idle: 60 * time.Second}
	fmt.Println(p)

	u, err := upstream.NewUnixPeer("/run/app.sock", false, "")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(u)
	// Output:
	// addr=192.0.2.10:443 tls=true sni=api.example.com
	// addr=unix:/run/app.sock tls=false sni=
}

// Two peers share pooled connections when their ReuseHash is equal: the address, TLS, SNI,
// GroupKey and the TLS identity options count; timeouts do not.
func Example_pooling() {
	a, _ := upstream.NewPeer("10.0.0.1:443", true, "a.example")
	b, _ := upstream.NewPeer("10.0.0.1:443", true, "a.example")
	b.Options.ReadTimeout = 5 * time.Second
	fmt.Println("timeouts differ:", a.ReuseHash() == b.ReuseHash())

	b.SNI = "b.example"
	fmt.Println("SNI differs:", a.ReuseHash() == b.ReuseHash())

	c, _ := upstream.NewPeer("10.0.0.1:443", true, "a.example")
	c.GroupKey = 7 // e.g. one group per tenant
	fmt.Println("group differs:", a.ReuseHash() == c.ReuseHash())

	// Never reuse connections to this peer.
	c.Options.IdleTimeout = upstream.DoNotReuse

	// The pool of a proxy belongs to its connector: 1024 idle connections across all peers.
	conn := connector.New(connector.Options{PoolSize: 1024})
	defer conn.Close()
	_ = proxy.New[struct{}](&quickLB{}, proxy.Options{Connector: conn})
	// Output:
	// timeouts differ: true
	// SNI differs: false
	// group differs: false
}
