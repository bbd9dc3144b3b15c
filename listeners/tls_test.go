package listeners

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pingora-go/pingora/internal/testpki"
)

// tlsFixture is a CA with certificates on disk and a TLS server on loopback using settings.
type tlsFixture struct {
	ca       *testpki.CA
	dir      string
	addr     string
	settings *TLSSettings
}

// issue writes a certificate for names into the fixture's directory as name.crt/.key.
func (f *tlsFixture) issue(t testing.TB, file string, names ...string) CertFiles {
	t.Helper()
	l, err := f.ca.Issue(testpki.LeafOptions{Names: names})
	if err != nil {
		t.Fatal(err)
	}
	c, k, err := l.WriteFiles(f.dir, file)
	if err != nil {
		t.Fatal(err)
	}
	return CertFiles{CertFile: c, KeyFile: k}
}

func newFixture(t testing.TB) *tlsFixture {
	t.Helper()
	ca, err := testpki.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	return &tlsFixture{ca: ca, dir: t.TempDir()}
}

// serve starts a server that answers each handshake with the negotiated protocol and closes.
func (f *tlsFixture) serve(t testing.TB, o TLSOptions) {
	t.Helper()
	s, err := NewTLS(o)
	if err != nil {
		t.Fatal(err)
	}
	f.settings = s
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
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
				tc, err := s.ServerHandshake(context.Background(), c)
				if err != nil {
					return
				}
				io.WriteString(tc, "proto="+tc.ConnectionState().NegotiatedProtocol)
				tc.Close()
			}()
		}
	}()
}

