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
		{name: "TLS 1.1 is refused", host: "a.test", args: []string{"--tlsv1.1", "--tls-max", "1.1"}},
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
}

func TestMutualTLS(t *testing.T) {
	pk := newPKI(t)
	_, cert, key := pk.issue(t, "server", testpki.LeafOptions{Names: []string{"localhost"}})
	_, clientCert, clientKey := pk.issue(t, "client", testpki.LeafOptions{Names: []string{"client"}, Client: true})
	other := newPKI(t)
	_, otherCert, otherKey := other.issue(t, "other", testpki.LeafOptions{Names: []string{"client"}, Client: true})
	origin := startOrigin(t)
	addr := testbin.FreeAddr(t)
	startPingora(t, addr, "--listen", addr, "--upstream", origin,
		"--tls-cert", cert, "--tls-key", key, "--tls-client-ca", pk.caFile)
	url := "https://localhost:" + addr[strings.LastIndexByte(addr, ':')+1:] + "/"
	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{"client certificate of the CA", []string{"--cert", clientCert, "--key", clientKey}, true},
		{"no client certificate", nil, false},
		{"client certificate of another CA", []string{"--cert", otherCert, "--key", otherKey}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := curl(t, url, append([]string{"--cacert", pk.caFile}, tt.args...)...)
			if ok := r.err == nil && r.status == "200"; ok != tt.ok {
				t.Errorf("got %s %q (%v), want success %v", r.status, r.body, r.err, tt.ok)
			}
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
	time.Sleep(1500 * time.Millisecond) // a poll sees the mismatched pair and keeps the old one
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
