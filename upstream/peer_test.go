package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/netip"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestNewPeer(t *testing.T) {
	tests := []struct {
		in       string
		wantAddr string // empty: want an error
		wantIP   bool
	}{
		{"10.0.0.1:80", "10.0.0.1:80", true},
		{"10.0.0.1:0080", "10.0.0.1:80", true},
		{"[::1]:443", "[::1]:443", true},
		{"[0:0::1]:443", "[::1]:443", true},
		{"[fe80::1%eth0]:8080", "[fe80::1%eth0]:8080", true},
		{"[::ffff:10.0.0.1]:80", "[::ffff:10.0.0.1]:80", true},
		{"Example.COM:443", "example.com:443", false},
		{"example.com.:443", "example.com.:443", false},
		{"_srv.my-host1:1", "_srv.my-host1:1", false},
		{"localhost:65535", "localhost:65535", false},
		{"10.0.0.1", "", false},
		{"10.0.0.1:", "", false},
		{"10.0.0.1:0", "", false},
		{"10.0.0.1:65536", "", false},
		{"10.0.0.1:+80", "", false},
		{"10.0.0.1:http", "", false},
		{":80", "", false},
		{"::1:80", "", false},
		{"exa mple.com:80", "", false},
		{"a..b:80", "", false},
		{".a:80", "", false},
		{"h\u00e9.example:80", "", false},
		{"[example.com]:80", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := NewPeer(tt.in, true, "sni")
			if tt.wantAddr == "" {
				if err == nil {
					t.Fatalf("NewPeer = %v, want an error", p)
				}
				if !errors.Is(err, ErrInvalidAddress) {
					t.Fatalf("error %v is not ErrInvalidAddress", err)
				}
				var ae *AddrError
				if !errors.As(err, &ae) || ae.Addr != tt.in {
					t.Fatalf("error %v is not an *AddrError for %q", err, tt.in)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewPeer: %v", err)
			}
			if p.Addr != tt.wantAddr || p.Network != NetworkTCP || !p.TLS || p.SNI != "sni" {
				t.Fatalf("NewPeer = %+v, want Addr %q", p, tt.wantAddr)
			}
			ap, ok := p.AddrPort()
			if ok != tt.wantIP {
				t.Fatalf("AddrPort ok = %v, want %v", ok, tt.wantIP)
			}
			if ok && ap.String() != tt.wantAddr {
				t.Fatalf("AddrPort = %v, want %s", ap, tt.wantAddr)
			}
		})
	}
}

