package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/pingora-go/pingora/internal/testbin"
	"github.com/pingora-go/pingora/internal/testpki"
	"github.com/pingora-go/pingora/internal/testserve"
)

// TestPoolHealthAndRetries: a backend that refuses connections is retried around at once,
// and taken out by the health check; round robin spreads over the rest by weight.
func TestPoolHealthAndRetries(t *testing.T) {
	a, b := startOrigin(t, "A"), startOrigin(t, "B")
	dead := testbin.FreeAddr(t)
	listen := testbin.FreeAddr(t)
	path := writeFile(t, t.TempDir(), expand(`
listeners: [{address: "{{LISTEN}}"}]
upstreams:
  checked:
    backends: ["{{A}}", {address: "{{B}}", weight: 3}, "{{DEAD}}"]
    health_check: {type: http, path: /health, interval: 100ms, timeout: 500ms}
  unchecked:
    backends: ["{{DEAD}}", "{{A}}"]
    connect_timeout: 1s
  noretry:
    backends: ["{{DEAD}}"]
    retries: 0
services:
  s:
    routes:
      - {match: {path_prefix: /checked}, upstream: checked}
      - {match: {path_prefix: /unchecked}, upstream: unchecked}
      - {match: {path_prefix: /noretry}, upstream: noretry}
`, map[string]string{"LISTEN": listen, "A": a.addr, "B": b.addr, "DEAD": dead}))
	serve(t, path)
	c := testserve.Client(t)
	counts := map[string]int{}
	for range 40 {
		resp, _ := testserve.Do(t, c, "GET", "http://"+listen+"/checked")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		counts[resp.Header.Get("X-Origin")]++
	}
	// The dead backend's turns fall through to the next backend in address order, so the
	// shares are not exactly 1:3.
	if counts["A"]+counts["B"] != 40 || counts["B"] <= counts["A"] || counts["A"] < 5 {
		t.Errorf("weighted round robin over the healthy backends: %v", counts)
	}
	if a.count("/health") == 0 {
		t.Error("no health check reached the backend")
	}
	for range 10 {
		if resp, _ := testserve.Do(t, c, "GET", "http://"+listen+"/unchecked"); resp.StatusCode != 200 {
			t.Fatalf("a connect failure was not retried on the other backend: %d", resp.StatusCode)
		}
	}
	if resp, _ := testserve.Do(t, c, "GET", "http://"+listen+"/noretry"); resp.StatusCode != 502 {
		t.Errorf("no backend to connect to: %d", resp.StatusCode)
	}
}

// TestPoolAlgorithms: consistent hashing keeps a key on one backend; least_inflight and the
// others answer.
func TestPoolAlgorithms(t *testing.T) {
	o := []*origin{startOrigin(t, "A"), startOrigin(t, "B"), startOrigin(t, "C")}
	listen := testbin.FreeAddr(t)
	vars := map[string]string{"LISTEN": listen, "A": o[0].addr, "B": o[1].addr, "C": o[2].addr}
	path := writeFile(t, t.TempDir(), expand(`
listeners: [{address: "{{LISTEN}}"}]
upstreams:
  byheader: {backends: ["{{A}}", "{{B}}", "{{C}}"], algorithm: consistent_hash, hash_key: "header:X-User"}
  bypath: {backends: ["{{A}}", "{{B}}", "{{C}}"], algorithm: maglev, hash_key: path}
  least: {backends: ["{{A}}", "{{B}}", "{{C}}"], algorithm: least_inflight}
  random: {backends: ["{{A}}", "{{B}}", "{{C}}"], algorithm: random}
  smooth: {backends: ["{{A}}", "{{B}}", "{{C}}"], algorithm: weighted_round_robin}
services:
  s:
    routes:
      - {match: {headers: [{name: X-Pool}]}, upstream: byheader}
      - {match: {path_prefix: /p/}, upstream: bypath}
      - {match: {path_prefix: /least}, upstream: least}
      - {match: {path_prefix: /random}, upstream: random}
      - {upstream: smooth}
`, vars))
	serve(t, path)
	c := testserve.Client(t)
	users := map[string]string{}
	for round := range 3 {
		for _, u := range []string{"ann", "bob", "cid", "dan", "eve", "fay"} {
			resp, _ := testserve.Do(t, c, "GET", "http://"+listen+"/", "X-Pool", "1", "X-User", u)
			got := resp.Header.Get("X-Origin")
			if round > 0 && users[u] != got {
				t.Errorf("user %s moved from %s to %s", u, users[u], got)
			}
			users[u] = got
		}
	}
	seen := map[string]bool{}
	for _, u := range users {
		seen[u] = true
	}
	if len(seen) < 2 {
		t.Errorf("six keys all on one backend: %v", users)
	}
	for _, p := range []string{"/p/one", "/p/two"} {
		first, _ := testserve.Do(t, c, "GET", "http://"+listen+p)
		again, _ := testserve.Do(t, c, "GET", "http://"+listen+p)
		if first.Header.Get("X-Origin") != again.Header.Get("X-Origin") {
			t.Errorf("path %s moved", p)
		}
	}
	for _, p := range []string{"/least", "/random", "/"} {
		spread := map[string]bool{}
		for range 30 {
			resp, _ := testserve.Do(t, c, "GET", "http://"+listen+p)
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %d", p, resp.StatusCode)
			}
			spread[resp.Header.Get("X-Origin")] = true
		}
		if len(spread) < 2 {
			t.Errorf("%s used only %v", p, spread)
		}
	}
}