// dial handshakes with the fixture's server and reads its answer.
func (f *tlsFixture) dial(cfg *tls.Config) (tls.ConnectionState, string, error) {
	if cfg.RootCAs == nil {
		cfg.RootCAs = f.ca.Pool()
	}
	c, err := tls.Dial("tcp", f.addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, "", err
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	return c.ConnectionState(), string(b), err
}

func TestTLSSNISelection(t *testing.T) {
	f := newFixture(t)
	a := f.issue(t, "a", "a.example.com")
	b := f.issue(t, "b", "b.example.com", "*.b.example.com")
	f.serve(t, TLSOptions{Certs: []CertFiles{a, b}})
	tests := []struct {
		sni, want string
	}{
		{"a.example.com", "a.example.com"},
		{"b.example.com", "b.example.com"},
		{"x.b.example.com", "b.example.com"},
		{"X.B.Example.COM", "b.example.com"},
		{"y.x.b.example.com", "a.example.com"}, // a wildcard covers one label only
		{"unknown.example.org", "a.example.com"},
		{"", "a.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.sni, func(t *testing.T) {
			cs, _, err := f.dial(&tls.Config{ServerName: tt.sni, InsecureSkipVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := cs.PeerCertificates[0].Subject.CommonName; got != tt.want {
				t.Errorf("SNI %q got certificate %q, want %q", tt.sni, got, tt.want)
			}
		})
	}
}

func TestTLSGetCertificateCallback(t *testing.T) {
	f := newFixture(t)
	def := f.issue(t, "def", "default.example.com")
	dyn, err := f.ca.Issue(testpki.LeafOptions{Names: []string{"dynamic.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	dc, err := dyn.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	f.serve(t, TLSOptions{Certs: []CertFiles{def}, GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		switch h.ServerName {
		case "dynamic.example.com":
			return &dc, nil
		case "refused.example.com":
			return nil, errors.New("refused")
		}
		return nil, nil
	}})
	tests := []struct {
		sni, want string
		fail      bool
	}{
		{sni: "dynamic.example.com", want: "dynamic.example.com"},
		{sni: "default.example.com", want: "default.example.com"},
		{sni: "refused.example.com", fail: true},
	}
	for _, tt := range tests {
		t.Run(tt.sni, func(t *testing.T) {
			cs, _, err := f.dial(&tls.Config{ServerName: tt.sni})
			if tt.fail {
				if err == nil {
					t.Fatal("handshake succeeded, want failure")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cs.PeerCertificates[0].Subject.CommonName; got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTLSALPN(t *testing.T) {
	tests := []struct {
		name   string
		h2     bool
		client []string
		want   string
		fail   bool
	}{
		{name: "h1 server, h2 client", client: []string{"h2", "http/1.1"}, want: "http/1.1"},
		{name: "h1 server, no ALPN", client: nil, want: ""},
		{name: "h1 server, h2-only client", client: []string{"h2"}, fail: true},
		{name: "h2 server, h2 client", h2: true, client: []string{"h2", "http/1.1"}, want: "h2"},
		{name: "h2 server, h1 client", h2: true, client: []string{"http/1.1"}, want: "http/1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			o := TLSOptions{Certs: []CertFiles{f.issue(t, "s", "localhost")}}
			if tt.h2 {
				o.EnableH2()
			}
			f.serve(t, o)
			_, body, err := f.dial(&tls.Config{ServerName: "localhost", NextProtos: tt.client})
			if tt.fail {
				if err == nil {
					t.Fatalf("handshake succeeded (%s), want no_application_protocol", body)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if body != "proto="+tt.want {
				t.Errorf("got %q, want proto=%s", body, tt.want)
			}
		})
	}
}

func TestTLSClientAuth(t *testing.T) {
	f := newFixture(t)
	server := f.issue(t, "s", "localhost")
	caFile := filepath.Join(f.dir, "clients.pem")
	clientCA := mustCA(t, "client CA")
	if err := os.WriteFile(caFile, clientCA.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	f.serve(t, TLSOptions{Certs: []CertFiles{server}, ClientCAFile: caFile})
	good := mustClientLeaf(t, clientCA)
	wrong := mustClientLeaf(t, f.ca)
	// With TLS 1.3 the client learns of a rejected certificate on its first read.
	f.checkClientAuth(t, []clientAuthCase{
		{"trusted client certificate", good, ""},
		{"no client certificate", nil, "certificate required"},
		{"client certificate of another CA", wrong, "unknown certificate authority"},
	})
}

// TestTLSOptionalClientAuth asks for client certificates without requiring them: a client
// without one is served, a client with one the CA did not sign is refused.
func TestTLSOptionalClientAuth(t *testing.T) {
	f := newFixture(t)
	caFile := filepath.Join(f.dir, "clients.pem")
	if err := os.WriteFile(caFile, f.ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	f.serve(t, TLSOptions{Certs: []CertFiles{f.issue(t, "s", "localhost")}, ClientCAFile: caFile,
		ClientAuth: tls.VerifyClientCertIfGiven})
	f.checkClientAuth(t, []clientAuthCase{
		{"no client certificate", nil, ""},
		{"trusted client certificate", mustClientLeaf(t, f.ca), ""},
		{"client certificate of another CA", mustClientLeaf(t, mustCA(t, "another CA")), "unknown certificate authority"},
	})
}

// clientAuthCase is a client presenting cert (none when nil) and the error it must meet ("" for
// none).
type clientAuthCase struct {
	name    string
	cert    *testpki.Leaf
	wantErr string
}

// checkClientAuth connects to the fixture's server as each case says.
func (f *tlsFixture) checkClientAuth(t *testing.T, tests []clientAuthCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &tls.Config{ServerName: "localhost"}
			if tt.cert != nil {
				c, err := tt.cert.TLSCertificate()
				if err != nil {
					t.Fatal(err)
				}
				// Send it whatever CAs the server names (crypto/tls would otherwise send none).
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
			}
			_, _, err := f.dial(cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("err = %v, want success", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func mustClientLeaf(t testing.TB, ca *testpki.CA) *testpki.Leaf {
	t.Helper()
	l, err := ca.Issue(testpki.LeafOptions{Names: []string{"client"}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustCA(t testing.TB, name string) *testpki.CA {
	t.Helper()
	ca, err := testpki.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// TestTLSVersionsAndSuites checks the default policy: TLS 1.2 and 1.3 only, and in TLS 1.2
// only forward-secret AEAD suites.
func TestTLSVersionsAndSuites(t *testing.T) {
	f := newFixture(t)
	cf := f.issue(t, "s", "localhost")
	f.serve(t, TLSOptions{Certs: []CertFiles{cf}})
	only13 := &tlsFixture{ca: f.ca, dir: f.dir}
	only13.serve(t, TLSOptions{Certs: []CertFiles{cf}, MinVersion: tls.VersionTLS13})
	tests := []struct {
		name        string
		server      *tlsFixture
		min, max    uint16
		suites      []uint16
		wantVersion uint16
		wantSuite   uint16 // checked when not zero
		wantErr     string // part of the client's error; "" for success
	}{
		{name: "TLS 1.3 by default", server: f, wantVersion: tls.VersionTLS13},
		{name: "TLS 1.2 with AES-GCM", server: f, max: tls.VersionTLS12,
			suites:      []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
			wantVersion: tls.VersionTLS12, wantSuite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		{name: "TLS 1.2 with ChaCha20-Poly1305", server: f, max: tls.VersionTLS12,
			suites:      []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
			wantVersion: tls.VersionTLS12, wantSuite: tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
		{name: "TLS 1.2 with CBC only is refused", server: f, max: tls.VersionTLS12,
			suites:  []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA},
			wantErr: "handshake failure"},
		{name: "TLS 1.1 is refused", server: f, min: tls.VersionTLS10, max: tls.VersionTLS11,
			wantErr: "protocol version not supported"},
		{name: "TLS 1.0 is refused", server: f, min: tls.VersionTLS10, max: tls.VersionTLS10,
			wantErr: "protocol version not supported"},
		{name: "MinVersion 1.3 refuses TLS 1.2", server: only13, max: tls.VersionTLS12,
			wantErr: "protocol version not supported"},
		{name: "MinVersion 1.3 serves TLS 1.3", server: only13, wantVersion: tls.VersionTLS13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, _, err := tt.server.dial(&tls.Config{ServerName: "localhost", MinVersion: tt.min, MaxVersion: tt.max, CipherSuites: tt.suites})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cs.Version != tt.wantVersion || (tt.wantSuite != 0 && cs.CipherSuite != tt.wantSuite) {
				t.Errorf("negotiated %s %s, want %s", tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite), tls.VersionName(tt.wantVersion))
			}
		})
	}
}

func TestTLSOCSPStapling(t *testing.T) {
	f := newFixture(t)
	cf := f.issue(t, "s", "localhost")
	cf.OCSPFile = filepath.Join(f.dir, "s.ocsp")
	staple := []byte("DER OCSP response")
	if err := os.WriteFile(cf.OCSPFile, staple, 0o600); err != nil {
		t.Fatal(err)
	}
	f.serve(t, TLSOptions{Certs: []CertFiles{cf}})
	cs, _, err := f.dial(&tls.Config{ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cs.OCSPResponse, staple) {
		t.Errorf("stapled %q, want %q", cs.OCSPResponse, staple)
	}
	if err := os.WriteFile(cf.OCSPFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.settings.Reload(); err == nil {
		t.Error("Reload accepted an empty OCSP file")
	}
	if err := f.settings.Reload(); err == nil {
		t.Error("a second Reload of the same broken files reported no error")
	}
	if cs, _, err := f.dial(&tls.Config{ServerName: "localhost"}); err != nil || !bytes.Equal(cs.OCSPResponse, staple) {
		t.Errorf("after the failed reloads: stapled %q (%v), want the previous response", cs.OCSPResponse, err)
	}
}

func TestTLSTicketKeyRotation(t *testing.T) {
	f := newFixture(t)
	f.serve(t, TLSOptions{Certs: []CertFiles{f.issue(t, "s", "localhost")}})
	cache := tls.NewLRUClientSessionCache(8)
	resumed := func() bool {
		t.Helper()
		// The answer is read to the end, so the client has stored the server's ticket.
		cs, _, err := f.dial(&tls.Config{ServerName: "localhost", ClientSessionCache: cache})
		if err != nil {
			t.Fatal(err)
		}
		return cs.DidResume
	}
	tests := []struct {
		name      string
		rotations int
		want      bool
	}{
		{"first connection", 0, false},
		{"same key", 0, true},
		{"one rotation: the old key still decrypts", 1, true},
		{"a certificate reload keeps the keys", -1, true},
		{"the ticket of a key rotated out", TicketKeysKept, false},
	}
	for _, tt := range tests {
		for range tt.rotations {
			f.settings.RotateTicketKeys()
		}
		if tt.rotations < 0 {
			f.issue(t, "s", "localhost")
			if err := f.settings.Reload(); err != nil {
				t.Fatal(err)
			}
		}
		if got := resumed(); got != tt.want {
			t.Errorf("%s: resumed %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestTLSReloadKeepsServing(t *testing.T) {
	f := newFixture(t)
	cf := f.issue(t, "s", "localhost")
	f.serve(t, TLSOptions{Certs: []CertFiles{cf}, ReloadInterval: -1})
	first, _, err := f.dial(&tls.Config{ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}

	// Handshakes run while the files are replaced many times, the key sometimes out of step
	// with the certificate: none may fail.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, _, err := f.dial(&tls.Config{ServerName: "localhost"}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var last *x509.Certificate
	for i := range 20 {
		l, err := f.ca.Issue(testpki.LeafOptions{Names: []string{"localhost"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := testpki.WriteAtomic(cf.CertFile, l.CertPEM); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			// The certificate no longer matches the key: the reload fails, the old pair serves.
			if err := f.settings.Reload(); err == nil {
				t.Error("Reload accepted a certificate that does not match its key")
			}
		}
		if err := testpki.WriteAtomic(cf.KeyFile, l.KeyPEM); err != nil {
			t.Fatal(err)
		}
		if err := f.settings.Reload(); err != nil {
			t.Fatal(err)
		}
		last = l.Cert
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("handshake failed during reload: %v", err)
	}
	cs, _, err := f.dial(&tls.Config{ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if got := cs.PeerCertificates[0]; !got.Equal(last) || got.Equal(first.PeerCertificates[0]) {
		t.Errorf("serving serial %v after reload, want the last written %v", got.SerialNumber, last.SerialNumber)
	}
}

func TestTLSPollingReload(t *testing.T) {
	f := newFixture(t)
	cf := f.issue(t, "s", "localhost")
	f.serve(t, TLSOptions{Certs: []CertFiles{cf}})
	tests := []struct {
		name    string
		write   func()
		changed bool
	}{
		{"nothing written", func() {}, false},
		{"same contents rewritten", func() {
			b, _ := os.ReadFile(cf.CertFile)
			testpki.WriteAtomic(cf.CertFile, b)
		}, false},
		{"new certificate", func() { f.issue(t, "s", "localhost") }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.settings.cur.Load()
			tt.write()
			if _, err := f.settings.reload(false); err != nil {
				t.Fatal(err)
			}
			if changed := f.settings.cur.Load() != before; changed != tt.changed {
				t.Errorf("configuration swapped: %v, want %v", changed, tt.changed)
			}
		})
	}
}

// TestTLSWatch runs Watch with short periods: a certificate written to disk is served without
// a call to Reload, a broken pair is logged and skipped, and the ticket key changes.
func TestTLSWatch(t *testing.T) {
	f := newFixture(t)
	cf := f.issue(t, "s", "localhost")
	var logBuf syncBuffer
	f.serve(t, TLSOptions{Certs: []CertFiles{cf}, ReloadInterval: 5 * time.Millisecond,
		TicketKeyRotation: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.settings.Watch(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// waitFor polls cond, a state the watch reaches by itself, within a bound.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the watch did not %s within 10s; log:\n%s", what, logBuf.String())
			}
		}
	}
	served := func() *x509.Certificate {
		t.Helper()
		cs, _, err := f.dial(&tls.Config{ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		return cs.PeerCertificates[0]
	}

	next, err := f.ca.Issue(testpki.LeafOptions{Names: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	// The certificate alone first: the pair does not match, the old one keeps serving.
	if err := testpki.WriteAtomic(cf.CertFile, next.CertPEM); err != nil {
		t.Fatal(err)
	}
	waitFor("report the mismatched pair", func() bool {
		return strings.Contains(logBuf.String(), "TLS certificate reload failed")
	})
	if got := served(); got.Equal(next.Cert) {
		t.Fatal("serving a certificate whose key is not loaded")
	}
	if err := testpki.WriteAtomic(cf.KeyFile, next.KeyPEM); err != nil {
		t.Fatal(err)
	}
	waitFor("serve the new certificate", func() bool { return served().Equal(next.Cert) })
	if l := logBuf.String(); !strings.Contains(l, "TLS certificates reloaded") || strings.Count(l, "TLS certificate reload failed") != 1 {
		t.Errorf("want the broken pair reported once, then the reload:\n%s", l)
	}

	keyNow := func() [32]byte {
		f.settings.mu.Lock()
		defer f.settings.mu.Unlock()
		return f.settings.keys[0]
	}
	first := keyNow()
	waitFor("rotate the ticket key", func() bool { return keyNow() != first })
}

// syncBuffer is a bytes.Buffer safe for a logger writing while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestTLSReloadSameSizeAndTime replaces a file with contents of the same size and the same
// modification time, as two writes within one tick of the file system's clock leave it: the
// check must still see the change while the time is recent.
func TestTLSReloadSameSizeAndTime(t *testing.T) {
	f := newFixture(t)
	cf := f.issue(t, "s", "localhost")
	cf.OCSPFile = filepath.Join(f.dir, "s.ocsp")
	tick := time.Now().Truncate(time.Second)
	write := func(staple string) {
		t.Helper()
		if err := testpki.WriteAtomic(cf.OCSPFile, []byte(staple)); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(cf.OCSPFile, tick, tick); err != nil {
			t.Fatal(err)
		}
	}
	write("response A")
	f.serve(t, TLSOptions{Certs: []CertFiles{cf}, ReloadInterval: -1})
	write("response B")
	if changed, err := f.settings.reload(false); err != nil || !changed {
		t.Fatalf("reload: changed %v, %v; want a change", changed, err)
	}
	cs, _, err := f.dial(&tls.Config{ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(cs.OCSPResponse); got != "response B" {
		t.Errorf("stapled %q, want the new response", got)
	}
}

func TestNewTLSErrors(t *testing.T) {
	f := newFixture(t)
	good := f.issue(t, "s", "localhost")
	other := f.issue(t, "o", "localhost")
	tests := []struct {
		name string
		o    TLSOptions
	}{
		{"no certificate", TLSOptions{}},
		{"missing file", TLSOptions{Certs: []CertFiles{{CertFile: filepath.Join(f.dir, "none"), KeyFile: good.KeyFile}}}},
		{"key of another certificate", TLSOptions{Certs: []CertFiles{{CertFile: good.CertFile, KeyFile: other.KeyFile}}}},
		{"client CA file without certificates", TLSOptions{Certs: []CertFiles{good}, ClientCAFile: good.KeyFile}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewTLS(tt.o); err == nil {
				t.Error("NewTLS succeeded")
			}
		})
	}
}

func BenchmarkTLSGetCertificate(b *testing.B) {
	f := newFixture(b)
	s, err := NewTLS(TLSOptions{Certs: []CertFiles{f.issue(b, "a", "a.example.com"), f.issue(b, "b", "*.b.example.com")}})
	if err != nil {
		b.Fatal(err)
	}
	cfg := s.cur.Load()
	hello := &tls.ClientHelloInfo{ServerName: "x.b.example.com"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cfg.GetCertificate(hello); err != nil {
			b.Fatal(err)
		}
	}
}
