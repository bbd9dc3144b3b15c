package tlse2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pingora-go/pingora/internal/testbin"
	"github.com/pingora-go/pingora/internal/testpki"
)

func TestTerminateTLS(t *testing.T) {
	pk := newPKI(t)
	_, aCert, aKey := pk.issue(t, "a", testpki.LeafOptions{Names: []string{"a.test"}})
	_, bCert, bKey := pk.issue(t, "b", testpki.LeafOptions{Names: []string{"b.test", "*.b.test"}})
	origin := startOrigin(t)
	addr := testbin.FreeAddr(t)
	startPingora(t, addr, "--listen", addr, "--upstream", origin,
		"--tls-cert", aCert, "--tls-key", aKey, "--tls-cert", bCert, "--tls-key", bKey)
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	tests := []struct {
		name    string
		host    string
		args    []string
		ok      bool
		version string // the HTTP version curl must end up with (default 2: curl offers h2 first)
	}{
		{name: "first certificate by SNI", host: "a.test", ok: true},
		{name: "second certificate by SNI", host: "b.test", ok: true},
		{name: "second certificate by wildcard", host: "www.b.test", ok: true},
		{name: "unknown name gets the first certificate, which does not verify", host: "c.test"},
		{name: "h2 chosen by ALPN when offered", host: "a.test", args: []string{"--http2"}, ok: true},
		{name: "HTTP/1.1 when only it is offered", host: "a.test", args: []string{"--http1.1"}, ok: true, version: "1.1"},
		{name: "TLS 1.2", host: "a.test", args: []string{"--tls-max", "1.2"}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--cacert", pk.caFile, "--resolve", tt.host + ":" + port + ":127.0.0.1"}, tt.args...)
			r := curl(t, "https://"+tt.host+":"+port+"/", args...)
			if !tt.ok {
				if r.err == nil {
					t.Fatalf("curl succeeded with %s %q", r.status, r.body)
				}
				return
			}
			want := tt.version
			if want == "" {
				want = "2"
			}
			if r.err != nil || r.status != "200" || r.body != "origin" || r.httpVersion != want {
				t.Errorf("got %s HTTP/%s %q (%v), want 200 HTTP/%s origin", r.status, r.httpVersion, r.body, r.err, want)
			}
		})
	}

	// The version and cipher policy, with Go's client: curl's OpenSSL refuses TLS 1.1 by
	// itself, so it cannot show that the server does.
	policy := []struct {
		name     string
		min, max uint16
		suites   []uint16
		version  uint16 // negotiated on success
		wantErr  string // part of the handshake error; "" for success
	}{
		{name: "TLS 1.3", version: tls.VersionTLS13},
		{name: "TLS 1.2 with AES-GCM", max: tls.VersionTLS12, suites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384},
			version: tls.VersionTLS12},
		{name: "TLS 1.2 with CBC only is refused", max: tls.VersionTLS12,
			suites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}, wantErr: "handshake failure"},
		{name: "TLS 1.1 is refused", min: tls.VersionTLS10, max: tls.VersionTLS11, wantErr: "protocol version not supported"},
	}
	for _, tt := range policy {
		t.Run(tt.name, func(t *testing.T) {
			d := tls.Dialer{Config: &tls.Config{ServerName: "a.test", RootCAs: pk.ca.Pool(),
				MinVersion: tt.min, MaxVersion: tt.max, CipherSuites: tt.suites}}
			ctx, cancel := context.WithTimeout(context.Background(), waitBound)
			defer cancel()
			c, err := d.DialContext(ctx, "tcp", addr)
			if err == nil {
				defer c.Close()
			}
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
			case err != nil:
				t.Errorf("handshake failed: %v", err)
			default:
				if v := c.(*tls.Conn).ConnectionState().Version; v != tt.version {
					t.Errorf("negotiated %s, want %s", tls.VersionName(v), tls.VersionName(tt.version))
				}
			}
		})
	}
}

func TestMutualTLS(t *testing.T) {
	pk := newPKI(t)
	_, cert, key := pk.issue(t, "server", testpki.LeafOptions{Names: []string{"localhost"}})
	_, clientCert, clientKey := pk.issue(t, "client", testpki.LeafOptions{Names: []string{"client"}, Client: true})
	other := newPKI(t)
	_, otherCert, otherKey := other.issue(t, "other", testpki.LeafOptions{Names: []string{"client"}, Client: true})
	origin := startOrigin(t)
	addr := testbin.FreeAddr(t)
	p := startPingora(t, addr, "--listen", addr, "--upstream", origin,
		"--tls-cert", cert, "--tls-key", key, "--tls-client-ca", pk.caFile)
	url := "https://localhost:" + addr[strings.LastIndexByte(addr, ':')+1:] + "/"
	tests := []struct {
		name   string
		args   []string
		logged string // the reason in the proxy's "TLS handshake failed" line; "" for success
	}{
		{"client certificate of the CA", []string{"--cert", clientCert, "--key", clientKey}, ""},
		{"no client certificate", nil, "client didn't provide a certificate"},
		{"client certificate of another CA", []string{"--cert", otherCert, "--key", otherKey}, "certificate signed by unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := curl(t, url, append([]string{"--cacert", pk.caFile}, tt.args...)...)
			if tt.logged == "" {
				if r.err != nil || r.status != "200" || r.body != "origin" {
					t.Errorf("got %s %q (%v), want 200 origin", r.status, r.body, r.err)
				}
				return
			}
			// curl's own message varies with the moment it notices the server's alert.
			if r.err == nil {
				t.Fatalf("curl succeeded with %s %q", r.status, r.body)
			}
			p.WaitLogIn(t, "TLS handshake failed", tt.logged)
		})
	}
}

