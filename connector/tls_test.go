package connector

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

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
				tc := c.(*tls.Conn)
				tc.SetDeadline(time.Now().Add(10 * time.Second))
				if tc.Handshake() != nil {
					return
				}
				cs := tc.ConnectionState()
				client := "-"
				if len(cs.PeerCertificates) > 0 {
					client = cs.PeerCertificates[0].Subject.CommonName
				}
				tc.Write([]byte(cs.NegotiatedProtocol + " " + client + "\n"))
			}()
		}
	}()
	return &tlsOrigin{addr: ln.Addr().String(), ca: ca}
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
