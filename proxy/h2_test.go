package proxy_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"log/slog"

	"github.com/pingora-go/pingora/internal/testpki"
	"github.com/pingora-go/pingora/listeners"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
	"github.com/pingora-go/pingora/upstream"
)

// h2cClient speaks cleartext HTTP/2 with prior knowledge.
func h2cClient() *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}
}

// startH2COrigin serves h with HTTP/1.1 and cleartext HTTP/2 on one port.
func startH2COrigin(t testing.TB, h http.Handler) *countingServer {
	t.Helper()
	cs := startOriginWith(t, h, func(s *http.Server) {
		s.Protocols = new(http.Protocols)
		s.Protocols.SetHTTP1(true)
		s.Protocols.SetUnencryptedHTTP2(true)
	})
	return cs
}

// h2Echo answers with the protocol it was reached over, the method, the host, the body
// length and a digest of the body, and sends a trailer when the request had one.
func h2Echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.Header().Set("Trailer", "X-Sum")
	w.Header().Set("X-Proto", r.Proto)
	w.Header().Set("X-Req-Te", r.Header.Get("Te"))
	fmt.Fprintf(w, "%s %s %s %d %q", r.Proto, r.Method, r.Host, len(body), r.Trailer.Get("X-Req-Trailer"))
	w.(http.Flusher).Flush()
	w.Header().Set("X-Sum", fmt.Sprint(sum(body)))
}

func sum(b []byte) int {
	n := 0
	for _, c := range b {
		n += int(c)
	}
	return n
}

// bodyReader is a request body of unknown length, so that it goes chunked over HTTP/1.1 and
// without content-length over HTTP/2.
type bodyReader struct{ r io.Reader }

func (b bodyReader) Read(p []byte) (int, error) { return b.r.Read(p) }

func TestH2CDownstreamToH1Upstream(t *testing.T) {
	origin := startOrigin(t, http.HandlerFunc(h2Echo))
	app := &testApp{peers: []*upstream.Peer{mustPeer(t, origin.addr)}}
	addr, _ := startProxy(t, app, proxy.Options{H2C: true})
	c := h2cClient()

	resp, err := c.Get("http://" + addr + "/a")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.Header.Get("X-Proto") != "HTTP/1.1" ||
		!strings.HasPrefix(string(b), "HTTP/1.1 GET "+addr+" 0") {
		t.Fatalf("proto %s, upstream %s, body %q", resp.Proto, resp.Header.Get("X-Proto"), b)
	}
	if resp.Trailer.Get("X-Sum") != "0" {
		t.Fatalf("HTTP/1 chunked trailer not forwarded as an HTTP/2 trailer: %v", resp.Trailer)
	}

	// A body of unknown length goes upstream chunked, with its trailer.
	payload := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320 KB
	req, _ := http.NewRequest("POST", "http://"+addr+"/b", bodyReader{bytes.NewReader(payload)})
	req.Trailer = http.Header{"X-Req-Trailer": []string{"t1"}}
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fmt.Sprintf("HTTP/1.1 POST %s %d %q", addr, len(payload), "t1")
	if string(b) != want || resp.Trailer.Get("X-Sum") != fmt.Sprint(sum(payload)) {
		t.Fatalf("got %q trailer %v, want %q sum %d", b, resp.Trailer, want, sum(payload))
	}

	// HTTP/1.1 clients still work on the same port.
	resp, err = newClient().Get("http://" + addr + "/c")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 1 || resp.StatusCode != 200 {
		t.Fatalf("HTTP/1.1 client got %s %d", resp.Proto, resp.StatusCode)
	}
}

func TestH1DownstreamToH2CUpstreamSharesConnection(t *testing.T) {
	origin := startH2COrigin(t, http.HandlerFunc(h2Echo))
	peer := mustPeer(t, origin.addr)
	peer.Options.ALPN = upstream.H2
	app := &testApp{peers: []*upstream.Peer{peer}}
	addr, p := startProxy(t, app, proxy.Options{})

	const n = 40
	var wg sync.WaitGroup
	var bad atomic.Value
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := strings.Repeat("x", i*1000)
			req, _ := http.NewRequest("POST", "http://"+addr+"/p", bodyReader{strings.NewReader(payload)})
			req.Header.Set("TE", "trailers")
			resp, err := client.Do(req)
			if err != nil {
				bad.Store(err.Error())
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := fmt.Sprintf("HTTP/2.0 POST %s %d", addr, len(payload))
			if !strings.HasPrefix(string(b), want) || resp.Trailer.Get("X-Sum") != fmt.Sprint(sum([]byte(payload))) ||
				resp.Header.Get("X-Req-Te") != "trailers" {
				bad.Store(fmt.Sprintf("got %q trailers %v te %q, want %q", b, resp.Trailer, resp.Header.Get("X-Req-Te"), want))
			}
		}()
	}
	wg.Wait()
	if v := bad.Load(); v != nil {
		t.Fatal(v)
	}
	if c := origin.conns.Load(); c != 1 {
		t.Fatalf("%d upstream connections for %d concurrent requests, want 1 shared HTTP/2 connection", c, n)
	}
	// A request's upstream stream is released after its response has been written, which the
	// client may already have read; Logging runs after the release.
	for deadline := time.Now().Add(5 * time.Second); app.logged.Load() < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests logged", app.logged.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	if conns, streams := p.Connector().H2Conns(); conns != 1 || streams != 0 {
		t.Fatalf("connector holds %d HTTP/2 connections with %d streams, want 1 idle", conns, streams)
	}
}

