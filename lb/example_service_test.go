package lb_test

import (
	"context"
	"fmt"
	"log"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pingora-go/pingora/lb"
	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
	"github.com/pingora-go/pingora/upstream"
)

// A load balancer with HTTP health checks, run by the server as a background
// service: the Go form of the reference's quick start, step 5.
func ExampleNewService() {
	upstreams, err := lb.New(lb.RoundRobin, "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80")
	if err != nil {
		log.Fatal(err)
	}
	health, err := lb.NewService(upstreams, lb.ServiceConfig{
		Name: "origins",
		Health: lb.HealthConfig{
			Checker:   &lb.HTTPCheck{Path: "/healthz", Host: "origin.internal", Status: 200},
			Interval:  time.Second,
			Unhealthy: 3, // three failed checks in a row take a backend out
			Healthy:   2, // two passed checks in a row bring it back
		},
		OnEvent: func(ev lb.HealthEvent) {
			log.Printf("%s healthy=%v ejected=%v err=%v", ev.Backend.Addr, ev.Healthy, ev.Ejected, ev.Err)
		},
		Registerer: prometheus.DefaultRegisterer,
	})
	if err != nil {
		log.Fatal(err)
	}
	srv := server.New(server.Options{})
	srv.AddService(health.Background()) // stops with the server
	// srv.AddService(proxy service using upstreams); srv.Run(ctx)
}

// Backends from DNS: SRV records with their weights, refreshed when the
// answer's TTL runs out.
func ExampleDNS() {
	upstreams, err := lb.NewFromBackends(lb.SmoothWeightedRoundRobin, &lb.Backends{})
	if err != nil {
		log.Fatal(err)
	}
	svc, err := lb.NewService(upstreams, lb.ServiceConfig{
		Discovery: &lb.DNS{
			Name:     "_http._tcp.api.service.consul",
			SRV:      true,
			Resolver: "127.0.0.1:8600",
			MinTTL:   5 * time.Second,
		},
		// Re-resolve at least once a minute even when the TTL is longer.
		UpdateInterval: time.Minute,
		Health:         lb.HealthConfig{Checker: lb.NewTCPCheck()},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go svc.Run(ctx)
}

// A discovery of your own, here a fixed list standing in for a registry
// client (Consul, Kubernetes endpoints, ...).
func ExampleDiscoveryFunc() {
	registry := func(context.Context) ([]lb.Backend, error) {
		return []lb.Backend{{Addr: "10.0.1.1:8080", Weight: 2}, {Addr: "10.0.1.2:8080"}}, nil
	}
	upstreams, err := lb.NewFromBackends(lb.Maglev, &lb.Backends{})
	if err != nil {
		log.Fatal(err)
	}
	svc, err := lb.NewService(upstreams, lb.ServiceConfig{
		Discovery: lb.DiscoveryFunc(func(ctx context.Context) ([]lb.Backend, time.Duration, error) {
			list, err := registry(ctx)
			return list, 0, err // 0: refresh every UpdateInterval
		}),
		UpdateInterval: 10 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go svc.Run(ctx)
	<-svc.Ready()
	cancel()
	fmt.Println(upstreams.Backends().All())
	// Output: [{10.0.1.1:8080 2 map[]} {10.0.1.2:8080 1 map[]}]
}

func ExampleService_ReportResult() {
	upstreams, err := lb.New(lb.RoundRobin, "10.0.0.1:80", "10.0.0.2:80")
	if err != nil {
		log.Fatal(err)
	}
	svc, err := lb.NewService(upstreams, lb.ServiceConfig{
		Passive: lb.PassiveConfig{Failures: 3, Backoff: 10 * time.Second},
	})
	if err != nil {
		log.Fatal(err)
	}
	// Three requests in a row failed on 10.0.0.2 (reported from the
	// FailToConnect phase): it is ejected for 10 s, then probed.
	for range 3 {
		svc.ReportResult("10.0.0.2:80", false)
	}
	for _, st := range upstreams.Backends().Status() {
		fmt.Println(st.Backend.Addr, "ejected:", st.Ejected)
	}
	// Output:
	// 10.0.0.1:80 ejected: false
	// 10.0.0.2:80 ejected: true
}

// lbCtx is the per-request context of lbProxy: the backends tried so far.
type lbCtx struct {
	tried []string
}

// lbProxy is a proxy program that balances over a Service's load balancer,
// retries connection failures on another backend and feeds passive health.
type lbProxy struct {
	proxy.Defaults[lbCtx]
	upstreams *lb.Service
}

func (p *lbProxy) NewCtx() lbCtx { return lbCtx{} }

func (p *lbProxy) UpstreamPeer(_ *proxy.Session, c *lbCtx) (*upstream.Peer, error) {
	b, ok := p.upstreams.LoadBalancer().SelectWith(nil, 256, func(b *lb.Backend, ready bool) bool {
		return ready && !slices.Contains(c.tried, b.Addr)
	})
	if !ok {
		return nil, perr.Explain(perr.ConnectNoRoute, "no ready backend").AsUp()
	}
	c.tried = append(c.tried, b.Addr)
	return upstream.NewPeer(b.Addr, false, "")
}

func (p *lbProxy) FailToConnect(_ *proxy.Session, _ *upstream.Peer, c *lbCtx, err *perr.Error) *perr.Error {
	p.upstreams.ReportResult(c.tried[len(c.tried)-1], false)
	err.SetRetry(true) // nothing was sent yet: try another backend
	return err
}

func (p *lbProxy) Logging(_ *proxy.Session, err error, c *lbCtx) {
	if err == nil && len(c.tried) > 0 {
		p.upstreams.ReportResult(c.tried[len(c.tried)-1], true)
	}
}

// A proxy program wired to passive health: connection failures count
// against the backend and move the request to another one; successes reset
// the count.
func ExampleService_proxy() {
	upstreams, err := lb.New(lb.RoundRobin, "10.0.0.1:80", "10.0.0.2:80")
	if err != nil {
		log.Fatal(err)
	}
	svc, err := lb.NewService(upstreams, lb.ServiceConfig{
		Passive: lb.PassiveConfig{Failures: 5},
		Health:  lb.HealthConfig{Checker: lb.NewTCPCheck(), Interval: 2 * time.Second},
	})
	if err != nil {
		log.Fatal(err)
	}
	srv := server.New(server.Options{})
	srv.AddService(svc.Background())
	p := proxy.NewService("proxy", &lbProxy{upstreams: svc}, proxy.Options{})
	p.AddTCP("0.0.0.0:6188")
	srv.AddService(p)
	// srv.Run(context.Background())
}
