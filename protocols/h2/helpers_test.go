package h2

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/pingora-go/pingora/internal/testpki"
)

// waitBound bounds every wait of these tests.
const waitBound = 20 * time.Second

// testTLS returns a server and a client TLS configuration that negotiate "h2".
func testTLS(t testing.TB) (srv, cli *tls.Config) {
	t.Helper()
	ca, err := testpki.NewCA("h2 test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(testpki.LeafOptions{Names: []string{"localhost", "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := leaf.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	srv = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}
	cli = &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", NextProtos: []string{"h2"}}
	return srv, cli
}

// serve listens on loopback and serves every accepted connection with a ServerConn built
// with opts, over TLS when tlsConf is not nil. The ServerConns are sent on conns when it is
// not nil. The listener and the connections close at the end of the test.
func serve(t testing.TB, opts *ServerOptions, tlsConf *tls.Config, conns chan<- *ServerConn, h func(*ServerStream)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if tlsConf != nil {
				c = tls.Server(c, tlsConf)
			}
			sc := NewServerConn(c, opts)
			if conns != nil {
				conns <- sc
			}
			go sc.Serve(h)
			go func() {
				select {
				case <-ctx.Done():
					sc.Close()
				case <-sc.Done():
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		cancel()
		<-done
	})
	return ln.Addr().String()
}

// dial connects a ClientConn to addr, over TLS when tlsConf is not nil.
func dial(t testing.TB, addr string, tlsConf *tls.Config, opts *ClientOptions) *ClientConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitBound)
	if err != nil {
		t.Fatal(err)
	}
	if tlsConf != nil {
		tc := tls.Client(c, tlsConf)
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
			t.Fatalf("ALPN chose %q", p)
		}
		c = tc
	}
	cc, err := NewClientConn(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}
