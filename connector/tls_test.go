package connector

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/internal/testpki"
	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/upstream"
)

// tlsOrigin is a TLS server on loopback that writes the negotiated protocol and the client
// certificate's name after each handshake, then closes.
type tlsOrigin struct {
	addr string
	ca   *testpki.CA
}

func startTLSOrigin(t *testing.T, leaf *testpki.Leaf, ca *testpki.CA, clientCA *testpki.CA) *tlsOrigin {
	t.Helper()
	cert, err := leaf.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	if clientCA != nil {
		cfg.ClientCAs = clientCA.Pool()
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	serveEach(t, ln, func(c net.Conn) {
		tc := c.(*tls.Conn)
		if tc.Handshake() != nil {
			return
		}
		cs := tc.ConnectionState()
		client := "-"
		if len(cs.PeerCertificates) > 0 {
			client = cs.PeerCertificates[0].Subject.CommonName
		}
		tc.Write([]byte(cs.NegotiatedProtocol + " " + client + "\n"))
	})
	return &tlsOrigin{addr: ln.Addr().String(), ca: ca}
}

// serveEach accepts connections on ln until the test ends and handles each on its own
// goroutine, under a 10 s deadline; the test's end closes ln and waits for the handlers.
func serveEach(t *testing.T, ln net.Listener, handle func(net.Conn)) {
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				handle(c)
			}()
		}
	}()
}

func mustCA(t *testing.T, name string) *testpki.CA {
	t.Helper()
	ca, err := testpki.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func mustLeaf(t *testing.T, ca *testpki.CA, o testpki.LeafOptions) *testpki.Leaf {
	t.Helper()
	l, err := ca.Issue(o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// answer reads the origin's line on conn.
func answer(t *testing.T, conn net.Conn) string {
	t.Helper()
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the origin's answer: %v", err)
	}
	return line[:len(line)-1]
}

func TestTLSVerification(t *testing.T) {
	ca := mustCA(t, "origin CA")
	good := startTLSOrigin(t, mustLeaf(t, ca, testpki.LeafOptions{Names: []string{"origin.test"}}), ca, nil)
	expired := startTLSOrigin(t, mustLeaf(t, ca, testpki.LeafOptions{Names: []string{"origin.test"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}), ca, nil)
	under := startTLSOrigin(t, mustLeaf(t, ca, testpki.LeafOptions{Names: []string{"my-origin.test"}}), ca, nil)
	other := mustCA(t, "another CA")

	tests := []struct {
		name   string
		origin *tlsOrigin
		sni    string
		opts   upstream.Options
		roots  *testpki.CA // the connector's RootCAs
		want   error       // nil for success, else the perr type
	}{
		{name: "verified", origin: good, sni: "origin.test", roots: ca},
		{name: "per-peer CA", origin: good, sni: "origin.test", opts: upstream.Options{CA: ca.Pool()}, roots: other},
		{name: "wrong hostname", origin: good, sni: "wrong.test", roots: ca, want: perr.InvalidCert},
		{name: "wrong hostname, alternative name", origin: good, sni: "wrong.test", opts: upstream.Options{AlternativeCN: "origin.test"}, roots: ca},
		{name: "wrong hostname, hostname not verified", origin: good, sni: "wrong.test", opts: upstream.Options{SkipVerifyHostname: true}, roots: ca},
		{name: "unknown authority", origin: good, sni: "origin.test", roots: other, want: perr.InvalidCert},
		{name: "unknown authority, hostname not verified", origin: good, sni: "origin.test", opts: upstream.Options{SkipVerifyHostname: true}, roots: other, want: perr.InvalidCert},
		{name: "unknown authority, not verified", origin: good, sni: "origin.test", opts: upstream.Options{SkipVerifyCert: true}, roots: other},
		{name: "expired", origin: expired, sni: "origin.test", roots: ca, want: perr.InvalidCert},
		{name: "no SNI: no verification", origin: expired, sni: "", roots: other},
		{name: "underscore in SNI", origin: under, sni: "my_origin.test", roots: ca},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(Options{RootCAs: tt.roots.Pool()})
			defer c.Close()
			peer, err := upstream.NewPeer(tt.origin.addr, true, tt.sni)
			if err != nil {
				t.Fatal(err)
			}
			peer.Options = tt.opts
			conn, err := c.Dial(context.Background(), peer)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				answer(t, conn)
				return
			}
			if err == nil {
				conn.Close()
				t.Fatalf("connected, want %v", tt.want)
			}
			e, ok := perr.As(err)
			if !ok || !errors.Is(err, tt.want) || e.Source != perr.Upstream {
				t.Errorf("error %v, want type %v from upstream", err, tt.want)
			}
		})
	}
}

