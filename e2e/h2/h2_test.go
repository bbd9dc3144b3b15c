// Package h2e2e tests protocols/h2, and the proxy's HTTP/2 listeners in front of HTTP/1.1
// and HTTP/2 upstreams, against real HTTP/2 clients in other processes: curl with prior
// knowledge and over TLS, h2load for many concurrent streams, and the h2spec conformance suite
// over h2c and TLS. A tool that is not installed skips its test (fails it when CI is set).
// Every wait is bounded.
package h2e2e

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/internal/testbin"
	"github.com/pingora-go/pingora/internal/testpki"
	"github.com/pingora-go/pingora/protocols/h2"
)

// waitBound bounds every external command.
const waitBound = 2 * time.Minute

// answer is the handler of the test server: it reads the request body and answers 200 with a
// body that names the method, the path and how many body bytes came, and a trailer when the
// client asked for trailers.
func answer(s *h2.ServerStream) {
	var n int
	for {
		p, err := s.ReadBody()
		n += len(p)
		if err != nil {
			break
		}
	}
	resp := header.NewResponse(200)
	resp.Append("content-type", "text/plain")
	if err := s.WriteResponseHeader(resp); err != nil {
		return
	}
	s.WriteBody([]byte(string(s.Req.Method()) + " " + string(s.Req.Path()) + " " + strconv.Itoa(n) + "\n"))
	var tr header.Fields
	if s.Req.HasToken("te", "trailers") {
		tr.Append("x-done", "yes")
	}
	s.FinishResponse(&tr)
}

// server serves answer on a loopback port, over TLS with ALPN h2 when tlsConf is not nil,
// and returns the port.
func server(t *testing.T, tlsConf *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if tlsConf != nil {
				c = tls.Server(c, tlsConf)
			}
			sc := h2.NewServerConn(c, nil)
			go sc.Serve(answer)
			go func() {
				select {
				case <-ctx.Done():
					sc.Close()
				case <-sc.Done():
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		cancel()
		<-done
	})
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// pki writes a CA and a server certificate for localhost into a temporary directory and
// returns the server's TLS configuration and the CA file.
func pki(t *testing.T) (*tls.Config, string) {
	t.Helper()
	ca, err := testpki.NewCA("h2 e2e CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(testpki.LeafOptions{Names: []string{"localhost", "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := leaf.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}, caFile
}

// tool returns the path of an installed command (testbin.Tool).
func tool(t *testing.T, name string) string { return testbin.Tool(t, name) }

// run runs a command within waitBound and returns its combined output.
func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

func TestCurl(t *testing.T) {
	curl := tool(t, "curl")
	tlsConf, caFile := pki(t)
	h2c := server(t, nil)
	secure := server(t, tlsConf)
	cases := []curlCase{
		{"h2c get", []string{"--http2-prior-knowledge", "http://127.0.0.1:" + h2c + "/a?b"},
			[]string{"HTTP/2 200", "GET /a 0"}},
		{"h2c post", []string{"--http2-prior-knowledge", "--data-binary", "hello", "http://127.0.0.1:" + h2c + "/up"},
			[]string{"HTTP/2 200", "POST /up 5"}},
		{"tls alpn", []string{"--http2", "--cacert", caFile, "https://localhost:" + secure + "/tls"},
			[]string{"HTTP/2 200", "GET /tls 0"}},
		{"head", []string{"--http2-prior-knowledge", "-I", "http://127.0.0.1:" + h2c + "/h"},
			[]string{"HTTP/2 200", "content-type: text/plain"}},
	}
	runCurl(t, curl, cases)
}

func TestH2load(t *testing.T) {
	h2load := tool(t, "h2load")
	port := server(t, nil)
	out, err := run(t, h2load, "-n", "4000", "-c", "4", "-m", "32", "http://127.0.0.1:"+port+"/load")
	if err != nil {
		t.Fatalf("h2load: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored`).FindStringSubmatch(out)
	if m == nil || m[3] != "4000" || m[4] != "0" || m[5] != "0" {
		t.Fatalf("h2load did not succeed on every request:\n%s", out)
	}
	t.Log(strings.TrimSpace(regexp.MustCompile(`finished in .*`).FindString(out)))
}

func TestH2spec(t *testing.T) {
	h2spec := tool(t, "h2spec")
	tlsConf, _ := pki(t)
	cases := []struct {
		name string
		port string
		args []string
	}{
		{"h2c", server(t, nil), nil},
		{"tls", server(t, tlsConf), []string{"-t", "-k"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-h", "127.0.0.1", "-p", tc.port, "-o", "5"}, tc.args...)
			out, err := run(t, h2spec, args...)
			summary := regexp.MustCompile(`(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed`).FindStringSubmatch(out)
			if err != nil || summary == nil || summary[4] != "0" {
				t.Fatalf("h2spec: %v\n%s", err, out)
			}
			t.Log(summary[0])
		})
	}
}

// curlCase is a run of curl and the strings its output must hold.
type curlCase struct {
	name string
	args []string // after -sS -i --max-time 30
	want []string
}

// runCurl runs each case as a subtest.
func runCurl(t *testing.T, curl string, cases []curlCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-sS", "-i", "--max-time", "30"}, tc.args...)
			out, err := run(t, curl, args...)
			if err != nil {
				t.Fatalf("curl: %v\n%s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Fatalf("curl output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