func TestUpstreamTLS(t *testing.T) {
	pk := newPKI(t)
	_, cert, key := pk.issue(t, "origin", testpki.LeafOptions{Names: []string{"origin.test"}})
	_, oldCert, oldKey := pk.issue(t, "expired", testpki.LeafOptions{Names: []string{"origin.test"},
		NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	good := startNginxTLS(t, cert, key)
	expired := startNginxTLS(t, oldCert, oldKey)
	tests := []struct {
		name     string
		upstream string
		sni      string
		status   string
		logged   []string // parts of the proxy's error log line
	}{
		{name: "verified", upstream: good, sni: "origin.test", status: "200"},
		{name: "wrong hostname", upstream: good, sni: "wrong.test", status: "502",
			logged: []string{"request failed", "InvalidCert", "not wrong.test"}},
		{name: "expired certificate", upstream: expired, sni: "origin.test", status: "502",
			logged: []string{"request failed", "InvalidCert", "expired"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := testbin.FreeAddr(t)
			p := startPingora(t, addr, "--listen", addr, "--upstream", tt.upstream,
				"--upstream-tls", "--upstream-sni", tt.sni, "--upstream-ca", pk.caFile)
			r := curl(t, "http://"+addr+"/")
			if r.err != nil || r.status != tt.status {
				t.Fatalf("got %s %q (%v), want %s", r.status, r.body, r.err, tt.status)
			}
			if tt.status == "200" && r.body != "nginx over TLS\n" {
				t.Errorf("body %q, want nginx's", r.body)
			}
			if tt.logged != nil {
				p.WaitLog(tt.logged...)
			}
		})
	}
}

// TestCertificateReloadUnderLoad replaces the certificate files while clients make full
// handshakes and requests, a bounded number of them; none may fail, and the new certificate
// is served afterwards, first through the file watch and then through SIGHUP.
func TestCertificateReloadUnderLoad(t *testing.T) {
	pk := newPKI(t)
	first, cert, key := pk.issue(t, "server", testpki.LeafOptions{Names: []string{"localhost"}})
	origin := startOrigin(t)
	addr := testbin.FreeAddr(t)
	p := startPingora(t, addr, "--listen", addr, "--upstream", origin, "--tls-cert", cert, "--tls-key", key)
	url := "https://localhost:" + addr[strings.LastIndexByte(addr, ':')+1:] + "/"

	var served sync.Map // serial number -> true, for every certificate seen by a client
	var requests, failures atomic.Int64
	var firstErr atomic.Value
	roots := pk.ca.Pool()
	ctx, stop := context.WithTimeout(context.Background(), waitBound)
	defer stop()
	const clients, maxRequests = 4, 20000
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && requests.Add(1) <= maxRequests {
				serial, err := fetch(url, roots)
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				served.Store(serial, true)
			}
		}()
	}
	seen := func(l *testpki.Leaf) bool {
		_, ok := served.Load(l.Cert.SerialNumber.String())
		return ok
	}
	waitSeen := func(l *testpki.Leaf) {
		t.Helper()
		for !seen(l) {
			if ctx.Err() != nil || requests.Load() > maxRequests {
				t.Fatalf("certificate %v never served", l.Cert.SerialNumber)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitSeen(first)

	// The watch: the certificate is replaced first, then its key, as a deployment tool might.
	second, err := pk.ca.Issue(testpki.LeafOptions{Names: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := testpki.WriteAtomic(cert, second.CertPEM); err != nil {
		t.Fatal(err)
	}
	// A poll sees the mismatched pair and keeps the old one (the clients see no failure).
	p.WaitLog("TLS certificate reload failed")
	if err := testpki.WriteAtomic(key, second.KeyPEM); err != nil {
		t.Fatal(err)
	}
	waitSeen(second)

	// SIGHUP reloads at once.
	third, err := pk.ca.Issue(testpki.LeafOptions{Names: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := third.WriteFiles(pk.dir, "server"); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGHUP)
	waitSeen(third)
	p.WaitLog("SIGHUP: reloaded")
	stop()
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Errorf("%d of %d requests failed during the reloads; first: %v", n, requests.Load(), firstErr.Load())
	}
	// Once the reloads are done, a new connection gets the last certificate and no other.
	if serial, err := fetch(url, roots); err != nil || serial != third.Cert.SerialNumber.String() {
		t.Errorf("after the reloads: serial %s (%v), want %v", serial, err, third.Cert.SerialNumber)
	}
	t.Logf("%d requests, each a full TLS handshake", min(requests.Load(), maxRequests))
}

// fetch makes one request on a new connection with a full handshake and returns the serial
// number of the certificate served.
func fetch(url string, roots *x509.CertPool) (string, error) {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, SessionTicketsDisabled: true},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 || string(body) != "origin" {
		return "", fmt.Errorf("got %d %q", resp.StatusCode, body)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber.String(), nil
}
