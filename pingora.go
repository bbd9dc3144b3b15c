// Package pingora is the quick start of pingora-go: a reverse proxy in front of a list of
// upstream servers in a few lines. Programs that need more implement proxy.ProxyHTTP and run
// it with package server, as the examples directory shows.
package pingora

import (
	"fmt"
	"sync/atomic"

	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
	"github.com/pingora-go/pingora/upstream"
)

// ReverseProxy is a proxy program that sends requests to its upstreams in turn (round robin)
// and, when connecting to one fails, tries the next.
type ReverseProxy struct {
	proxy.Defaults[Attempt]
	peers []*upstream.Peer
	next  atomic.Uint64
}

// Attempt is the per-request context of ReverseProxy: the upstream index of the first try and
// how many upstreams were tried.
type Attempt struct {
	first uint64
	tries int
}

// NewCtx starts a request's context.
func (rp *ReverseProxy) NewCtx() Attempt { return Attempt{} }

// UpstreamPeer picks the next upstream in turn; a retry moves on to the following one.
func (rp *ReverseProxy) UpstreamPeer(_ *proxy.Session, a *Attempt) (*upstream.Peer, error) {
	if a.tries == 0 {
		a.first = rp.next.Add(1) - 1
	}
	i := (a.first + uint64(a.tries)) % uint64(len(rp.peers))
	a.tries++
	return rp.peers[i], nil
}

// FailToConnect retries on the next upstream while some have not been tried.
func (rp *ReverseProxy) FailToConnect(_ *proxy.Session, _ *upstream.Peer, a *Attempt, err *perr.Error) *perr.Error {
	if a.tries < len(rp.peers) {
		err.SetRetry(true)
	}
	return err
}

// NewReverseProxyApp returns the proxy program for upstreams, each "host:port" spoken to over
// plain HTTP/1.1.
func NewReverseProxyApp(upstreams ...string) (*ReverseProxy, error) {
	if len(upstreams) == 0 {
		return nil, fmt.Errorf("pingora: no upstream given")
	}
	rp := &ReverseProxy{}
	for _, u := range upstreams {
		p, err := upstream.NewPeer(u, false, "")
		if err != nil {
			return nil, err
		}
		rp.peers = append(rp.peers, p)
	}
	return rp, nil
}

// Peers returns the upstream peers, in turn order. Their Options may be changed (timeouts,
// HTTP/2, ...) before the proxy serves its first request, not after.
func (rp *ReverseProxy) Peers() []*upstream.Peer { return rp.peers }

// NewReverseProxy returns a server that listens on listen ("host:port") and proxies every
// request to upstreams in turn. Run it with Run, which returns after SIGTERM (graceful) or
// SIGINT (fast).
func NewReverseProxy(listen string, upstreams ...string) (*server.Server, error) {
	app, err := NewReverseProxyApp(upstreams...)
	if err != nil {
		return nil, err
	}
	svc := proxy.NewService("pingora-go reverse proxy", app, proxy.Options{})
	svc.AddTCP(listen)
	srv := server.New(server.Options{})
	srv.AddService(svc)
	return srv, nil
}