// leafCert issues a certificate for names from ca.
func leafCert(t testing.TB, ca *testpki.CA, names ...string) tls.Certificate {
	t.Helper()
	leaf, err := ca.Issue(testpki.LeafOptions{Names: names})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := leaf.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// tlsOrigin serves h over TLS with a certificate for localhost from ca, offering protos by
// ALPN.
func tlsOrigin(t testing.TB, ca *testpki.CA, h http.Handler, protos ...string) *countingServer {
	t.Helper()
	cert := leafCert(t, ca, "localhost")
	return startOriginWith(t, h, func(s *http.Server) {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: protos}
		s.Protocols = new(http.Protocols)
		for _, p := range protos {
			switch p {
			case "h2":
				s.Protocols.SetHTTP2(true)
			case "http/1.1":
				s.Protocols.SetHTTP1(true)
			}
		}
	})
}

// startTLSProxy serves app over TLS with ALPN h2 and http/1.1, with a certificate for
// localhost from ca.
func startTLSProxy(t testing.TB, app proxy.ProxyHTTP[testCtx], ca *testpki.CA, opts proxy.Options) string {
	t.Helper()
	cert := leafCert(t, ca, "localhost")
	to := listeners.TLSOptions{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }}
	to.EnableH2()
	settings, err := listeners.NewTLS(to)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts.Logger = logger
	p := proxy.New(app, opts)
	svc := server.NewListeningService("tls", p)
	svc.SetLogger(logger)
	svc.AddTLS("127.0.0.1:0", settings)
	srv := server.New(server.Options{GracePeriod: time.Second, Logger: logger})
	srv.AddService(svc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.RunServices(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; p.Connector().Close() })
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if a := svc.Addrs(); len(a) > 0 {
			return a[0].String()
		}
	}
	t.Fatal("TLS service did not start")
	return ""
}

// startProxyCtx serves app on a loopback port until ctx ends (a graceful shutdown); stopped
// is closed when the server has stopped.
func startProxyCtx(t testing.TB, ctx context.Context, app proxy.ProxyHTTP[testCtx], opts proxy.Options) (addr string, stopped <-chan struct{}) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts.Logger = logger
	p := proxy.New(app, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc := server.NewListeningService("test proxy", p)
	svc.SetLogger(logger)
	svc.AddListener(ln)
	srv := server.New(server.Options{GracePeriod: 5 * time.Second, Logger: logger})
	srv.AddService(svc)
	done := make(chan struct{})
	go func() { srv.RunServices(ctx); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("proxy did not stop")
		}
		p.Connector().Close()
	})
	return ln.Addr().String(), done
}