// TestTLSAndHTTP2: a TLS listener with two certificates chosen by SNI and HTTP/2 by ALPN, in
// front of an HTTP/2 TLS upstream verified by SNI and CA, and an h2c listener.
func TestTLSAndHTTP2(t *testing.T) {
	dir := t.TempDir()
	ca, err := testpki.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, n := range []string{"a.example", "b.example", "origin.internal"} {
		leaf, err := ca.Issue(testpki.LeafOptions{Names: []string{n}})
		if err != nil {
			t.Fatal(err)
		}
		cf, kf, err := leaf.WriteFiles(dir, n)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, cf, kf)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	// The upstream: HTTP/2 over TLS only.
	ocert, err := tls.LoadX509KeyPair(files[4], files[5])
	if err != nil {
		t.Fatal(err)
	}
	oln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{ocert}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	osrv := &http.Server{ReadHeaderTimeout: bound, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("origin saw " + r.Proto))
	})}
	http2.ConfigureServer(osrv, nil)
	go osrv.Serve(oln)
	t.Cleanup(func() { osrv.Close() })

	tlsAddr, h2cAddr := testbin.FreeAddr(t), testbin.FreeAddr(t)
	path := writeFile(t, dir, expand(`
listeners:
  - address: "{{TLS}}"
    tls:
      certificates:
        - {cert: a.example.crt, key: a.example.key}
        - {cert: b.example.crt, key: b.example.key}
  - address: "{{H2C}}"
    h2c: true
upstreams:
  secure:
    backends: ["{{ORIGIN}}"]
    tls: {sni: origin.internal, ca_file: ca.pem}
    http2: true
  unverified:
    backends: ["{{ORIGIN}}"]
    tls: {sni: wrong.name, ca_file: ca.pem}
services:
  s:
    routes:
      - {match: {path: /bad}, upstream: unverified}
      - {upstream: secure}
`, map[string]string{"TLS": tlsAddr, "H2C": h2cAddr, "ORIGIN": oln.Addr().String()}))
	serve(t, path)

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.PEM)
	for _, name := range []string{"a.example", "b.example"} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: name}, ForceAttemptHTTP2: true}
		c := &http.Client{Transport: tr, Timeout: bound}
		resp, body := testserve.Do(t, c, "GET", "https://"+tlsAddr+"/")
		tr.CloseIdleConnections()
		if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" || body != "origin saw HTTP/2.0" {
			t.Errorf("%s: %d %s %q", name, resp.StatusCode, resp.Proto, body)
		}
		if got := resp.TLS.PeerCertificates[0].Subject.CommonName; got != name {
			t.Errorf("SNI %s got the certificate of %s", name, got)
		}
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "a.example"}}
	c := &http.Client{Transport: tr, Timeout: bound}
	if resp, _ := testserve.Do(t, c, "GET", "https://"+tlsAddr+"/bad"); resp.StatusCode != 502 {
		t.Errorf("an upstream certificate for another name was accepted: %d", resp.StatusCode)
	}
	tr.CloseIdleConnections()

	h2c := &http2.Transport{AllowHTTP: true, DialTLS: func(network, addr string, _ *tls.Config) (net.Conn, error) {
		return net.DialTimeout(network, addr, bound)
	}}
	defer h2c.CloseIdleConnections()
	resp, body := testserve.Do(t, &http.Client{Transport: h2c, Timeout: bound}, "GET", "http://"+h2cAddr+"/")
	if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" || !strings.HasPrefix(body, "origin saw") {
		t.Errorf("h2c: %d %s %q", resp.StatusCode, resp.Proto, body)
	}
}

// TestStartWaitsForHealth: backends found down by the first round of checks take no request.
func TestStartWaitsForHealth(t *testing.T) {
	a := startOrigin(t, "A")
	dead := testbin.FreeAddr(t)
	listen := testbin.FreeAddr(t)
	serve(t, writeFile(t, t.TempDir(), expand(`
listeners: [{address: "{{LISTEN}}"}]
upstreams:
  u: {backends: ["{{DEAD}}", "{{A}}"], health_check: {type: tcp, interval: 1h}, retries: 0}
services: {s: {routes: [{upstream: u}]}}
`, map[string]string{"LISTEN": listen, "A": a.addr, "DEAD": dead})))
	c := testserve.Client(t)
	start := time.Now()
	for range 6 {
		if resp, _ := testserve.Do(t, c, "GET", "http://"+listen+"/"); resp.StatusCode != 200 {
			t.Fatalf("a request went to the backend the first check found down: %d", resp.StatusCode)
		}
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("slow: %s", time.Since(start))
	}
}