func TestNewUnixPeer(t *testing.T) {
	p, err := NewUnixPeer("/run/app.sock", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Network != NetworkUnix || p.Addr != "/run/app.sock" {
		t.Fatalf("NewUnixPeer = %+v", p)
	}
	if _, ok := p.AddrPort(); ok {
		t.Fatal("AddrPort ok for a Unix peer")
	}
	for _, bad := range []string{"", "/run/a\x00b"} {
		if _, err := NewUnixPeer(bad, false, ""); !errors.Is(err, ErrInvalidAddress) {
			t.Errorf("NewUnixPeer(%q) error = %v, want ErrInvalidAddress", bad, err)
		}
	}
}

func basePeer(t testing.TB) *Peer {
	t.Helper()
	p, err := NewPeer("192.0.2.1:443", true, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	p.Proxy = &Proxy{NextHop: "/run/proxy.sock", Host: "example.com", Port: 443,
		Headers: []ProxyHeader{{"X-A", "b"}}}
	p.Options.ClientCert = &tls.Certificate{Certificate: [][]byte{[]byte("leaf"), []byte("intermediate")}}
	return p
}

func TestReuseHash(t *testing.T) {
	caA, caB := x509.NewCertPool(), x509.NewCertPool()
	tests := []struct {
		name    string
		mutate  func(*Peer)
		changes bool
	}{
		{"network", func(p *Peer) { p.Network = NetworkUnix }, true},
		{"address", func(p *Peer) { p.Addr = "192.0.2.2:443" }, true},
		{"port", func(p *Peer) { p.Addr = "192.0.2.1:444" }, true},
		{"tls", func(p *Peer) { p.TLS = false }, true},
		{"sni", func(p *Peer) { p.SNI = "example.org" }, true},
		{"group key", func(p *Peer) { p.GroupKey = 1 }, true},
		{"no proxy", func(p *Peer) { p.Proxy = nil }, true},
		{"proxy next hop", func(p *Peer) { p.Proxy.NextHop = "/run/other.sock" }, true},
		{"proxy host", func(p *Peer) { p.Proxy.Host = "example.org" }, true},
		{"proxy port", func(p *Peer) { p.Proxy.Port = 8443 }, true},
		{"proxy header value", func(p *Peer) { p.Proxy.Headers[0].Value = "c" }, true},
		{"proxy header split", func(p *Peer) { p.Proxy.Headers[0] = ProxyHeader{"X-Ab", ""} }, true},
		{"proxy header added", func(p *Peer) { p.Proxy.Headers = append(p.Proxy.Headers, ProxyHeader{"X-C", "d"}) }, true},
		{"no client cert", func(p *Peer) { p.Options.ClientCert = nil }, true},
		{"client cert leaf", func(p *Peer) { p.Options.ClientCert.Certificate[0] = []byte("other") }, true},
		{"empty client cert", func(p *Peer) { p.Options.ClientCert.Certificate = nil }, true},
		{"skip verify cert", func(p *Peer) { p.Options.SkipVerifyCert = true }, true},
		{"skip verify hostname", func(p *Peer) { p.Options.SkipVerifyHostname = true }, true},
		{"alternative cn", func(p *Peer) { p.Options.AlternativeCN = "alt.example.com" }, true},
		{"alpn h2", func(p *Peer) { p.Options.ALPN = H2 }, true},
		{"alpn h2h1", func(p *Peer) { p.Options.ALPN = H2H1 }, true},
		{"max h2 streams", func(p *Peer) { p.Options.MaxH2Streams = 7 }, true},
		{"ca", func(p *Peer) { p.Options.CA = caA }, true},
		{"curves", func(p *Peer) { p.Options.Curves = []tls.CurveID{tls.X25519} }, true},

		{"nothing", func(*Peer) {}, false},
		{"same leaf, other intermediate", func(p *Peer) { p.Options.ClientCert.Certificate[1] = []byte("x") }, false},
		{"max h2 streams default", func(p *Peer) { p.Options.MaxH2Streams = DefaultMaxH2Streams }, false},
		{"connect timeout", func(p *Peer) { p.Options.ConnectTimeout = time.Second }, false},
		{"total connect timeout", func(p *Peer) { p.Options.TotalConnectTimeout = time.Second }, false},
		{"read timeout", func(p *Peer) { p.Options.ReadTimeout = time.Second }, false},
		{"write timeout", func(p *Peer) { p.Options.WriteTimeout = time.Second }, false},
		{"idle timeout", func(p *Peer) { p.Options.IdleTimeout = DoNotReuse }, false},
		{"bind to", func(p *Peer) { p.Options.BindTo = &BindTo{Addr: netip.MustParseAddr("192.0.2.9")} }, false},
		{"keepalive", func(p *Peer) { p.Options.TCPKeepalive = &TCPKeepalive{Idle: time.Second} }, false},
		{"recv buf", func(p *Peer) { p.Options.TCPRecvBuf = 1 << 20 }, false},
		{"dscp", func(p *Peer) { p.Options.DSCP = 46 }, false},
		{"fast open", func(p *Peer) { p.Options.TCPFastOpen = true }, false},
		{"h2 windows", func(p *Peer) { p.Options.H2StreamWindowSize, p.Options.H2ConnWindowSize = 1, 1 }, false},
		{"h2 ping", func(p *Peer) { p.Options.H2PingInterval = time.Second }, false},
		{"invalid content length", func(p *Peer) { p.Options.AllowH1ResponseInvalidContentLength = true }, false},
	}
	// The table runs on a peer with a CONNECT proxy and a client certificate, and on a plain
	// one, which ReuseHash hashes its short way; the mutations of the proxy and the
	// certificate apply to the first only.
	plainPeer := func(t testing.TB) *Peer {
		p := basePeer(t)
		p.Proxy, p.Options.ClientCert = nil, nil
		return p
	}
	for _, b := range []struct {
		name string
		peer func(testing.TB) *Peer
	}{{"full", basePeer}, {"plain", plainPeer}} {
		t.Run(b.name, func(t *testing.T) {
			base := b.peer(t).ReuseHash()
			if again := b.peer(t).ReuseHash(); again != base {
				t.Fatalf("equal peers hash to %x and %x", base, again)
			}
			for _, tt := range tests {
				if b.name == "plain" && (strings.Contains(tt.name, "proxy") || strings.Contains(tt.name, "cert") ||
					strings.Contains(tt.name, "leaf")) {
					continue
				}
				t.Run(tt.name, func(t *testing.T) {
					p := b.peer(t)
					tt.mutate(p)
					if got := p.ReuseHash(); (got != base) != tt.changes {
						t.Fatalf("hash changed = %v, want %v", got != base, tt.changes)
					}
				})
			}
			t.Run("distinct ca pools", func(t *testing.T) {
				p, q := b.peer(t), b.peer(t)
				p.Options.CA, q.Options.CA = caA, caB
				if p.ReuseHash() == q.ReuseHash() {
					t.Fatal("two CA pools hash alike")
				}
				q.Options.CA = caA
				if p.ReuseHash() != q.ReuseHash() {
					t.Fatal("the same CA pool hashes differently")
				}
			})
		})
	}
}

func TestCAForgotten(t *testing.T) {
	caID(x509.NewCertPool())
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		caIDs.mu.Lock()
		n := len(caIDs.ids)
		caIDs.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d CA pools still numbered after they were collected", n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestALPN(t *testing.T) {
	tests := []struct {
		max, min       uint8
		want           ALPN
		wantMax, wantM uint8
		protos         []string
		str            string
	}{
		{1, 1, H1, 1, 1, []string{"http/1.1"}, "h1"},
		{2, 2, H2, 2, 2, []string{"h2"}, "h2"},
		{2, 1, H2H1, 2, 1, []string{"h2", "http/1.1"}, "h2h1"},
		{1, 2, H1, 1, 1, []string{"http/1.1"}, "h1"},
		{0, 0, H2H1, 2, 1, []string{"h2", "http/1.1"}, "h2h1"},
	}
	for _, tt := range tests {
		a := NewALPN(tt.max, tt.min)
		if a != tt.want || a.MaxHTTPVersion() != tt.wantMax || a.MinHTTPVersion() != tt.wantM ||
			!reflect.DeepEqual(a.NextProtos(), tt.protos) || a.String() != tt.str {
			t.Errorf("NewALPN(%d, %d) = %v (max %d, min %d, %v), want %v (max %d, min %d, %v)",
				tt.max, tt.min, a, a.MaxHTTPVersion(), a.MinHTTPVersion(), a.NextProtos(),
				tt.want, tt.wantMax, tt.wantM, tt.protos)
		}
	}
	if var0 := (Options{}).ALPN; var0 != H1 {
		t.Errorf("zero ALPN = %v, want h1", var0)
	}
	if s := ALPN(9).String(); s != "ALPN(9)" {
		t.Errorf("String = %q", s)
	}
}

func TestPeerString(t *testing.T) {
	tcp, _ := NewPeer("10.0.0.1:443", true, "example.com")
	unix, _ := NewUnixPeer("/run/app.sock", false, "")
	grouped, _ := NewPeer("[::1]:80", false, "")
	grouped.GroupKey = 7
	grouped.Proxy = &Proxy{NextHop: "/run/p.sock", Host: "::1", Port: 80}
	tests := []struct {
		p    *Peer
		want string
	}{
		{tcp, "addr=10.0.0.1:443 tls=true sni=example.com"},
		{unix, "addr=unix:/run/app.sock tls=false sni="},
		{grouped, "addr=[::1]:80 tls=false sni= group=7 proxy=[::1]:80 via=/run/p.sock"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String = %q, want %q", got, tt.want)
		}
	}
}

func TestDefaultOptions(t *testing.T) {
	if got, want := (Options{}).WithDefaults(), DefaultOptions(); !reflect.DeepEqual(got, want) {
		t.Fatalf("zero Options with defaults = %+v, want %+v", got, want)
	}
	d := DefaultOptions()
	if d.SkipVerifyCert || d.SkipVerifyHostname || d.IdleTimeout != 0 || d.ALPN != H1 {
		t.Fatalf("DefaultOptions = %+v", d)
	}
	p, q := basePeer(t), basePeer(t)
	q.Options = DefaultOptions()
	q.Options.ClientCert = p.Options.ClientCert
	if p.ReuseHash() != q.ReuseHash() {
		t.Fatal("zero Options and DefaultOptions hash differently")
	}
	big := Options{H2StreamWindowSize: 1 << 31, H2ConnWindowSize: 5, MaxH2Streams: -3}.WithDefaults()
	if big.H2StreamWindowSize != MaxH2WindowSize || big.H2ConnWindowSize != 5 || big.MaxH2Streams != DefaultMaxH2Streams {
		t.Fatalf("WithDefaults = %+v", big)
	}
}

func TestKeepAliveConfig(t *testing.T) {
	k := &TCPKeepalive{Idle: time.Minute, Count: 3}
	got := k.KeepAliveConfig()
	if !got.Enable || got.Idle != time.Minute || got.Interval != -1 || got.Count != 3 {
		t.Fatalf("KeepAliveConfig = %+v", got)
	}
}

func FuzzNewPeer(f *testing.F) {
	for _, s := range []string{"10.0.0.1:80", "[::1]:443", "[fe80::1%eth0]:1", "example.com:8080", "a..b:1", ":0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		p, err := NewPeer(addr, false, "")
		if err != nil {
			return
		}
		// The stored address is canonical: parsing it again is the identity.
		q, err := NewPeer(p.Addr, false, "")
		if err != nil {
			t.Fatalf("NewPeer(%q) accepted, but its Addr %q is rejected: %v", addr, p.Addr, err)
		}
		if q.Addr != p.Addr || q.ReuseHash() != p.ReuseHash() {
			t.Fatalf("NewPeer(%q).Addr = %q, reparsed %q", addr, p.Addr, q.Addr)
		}
	})
}

func BenchmarkReuseHash(b *testing.B) {
	plain, _ := NewPeer("192.0.2.1:443", true, "example.com")
	full := basePeer(b)
	full.Options.CA = x509.NewCertPool()
	full.Options.ClientCert.Certificate[0] = make([]byte, 1200)
	for _, bb := range []struct {
		name string
		p    *Peer
	}{{"plain", plain}, {"mtls+ca+proxy", full}} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bb.p.ReuseHash()
			}
		})
	}
}