func TestH2OverTLSBothSidesAndH1Fallback(t *testing.T) {
	ca, err := testpki.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	roots := ca.Pool()

	h2Origin := tlsOrigin(t, ca, http.HandlerFunc(h2Echo), "h2", "http/1.1")
	h1Origin := tlsOrigin(t, ca, http.HandlerFunc(h2Echo), "http/1.1")
	peerFor := func(addr string) *upstream.Peer {
		p, err := upstream.NewPeer(addr, true, "localhost")
		if err != nil {
			t.Fatal(err)
		}
		p.Options.ALPN = upstream.H2H1
		p.Options.CA = roots
		return p
	}
	var route atomic.Value
	route.Store(peerFor(h2Origin.addr))
	appPeer := func() *upstream.Peer { return route.Load().(*upstream.Peer) }
	ta := &testApp{}
	addr := startTLSProxy(t, &routeApp{testApp: ta, peer: appPeer}, ca, proxy.Options{})

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost"}, ForceAttemptHTTP2: true}}
	get := func() (*http.Response, string) {
		resp, err := client.Get("https://" + addr + "/x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	resp, body := get()
	if resp.ProtoMajor != 2 || !strings.HasPrefix(body, "HTTP/2.0 GET") {
		t.Fatalf("h2→h2: client %s, upstream saw %q", resp.Proto, body)
	}

	// A peer preferring HTTP/2 whose handshake picks http/1.1: the request goes over
	// HTTP/1.1, and the next one reuses that pooled connection without offering h2 again.
	route.Store(peerFor(h1Origin.addr))
	for i := range 3 {
		resp, body = get()
		if !strings.HasPrefix(body, "HTTP/1.1 GET") {
			t.Fatalf("request %d over the fallback: %q", i, body)
		}
		// The upstream connection goes back to the pool once the response has been
		// written, which the client may already have read: the request's Logging phase
		// runs after that, so wait for it before the next request.
		for deadline := time.Now().Add(5 * time.Second); ta.logged.Load() < int64(i+2); {
			if time.Now().After(deadline) {
				t.Fatalf("request %d was not logged", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if c := h1Origin.conns.Load(); c != 1 {
		t.Fatalf("HTTP/1.1 fallback used %d connections for 3 sequential requests, want 1", c)
	}
}

// routeApp is a testApp whose peer comes from a function.
type routeApp struct {
	*testApp
	peer func() *upstream.Peer
}

func (a *routeApp) UpstreamPeer(*proxy.Session, *testCtx) (*upstream.Peer, error) {
	return a.peer(), nil
}

// TestH2ResetOnTruncatedUpstream checks that an HTTP/2 client never takes a response cut
// short upstream for a complete one: the stream is reset.
func TestH2ResetOnTruncatedUpstream(t *testing.T) {
	up := rawOrigin(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		c.Read(buf)
		// Chunked, cut before the last chunk: nothing but the reset tells the client.
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1388\r\n")
		c.Write(bytes.Repeat([]byte("a"), 5000))
		io.WriteString(c, "\r\n")
	})
	app := &testApp{peers: []*upstream.Peer{mustPeer(t, up)}}
	addr, _ := startProxy(t, app, proxy.Options{H2C: true})
	resp, err := h2cClient().Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("read %d bytes of a truncated response without an error", n)
	}
}

// TestH2GracefulShutdown checks that a shutdown lets a stream in flight finish and sends
// GOAWAY, so that the client opens no new stream on the connection.
func TestH2GracefulShutdown(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			<-release
		}
		io.WriteString(w, "done")
	}))
	app := &testApp{peers: []*upstream.Peer{mustPeer(t, origin.addr)}}
	ctx, cancel := context.WithCancel(context.Background())
	addr, stopped := startProxyCtx(t, ctx, app, proxy.Options{H2C: true})
	c := h2cClient()
	got := make(chan string, 1)
	go func() {
		resp, err := c.Get("http://" + addr + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	select {
	case <-arrived: // the stream is in flight
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not reach the origin")
	}
	cancel()
	time.Sleep(200 * time.Millisecond) // the shutdown begins while the stream waits
	close(release)
	select {
	case s := <-got:
		if s != "done" {
			t.Fatalf("stream in flight during shutdown got %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stream in flight did not finish")
	}
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop after its last stream")
	}
}

// TestH2FailedStreamKeepsConnection checks that a request failing upstream (502) ends its
// stream alone: the client's other requests go on over the same HTTP/2 connection.
func TestH2FailedStreamKeepsConnection(t *testing.T) {
	origin := startOrigin(t, http.HandlerFunc(h2Echo))
	down := mustPeer(t, rawOrigin(t, func(c net.Conn) {})) // closes every connection at once
	app := &routeApp{testApp: &testApp{}, peer: nil}
	var fail atomic.Bool
	app.peer = func() *upstream.Peer {
		if fail.Load() {
			return down
		}
		return mustPeer(t, origin.addr)
	}
	addr, _ := startProxy(t, app, proxy.Options{H2C: true})
	var dials atomic.Int64
	tr := &http.Transport{Protocols: new(http.Protocols), DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, a)
	}}
	tr.Protocols.SetUnencryptedHTTP2(true)
	c := &http.Client{Timeout: 30 * time.Second, Transport: tr}
	get := func() int {
		resp, err := c.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get(); s != 200 {
		t.Fatalf("first request: %d", s)
	}
	fail.Store(true)
	if s := get(); s != 502 {
		t.Fatalf("request to a closed upstream: %d", s)
	}
	fail.Store(false)
	if s := get(); s != 200 {
		t.Fatalf("request after the failure: %d", s)
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("the client dialed %d connections: the failure closed the shared one", n)
	}
}