func TestTLSALPN(t *testing.T) {
	ca := mustCA(t, "origin CA")
	o := startTLSOrigin(t, mustLeaf(t, ca, testpki.LeafOptions{Names: []string{"origin.test"}}), ca, nil)
	tests := []struct {
		alpn upstream.ALPN
		get  bool // through Get (HTTP/1.1 sessions) rather than Dial
		want string
		fail bool
	}{
		{alpn: upstream.H1, want: "http/1.1"},
		{alpn: upstream.H2H1, want: "h2"},
		{alpn: upstream.H2, want: "h2"},
		{alpn: upstream.H2H1, get: true, want: "http/1.1"},
		{alpn: upstream.H2, get: true, fail: true},
	}
	for _, tt := range tests {
		name := tt.alpn.String()
		if tt.get {
			name += " through Get"
		}
		t.Run(name, func(t *testing.T) {
			c := New(Options{RootCAs: ca.Pool()})
			defer c.Close()
			peer, _ := upstream.NewPeer(o.addr, true, "origin.test")
			peer.Options.ALPN = tt.alpn
			var conn net.Conn
			var err error
			if tt.get {
				s, _, gerr := c.Get(context.Background(), peer)
				if gerr == nil {
					conn = s.Conn()
				}
				err = gerr
			} else {
				conn, err = c.Dial(context.Background(), peer)
			}
			if tt.fail {
				if !errors.Is(err, ErrH2Only) {
					t.Fatalf("err = %v, want ErrH2Only", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := conn.(*tls.Conn).ConnectionState().NegotiatedProtocol; got != tt.want {
				t.Errorf("negotiated %q, want %q", got, tt.want)
			}
			answer(t, conn)
		})
	}
}

func TestTLSClientCertificate(t *testing.T) {
	ca := mustCA(t, "origin CA")
	clientCA := mustCA(t, "client CA")
	o := startTLSOrigin(t, mustLeaf(t, ca, testpki.LeafOptions{Names: []string{"origin.test"}}), ca, clientCA)
	cert := func(name string) *tls.Certificate {
		c, err := mustLeaf(t, clientCA, testpki.LeafOptions{Names: []string{name}, Client: true}).TLSCertificate()
		if err != nil {
			t.Fatal(err)
		}
		return &c
	}
	tests := []struct {
		name            string
		connector, peer *tls.Certificate
		want            string
	}{
		{"none", nil, nil, "-"},
		{"the connector's default", cert("default"), nil, "default"},
		{"the peer's own wins", cert("default"), cert("peer"), "peer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(Options{RootCAs: ca.Pool(), ClientCert: tt.connector})
			defer c.Close()
			peer, _ := upstream.NewPeer(o.addr, true, "origin.test")
			peer.Options.ClientCert = tt.peer
			conn, err := c.Dial(context.Background(), peer)
			if err != nil {
				t.Fatal(err)
			}
			if got := answer(t, conn); got != "h2 "+tt.want && got != "http/1.1 "+tt.want {
				t.Errorf("origin saw %q, want client %q", got, tt.want)
			}
		})
	}
}

func TestTLSSessionResumptionPerPeer(t *testing.T) {
	ca := mustCA(t, "origin CA")
	o := startTLSOrigin(t, mustLeaf(t, ca, testpki.LeafOptions{Names: []string{"a.test", "b.test"}}), ca, nil)
	c := New(Options{RootCAs: ca.Pool()})
	defer c.Close()
	a, _ := upstream.NewPeer(o.addr, true, "a.test")
	b, _ := upstream.NewPeer(o.addr, true, "b.test")
	aAgain, _ := upstream.NewPeer(o.addr, true, "a.test")
	tests := []struct {
		name   string
		peer   *upstream.Peer
		resume bool
	}{
		{"first connection to a", a, false},
		{"second connection to a", a, true},
		{"first connection to b (another SNI)", b, false},
		{"an equal peer value shares a's sessions", aAgain, true},
	}
	for _, tt := range tests {
		conn, err := c.Dial(context.Background(), tt.peer)
		if err != nil {
			t.Fatal(err)
		}
		resumed := conn.(*tls.Conn).ConnectionState().DidResume
		answer(t, conn) // reading lets the client take the server's session ticket
		if resumed != tt.resume {
			t.Errorf("%s: resumed %v, want %v", tt.name, resumed, tt.resume)
		}
	}
	if st := c.Stats(); st.TLSHandshakes != 4 || st.TLSResumed != 2 || st.Dials != 4 {
		t.Errorf("stats %+v, want 4 handshakes, 2 resumed, 4 dials", st)
	}
}

// TestTLSPoolKeyedByTLSParams pools HTTP/1.1 sessions to one address under peers that differ
// only in their TLS parameters: a pooled connection goes back only to a peer with the same
// SNI, client certificate, verification and CA, which the origin confirms from its side.
func TestTLSPoolKeyedByTLSParams(t *testing.T) {
	ca := mustCA(t, "origin CA")
	clientCA := mustCA(t, "client CA")
	addr := startTLSHTTPOrigin(t, mustLeaf(t, ca, testpki.LeafOptions{Names: []string{"a.test", "b.test"}}), clientCA)
	clientCert, err := mustLeaf(t, clientCA, testpki.LeafOptions{Names: []string{"client"}, Client: true}).TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	c := New(Options{RootCAs: ca.Pool()})
	defer c.Close()
	peer := func(sni string, edit func(*upstream.Options)) *upstream.Peer {
		p, err := upstream.NewPeer(addr, true, sni)
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			edit(&p.Options)
		}
		return p
	}
	a := peer("a.test", nil)
	variants := []struct {
		name string
		peer *upstream.Peer
		seen string // what the origin sees: SNI and client certificate
	}{
		{"another SNI", peer("b.test", nil), "b.test -"},
		{"a client certificate", peer("a.test", func(o *upstream.Options) { o.ClientCert = &clientCert }), "a.test client"},
		{"hostname not verified", peer("a.test", func(o *upstream.Options) { o.SkipVerifyHostname = true }), "a.test -"},
		{"another CA pool", peer("a.test", func(o *upstream.Options) { o.CA = ca.Pool() }), "a.test -"},
		{"an alternative name", peer("a.test", func(o *upstream.Options) { o.AlternativeCN = "b.test" }), "a.test -"},
	}
	// exchange makes one request through a session of peer, releases it to the pool, and
	// returns whether it was reused, the local address of its connection and the origin's view.
	exchange := func(p *upstream.Peer) (reused bool, local, seen string) {
		t.Helper()
		s, reused, err := c.Get(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		req := header.NewRequest("GET", "/")
		req.Set("Host", p.SNI)
		if err := s.WriteRequestHeader(req); err != nil {
			t.Fatal(err)
		}
		if err := s.ReadResponseHeader(); err != nil {
			t.Fatal(err)
		}
		body := readBody(t, s)
		local = s.Conn().LocalAddr().String()
		c.Release(p, s)
		return reused, local, body
	}

	_, aLocal, seen := exchange(a)
	if seen != "a.test -" {
		t.Fatalf("origin saw %q, want a.test without a client certificate", seen)
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			if v.peer.ReuseHash() == a.ReuseHash() {
				t.Fatal("same reuse hash as the plain peer")
			}
			reused, local, seen := exchange(v.peer)
			if reused || local == aLocal {
				t.Errorf("got the plain peer's pooled connection (reused %v, local %s)", reused, local)
			}
			if seen != v.seen {
				t.Errorf("origin saw %q, want %q", seen, v.seen)
			}
		})
	}
	// Each variant's connection waits in the pool too; the plain peer still gets its own.
	reused, local, seen := exchange(a)
	if !reused || local != aLocal || seen != "a.test -" {
		t.Errorf("plain peer: reused %v on %s (want %s), origin saw %q", reused, local, aLocal, seen)
	}
}

