// Command gateway is an API gateway in front of two upstreams: it rejects requests that carry
// no login header with 403, and routes paths under /family/ to their own upstream.
//
//	go run ./examples/gateway -listen 127.0.0.1:6191 -upstream 127.0.0.1:8001 -family 127.0.0.1:8002
package main

import (
	"bytes"
	"context"
	"flag"
	"log"

	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
	"github.com/pingora-go/pingora/upstream"
)

// LoginHeader is the custom header that, like Authorization, admits a request.
const LoginHeader = "X-Login"

func main() {
	listen := flag.String("listen", "127.0.0.1:6191", "address to accept HTTP on")
	def := flag.String("upstream", "127.0.0.1:8001", "upstream host:port for all other paths")
	family := flag.String("family", "127.0.0.1:8002", "upstream host:port for paths under /family/")
	flag.Parse()

	app, err := newProxy(*def, *family)
	if err != nil {
		log.Fatal(err)
	}
	svc := proxy.NewService("gateway", app, proxy.Options{})
	svc.AddTCP(*listen)
	srv := server.New(server.Options{})
	srv.AddService(svc)
	if err := srv.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

// gateway checks logins and routes by path.
type gateway struct {
	proxy.Defaults[struct{}]
	main, family *upstream.Peer
}

// newProxy returns the gateway sending /family/ paths to family and the rest to def.
func newProxy(def, family string) (*gateway, error) {
	m, err := upstream.NewPeer(def, false, "")
	if err != nil {
		return nil, err
	}
	f, err := upstream.NewPeer(family, false, "")
	if err != nil {
		return nil, err
	}
	return &gateway{main: m, family: f}, nil
}

// NewCtx returns the empty context: the gateway keeps no per-request state.
func (g *gateway) NewCtx() struct{} { return struct{}{} }

// RequestFilter answers 403 to a request without a login header; returning true ends the
// request with that response, and nothing goes upstream.
func (g *gateway) RequestFilter(s *proxy.Session, _ *struct{}) (bool, error) {
	req := s.Req()
	if req.Has("Authorization") || req.Has(LoginHeader) {
		return false, nil
	}
	return true, s.RespondError(403)
}

// UpstreamPeer routes /family/ paths to the family upstream.
func (g *gateway) UpstreamPeer(s *proxy.Session, _ *struct{}) (*upstream.Peer, error) {
	if bytes.HasPrefix(s.Req().Path(), []byte("/family/")) {
		return g.family, nil
	}
	return g.main, nil
}
