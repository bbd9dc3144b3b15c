package snippets_test

import (
	"log"

	"github.com/pingora-go/pingora/listeners"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
	"github.com/pingora-go/pingora/upstream"
)

// HTTP/2 on both sides: a TLS listener offering h2 by ALPN, cleartext h2c with prior
// knowledge on a second port, and upstream peers spoken to over HTTP/2.
func Example_http2() {
	// Upstream: a gRPC backend over cleartext HTTP/2 (prior knowledge), up to 200 requests
	// at once on each connection, and a TLS origin that is asked for h2 and may answer
	// http/1.1 (remembered for the peer).
	grpcPeer, _ := upstream.NewPeer("10.0.0.7:50051", false, "")
	grpcPeer.Options.ALPN = upstream.H2
	grpcPeer.Options.MaxH2Streams = 200
	webPeer, _ := upstream.NewPeer("10.0.0.8:443", true, "www.example.com")
	webPeer.Options.ALPN = upstream.H2H1
	_ = webPeer

	// Downstream: h2 by ALPN on the TLS listener, and h2c beside HTTP/1.1 on port 8080.
	tlsOpts := listeners.TLSOptions{Certs: []listeners.CertFiles{{CertFile: "www.crt", KeyFile: "www.key"}}}
	tlsOpts.EnableH2()
	opts := proxy.Options{H2C: true}
	opts.H2.MaxConcurrentStreams = 250

	svc := proxy.NewService("h2 proxy", &quickLB{}, opts)
	svc.AddTCP("0.0.0.0:8080")
	settings, err := listeners.NewTLS(tlsOpts)
	if err != nil {
		log.Print(err) // the certificate files do not exist here
	} else {
		svc.AddTLS("0.0.0.0:443", settings)
	}
	srv := server.New(server.Options{})
	srv.AddService(svc)
	// srv.Run(context.Background()) serves until a signal.

	// Output:
}
