// Package grpce2e runs grpc-go clients and servers through the proxy: unary and streaming
// calls in both directions, large messages, status codes and metadata carried in HTTP/2
// trailers, deadlines and cancellation, over every combination of cleartext HTTP/2 (prior
// knowledge) and HTTP/2 over TLS (ALPN) on both sides of the proxy. The service is declared by
// hand with a codec of raw bytes, so no generated code is needed. Every wait is bounded.
package grpce2e

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pingora-go/pingora/internal/testpki"
	"github.com/pingora-go/pingora/internal/testserve"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
	"github.com/pingora-go/pingora/upstream"
)

// waitBound bounds every wait of these tests: a call, a server's report, a shutdown.
const waitBound = 20 * time.Second

// maxMsg is the message size limit of the test's clients and servers, above the 4 MiB
// messages the tests send (gRPC's default limit is 4 MiB, its framing adds 5 bytes).
const maxMsg = 16 << 20

// msg is the message type of the test service: opaque bytes.
type msg struct{ b []byte }

// bytesCodec marshals *msg as its bytes, so that the service needs no protobuf.
type bytesCodec struct{}

// Marshal returns the bytes of a *msg.
func (bytesCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(*msg)
	if !ok {
		return nil, errors.New("bytesCodec: not a *msg")
	}
	return m.b, nil
}

// Unmarshal copies data into a *msg: gRPC may reuse data after the call.
func (bytesCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(*msg)
	if !ok {
		return errors.New("bytesCodec: not a *msg")
	}
	m.b = append(m.b[:0], data...)
	return nil
}

// Name is the codec's content subtype: requests say application/grpc+bytes.
func (bytesCodec) Name() string { return "bytes" }

// endpoint is how one side of the proxy is reached: cleartext HTTP/2 with prior knowledge, or
// TLS with ALPN h2.
type endpoint struct {
	name string
	tls  bool
}

var endpoints = []endpoint{{"h2c", false}, {"tls", true}}

// pki is the test CA and a certificate for localhost it issued.
type pki struct {
	ca   *testpki.CA
	cert tls.Certificate
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	ca, err := testpki.NewCA("grpc e2e CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(testpki.LeafOptions{Names: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := leaf.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	return &pki{ca: ca, cert: cert}
}

// startGRPC serves the test service with grpc-go on a loopback port, over TLS when ep says so,
// and returns the server's address.
func startGRPC(t *testing.T, ep endpoint, k *pki, svc *service) string {
	t.Helper()
	opts := []grpc.ServerOption{grpc.ForceServerCodec(bytesCodec{}),
		grpc.MaxRecvMsgSize(maxMsg), grpc.MaxSendMsgSize(maxMsg)}
	if ep.tls {
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{k.cert}})))
	}
	s := grpc.NewServer(opts...)
	s.RegisterService(&serviceDesc, svc)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(ln)
	}()
	t.Cleanup(func() {
		// Stop closes every connection at once: the proxy's pooled ones would keep a graceful
		// stop waiting for their idle timeout.
		s.Stop()
		select {
		case <-done:
		case <-time.After(waitBound):
			t.Error("gRPC server did not stop")
		}
	})
	return ln.Addr().String()
}

// app sends every request to one peer.
type app struct {
	proxy.Defaults[struct{}]
	peer *upstream.Peer
}

func (a *app) NewCtx() struct{} { return struct{}{} }

func (a *app) UpstreamPeer(*proxy.Session, *struct{}) (*upstream.Peer, error) { return a.peer, nil }

// startProxy runs the proxy on a loopback port, serving h2c with prior knowledge or TLS with
// ALPN h2, in front of the gRPC server at origin reached as up says (HTTP/2 only: a gRPC
// upstream must not be downgraded to HTTP/1.1). It returns the proxy's address.
func startProxy(t *testing.T, down, up endpoint, k *pki, origin string) string {
	t.Helper()
	peer, err := upstream.NewPeer(origin, up.tls, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	peer.Options.ALPN = upstream.H2
	peer.Options.CA = k.ca.Pool()
	logger := testserve.Quiet()
	p := proxy.New[struct{}](&app{peer: peer}, proxy.Options{H2C: !down.tls, Logger: logger})
	svc := server.NewListeningService("grpc proxy", p)
	svc.SetLogger(logger)
	if down.tls {
		testserve.ListenTLS(t, svc, &k.cert)
	} else {
		testserve.Listen(t, svc)
	}
	testserve.Run(t, testserve.Options{Logger: logger, AfterStop: p.Connector().Close}, svc)
	return testserve.Addr(t, svc)
}

// dialProxy returns a gRPC client of the proxy at addr, over TLS (verifying the certificate
// for localhost) or h2c as down says.
func dialProxy(t *testing.T, down endpoint, k *pki, addr string) *grpc.ClientConn {
	t.Helper()
	creds := insecure.NewCredentials()
	if down.tls {
		creds = credentials.NewTLS(&tls.Config{RootCAs: k.ca.Pool(), ServerName: "localhost"})
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(bytesCodec{}), grpc.MaxCallRecvMsgSize(maxMsg), grpc.MaxCallSendMsgSize(maxMsg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}
