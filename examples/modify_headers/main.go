// Command modify_headers is a reverse proxy that edits headers on the way through: it adds
// X-Forwarded-For and replaces or removes request fields before they go upstream, and sets
// Server, adds Via and removes Alt-Svc and X-Powered-By on the response.
//
//	go run ./examples/modify_headers -listen 127.0.0.1:6192 -upstream 127.0.0.1:8001
package main

import (
	"context"
	"flag"
	"log"
	"net"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
	"github.com/pingora-go/pingora/upstream"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:6192", "address to accept HTTP on")
	up := flag.String("upstream", "127.0.0.1:8001", "upstream host:port")
	flag.Parse()

	app, err := newProxy(*up)
	if err != nil {
		log.Fatal(err)
	}
	svc := proxy.NewService("modify headers", app, proxy.Options{})
	svc.AddTCP(*listen)
	srv := server.New(server.Options{})
	srv.AddService(svc)
	if err := srv.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

// headerEditor proxies to one upstream and edits headers both ways.
type headerEditor struct {
	proxy.Defaults[struct{}]
	peer *upstream.Peer
}

// newProxy returns the header-editing proxy in front of addr.
func newProxy(addr string) (*headerEditor, error) {
	p, err := upstream.NewPeer(addr, false, "")
	if err != nil {
		return nil, err
	}
	return &headerEditor{peer: p}, nil
}

// NewCtx returns the empty context: no per-request state is needed.
func (h *headerEditor) NewCtx() struct{} { return struct{}{} }

// UpstreamPeer sends every request to the one upstream.
func (h *headerEditor) UpstreamPeer(*proxy.Session, *struct{}) (*upstream.Peer, error) {
	return h.peer, nil
}

// UpstreamRequestFilter edits the copy of the request that goes upstream; the downstream
// request (s.Req()) stays as the client sent it.
func (h *headerEditor) UpstreamRequestFilter(s *proxy.Session, req *header.RequestHeader, _ *struct{}) error {
	// Add: the client's address to X-Forwarded-For, after any addresses already there.
	client := s.ClientAddr().String()
	if host, _, err := net.SplitHostPort(client); err == nil {
		client = host
	}
	if prev := req.Value("X-Forwarded-For"); prev != "" {
		client = prev + ", " + client
	}
	req.Set("X-Forwarded-For", client)
	// Replace: whatever the client claimed, the scheme it used was plain http.
	req.Set("X-Forwarded-Proto", "http")
	// Remove: a header only the proxy's own network may set.
	req.Remove("X-Internal-Token")
	return nil
}

// ResponseFilter edits the response head sent downstream.
func (h *headerEditor) ResponseFilter(_ *proxy.Session, resp *header.ResponseHeader, _ *struct{}) error {
	resp.Set("Server", "pingora-go")
	resp.Append("Via", "1.1 pingora-go")
	// The upstream's HTTP/3 endpoint is not reachable through this proxy.
	resp.Remove("Alt-Svc")
	resp.Remove("X-Powered-By")
	return nil
}