// startTLSHTTPOrigin runs an HTTP/1.1 server over TLS on loopback that answers every request
// with the SNI it received and the common name of the client certificate ("-" for none).
func startTLSHTTPOrigin(t *testing.T, leaf *testpki.Leaf, clientCA *testpki.CA) string {
	t.Helper()
	cert, err := leaf.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"http/1.1"},
		ClientCAs:    clientCA.Pool(),
		ClientAuth:   tls.VerifyClientCertIfGiven,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			client := "-"
			if pc := r.TLS.PeerCertificates; len(pc) > 0 {
				client = pc[0].Subject.CommonName
			}
			io.WriteString(w, r.TLS.ServerName+" "+client)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// TestTLSHandshakeFailure meets servers the handshake cannot succeed with, for reasons other
// than the certificate: each is a TLSHandshakeFailure from upstream.
func TestTLSHandshakeFailure(t *testing.T) {
	ca := mustCA(t, "origin CA")
	cert, err := mustLeaf(t, ca, testpki.LeafOptions{Names: []string{"origin.test"}}).TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	// serve runs a server that handles each connection with handle until the test ends.
	serve := func(handle func(net.Conn)) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		serveEach(t, ln, handle)
		return ln.Addr().String()
	}
	tests := []struct {
		name    string
		addr    string
		wantErr string // part of the cause
	}{
		{"plain HTTP server", serve(func(c net.Conn) {
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
		}), "does not look like a TLS handshake"},
		{"TLS 1.1 only", serve(func(c net.Conn) {
			tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}).Handshake()
		}), "protocol version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(Options{RootCAs: ca.Pool()})
			defer c.Close()
			peer, _ := upstream.NewPeer(tt.addr, true, "origin.test")
			conn, err := c.Dial(context.Background(), peer)
			if err == nil {
				conn.Close()
				t.Fatal("connected, want a handshake failure")
			}
			e, ok := perr.As(err)
			if !ok || !errors.Is(err, perr.TLSHandshakeFailure) || e.Source != perr.Upstream || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want TLSHandshakeFailure from upstream with %q", err, tt.wantErr)
			}
		})
	}
}

func TestTLSHandshakeTimeout(t *testing.T) {
	// A server that accepts and never answers the ClientHello.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	c := New(Options{})
	defer c.Close()
	peer, _ := upstream.NewPeer(ln.Addr().String(), true, "origin.test")
	peer.Options.ConnectTimeout = 50 * time.Millisecond
	if _, err := c.Dial(context.Background(), peer); !errors.Is(err, perr.TLSHandshakeTimedout) {
		t.Errorf("err = %v, want TLSHandshakeTimedout", err)
	}
}

func BenchmarkTLSConfigLookup(b *testing.B) {
	c := New(Options{})
	peer, _ := upstream.NewPeer("127.0.0.1:443", true, "origin.test")
	b.ReportAllocs()
	for b.Loop() {
		c.tlsConfig(peer, true)
	}
}
