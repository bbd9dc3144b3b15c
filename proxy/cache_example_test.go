package proxy_test

import (
	"bytes"
	"net"

	"github.com/pingora-go/pingora/cache"
	"github.com/pingora-go/pingora/cache/storage/memory"
	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/upstream"
)

// cachingProxy caches the responses of /static/ and lets clients on loopback purge.
type cachingProxy struct {
	proxy.Defaults[struct{}]
	peer  *upstream.Peer
	cache *cache.Cache
}

func (p *cachingProxy) NewCtx() struct{} { return struct{}{} }

func (p *cachingProxy) UpstreamPeer(*proxy.Session, *struct{}) (*upstream.Peer, error) {
	return p.peer, nil
}

// RequestCacheFilter enables the cache for the requests it should serve: one line.
func (p *cachingProxy) RequestCacheFilter(s *proxy.Session, _ *struct{}) error {
	if bytes.HasPrefix(s.Req().Path(), []byte("/static/")) {
		s.EnableCache(p.cache)
	}
	return nil
}

// IsPurge accepts PURGE from loopback clients only.
func (p *cachingProxy) IsPurge(s *proxy.Session, _ *struct{}) bool {
	ip, _, _ := net.SplitHostPort(s.ClientAddr().String())
	return proxy.IsPurgeMethod(s) && net.ParseIP(ip).IsLoopback()
}

// ResponseFilter hides the cache's Cache-Status from clients.
func (p *cachingProxy) ResponseFilter(_ *proxy.Session, resp *header.ResponseHeader, _ *struct{}) error {
	resp.Remove("Cache-Status")
	return nil
}

// ExampleSession_EnableCache shows a program that caches part of its responses and accepts
// purges.
func ExampleSession_EnableCache() {
	c, _ := cache.New(cache.Config{Storage: memory.New(memory.Config{MaxBytes: 256 << 20})})
	peer, _ := upstream.NewPeer("127.0.0.1:8000", false, "")
	svc := proxy.NewService("caching proxy", &cachingProxy{peer: peer, cache: c}, proxy.Options{})
	svc.AddTCP("127.0.0.1:8080")
	// Add svc to a server.Server and run it.
}

// allCached is a proxy program without cache phases of its own.
type allCached struct {
	proxy.Defaults[struct{}]
	peer *upstream.Peer
}

func (p *allCached) NewCtx() struct{} { return struct{}{} }

func (p *allCached) UpstreamPeer(*proxy.Session, *struct{}) (*upstream.Peer, error) {
	return p.peer, nil
}

// ExampleOptions_cache caches every cacheable response of a proxy, as the pingora binary's
// --cache-memory does: the default RequestCacheFilter enables Options.Cache.
func ExampleOptions_cache() {
	c, _ := cache.New(cache.Config{Storage: memory.New(memory.Config{MaxBytes: 256 << 20})})
	peer, _ := upstream.NewPeer("127.0.0.1:8000", false, "")
	svc := proxy.NewService("cache everything", &allCached{peer: peer}, proxy.Options{Cache: c})
	svc.AddTCP("127.0.0.1:8080")
}
