// Package proxyproto_test runs the pingora binary behind real PROXY protocol senders: HAProxy
// (send-proxy and send-proxy-v2, in TCP mode, so also in front of a TLS listener) and curl
// (--haproxy-protocol). Clients bind distinct loopback addresses (127.0.0.2...), so that the
// address the proxy reports can only have come from the header.
package proxyproto_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pingora-go/pingora/internal/testbin"
	"github.com/pingora-go/pingora/internal/testpki"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// startOrigin answers every request with the X-Client field the proxy set.
func startOrigin(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: testbin.Bound, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "client=%s", r.Header.Get("X-Client"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

const pingoraConf = `
listeners:
  - address: {{PLAIN}}
    proxy_protocol: true
  - address: {{TLS}}
    proxy_protocol: {from: [127.0.0.1/32], timeout: 2s}
    tls:
      certificates: [{cert: {{CERT}}, key: {{KEY}}}]
  - address: {{NOPP}}
upstreams:
  app:
    backends: [{{ORIGIN}}]
services:
  web:
    routes:
      - upstream: app
        request_headers:
          set: {X-Client: "$client_ip"}
`

const haproxyConf = `
global
  maxconn 100
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend v1
  bind {{V1}}
  default_backend v1
backend v1
  server gw {{PLAIN}} send-proxy
frontend v2
  bind {{V2}}
  default_backend v2
backend v2
  server gw {{PLAIN}} send-proxy-v2
frontend tls
  bind {{V2TLS}}
  default_backend tls
backend tls
  server gw {{TLS}} send-proxy-v2
`

func expand(s string, vars map[string]string) string {
	for k, v := range vars {
		s = strings.ReplaceAll(s, "{{"+k+"}}", v)
	}
	return s
}

func TestBehindPROXYSenders(t *testing.T) {
	haproxy := testbin.Tool(t, "haproxy")
	curl := testbin.Tool(t, "curl")
	dir := t.TempDir()
	ca, err := testpki.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(testpki.LeafOptions{Names: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := leaf.WriteFiles(dir, "server")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"PLAIN": testbin.FreeAddr(t), "TLS": testbin.FreeAddr(t), "NOPP": testbin.FreeAddr(t),
		"V1": testbin.FreeAddr(t), "V2": testbin.FreeAddr(t), "V2TLS": testbin.FreeAddr(t),
		"CERT": cert, "KEY": key, "ORIGIN": startOrigin(t),
	}
	conf := filepath.Join(dir, "pingora.yaml")
	if err := os.WriteFile(conf, []byte(expand(pingoraConf, vars)), 0o644); err != nil {
		t.Fatal(err)
	}
	gw := testbin.Start(t, testbin.Binary(t), "-c", conf)
	gw.WaitListening(vars["PLAIN"], vars["TLS"], vars["NOPP"])
	t.Cleanup(func() { gw.Stop(syscall.SIGTERM) })

	hcfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(hcfg, []byte(expand(haproxyConf, vars)), 0o644); err != nil {
		t.Fatal(err)
	}
	hp := exec.Command(haproxy, "-db", "-f", hcfg)
	if err := hp.Start(); err != nil {
		t.Fatal(err)
	}
	hpDone := make(chan struct{})
	go func() { hp.Wait(); close(hpDone) }()
	t.Cleanup(func() {
		hp.Process.Signal(syscall.SIGTERM)
		select {
		case <-hpDone:
		case <-time.After(testbin.Bound):
			hp.Process.Kill()
			<-hpDone
		}
	})
	for _, a := range []string{vars["V1"], vars["V2"], vars["V2TLS"]} {
		testbin.WaitListening(t, a)
	}

	get := func(args ...string) (string, error) {
		t.Helper()
		out, err := exec.Command(curl, append([]string{"-sS", "--max-time", "10"}, args...)...).CombinedOutput()
		return string(out), err
	}
	port := func(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"HAProxy send-proxy (v1)", []string{"--interface", "127.0.0.2", "http://" + vars["V1"] + "/"}, "client=127.0.0.2"},
		{"HAProxy send-proxy-v2", []string{"--interface", "127.0.0.3", "http://" + vars["V2"] + "/"}, "client=127.0.0.3"},
		{"HAProxy send-proxy-v2 before TLS", []string{"--interface", "127.0.0.4", "--cacert", caFile,
			"--resolve", "localhost:" + port(vars["V2TLS"]) + ":127.0.0.1", "https://localhost:" + port(vars["V2TLS"]) + "/"}, "client=127.0.0.4"},
		{"curl --haproxy-protocol", []string{"--interface", "127.0.0.5", "--haproxy-protocol", "http://" + vars["PLAIN"] + "/"}, "client=127.0.0.5"},
		{"listener without the protocol", []string{"--interface", "127.0.0.6", "http://" + vars["NOPP"] + "/"}, "client=127.0.0.6"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := get(tt.args...)
			if err != nil || out != tt.want {
				t.Fatalf("curl: %v: %q, want %q", err, out, tt.want)
			}
		})
	}

	t.Run("keep-alive past parking", func(t *testing.T) {
		// The connection idles longer than the proxy's ParkAfter (250 ms) between requests,
		// so it is parked on its descriptor and resumed: the header's address stays.
		c, err := net.Dial("tcp", vars["PLAIN"])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		fmt.Fprint(c, "PROXY TCP4 198.51.100.9 192.0.2.1 50000 80\r\n")
		for i := range 2 {
			if i == 1 {
				time.Sleep(600 * time.Millisecond)
			}
			fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(testbin.Bound))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != "client=198.51.100.9" {
				t.Fatalf("request %d: %q", i, body)
			}
		}
	})
	t.Run("no header is refused", func(t *testing.T) {
		if out, err := get("http://" + vars["PLAIN"] + "/"); err == nil {
			t.Fatalf("a request without a PROXY header was answered: %q", out)
		}
		gw.WaitLogIn(t, "PROXY protocol header refused", "does not start with a PROXY protocol header")
	})
	t.Run("sender outside from is refused", func(t *testing.T) {
		// The TLS listener takes headers from 127.0.0.1 (HAProxy) only.
		out, err := get("--interface", "127.0.0.7", "--haproxy-protocol", "--cacert", caFile,
			"--resolve", "localhost:"+port(vars["TLS"])+":127.0.0.1", "https://localhost:"+port(vars["TLS"])+"/")
		if err == nil {
			t.Fatalf("a sender outside from was answered: %q", out)
		}
		gw.WaitLogIn(t, "PROXY protocol header refused", "not allowed")
	})
}

// TestQuickModeFlag: the binary's --proxy-protocol flag; the access log names the client the
// header carries.
func TestQuickModeFlag(t *testing.T) {
	curl := testbin.Tool(t, "curl")
	listen := testbin.FreeAddr(t)
	p := testbin.Start(t, testbin.Binary(t), "--listen", listen, "--upstream", startOrigin(t), "--proxy-protocol", "--access-log", "-")
	p.WaitListening(listen)
	t.Cleanup(func() { p.Stop(syscall.SIGTERM) })
	out, err := exec.Command(curl, "-sS", "--max-time", "10", "--interface", "127.0.0.8", "--haproxy-protocol", "http://"+listen+"/q").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "client=") {
		t.Fatalf("curl: %v: %q", err, out)
	}
	p.WaitLog(`"client":"127.0.0.8`, `"path":"/q"`)
	if out, err := exec.Command(curl, "-sS", "--max-time", "10", "http://"+listen+"/").CombinedOutput(); err == nil {
		t.Fatalf("a request without a header was answered: %q", out)
	}
}
