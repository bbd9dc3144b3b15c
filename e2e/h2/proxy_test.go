package h2e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pingora-go/pingora/internal/testserve"
	"github.com/pingora-go/pingora/proxy"
	pserver "github.com/pingora-go/pingora/server"
	"github.com/pingora-go/pingora/upstream"
)

// origin is a net/http server behind the proxy that counts its connections.
type origin struct {
	addr  string
	conns atomic.Int64
}

// startOrigin serves originHandler on a loopback port, over HTTP/1.1 only, or over cleartext
// HTTP/2 with prior knowledge only when h2c is set.
func startOrigin(t *testing.T, h2c bool) *origin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &origin{addr: ln.Addr().String()}
	s := &http.Server{Handler: http.HandlerFunc(originHandler), ReadHeaderTimeout: waitBound,
		Protocols: new(http.Protocols),
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				o.conns.Add(1)
			}
		}}
	if h2c {
		s.Protocols.SetUnencryptedHTTP2(true)
	} else {
		s.Protocols.SetHTTP1(true)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(ln)
	}()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	return o
}

// originHandler reads the request body and answers 200 with a body naming the protocol the
// proxy used, the method, the path and the number of body bytes, like answer; for the path
// /trailer it adds a trailer (chunked over HTTP/1.1).
func originHandler(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "text/plain")
	trailer := r.URL.Path == "/trailer"
	if trailer {
		w.Header().Set("Trailer", "X-Done")
	}
	fmt.Fprintf(w, "%s %s %s %d\n", r.Proto, r.Method, r.URL.Path, n)
	if trailer {
		// net/http's HTTP/2 server drops the trailers of a response it completes in one
		// frame: sending the head and body first makes it send them.
		w.(http.Flusher).Flush()
		w.Header().Set("X-Done", "yes")
	}
}

// oneUpstream is a proxy program that sends every request to one peer.
type oneUpstream struct {
	proxy.Defaults[struct{}]
	peer *upstream.Peer
}

func (a *oneUpstream) NewCtx() struct{} { return struct{}{} }

func (a *oneUpstream) UpstreamPeer(*proxy.Session, *struct{}) (*upstream.Peer, error) {
	return a.peer, nil
}

// startProxy runs the proxy in front of o on a loopback port and returns that port. With
// tlsConf it terminates TLS and serves HTTP/2 by ALPN (HTTP/1.1 too); without, it serves
// HTTP/1.1 and cleartext HTTP/2 with prior knowledge on the port. upH2 makes it speak
// cleartext HTTP/2 to o. The proxy stops when the test ends.
func startProxy(t *testing.T, o *origin, upH2 bool, tlsConf *tls.Config) string {
	t.Helper()
	return startProxyWith(t, o, upH2, tlsConf, proxy.Options{H2C: tlsConf == nil})
}

// startProxyWith is startProxy with the proxy's options (its Logger is replaced).
func startProxyWith(t *testing.T, o *origin, upH2 bool, tlsConf *tls.Config, opts proxy.Options) string {
	t.Helper()
	peer, err := upstream.NewPeer(o.addr, false, "")
	if err != nil {
		t.Fatal(err)
	}
	if upH2 {
		peer.Options.ALPN = upstream.H2
	}
	logger := testserve.Kept(t)
	opts.Logger = logger
	p := proxy.New[struct{}](&oneUpstream{peer: peer}, opts)
	svc := pserver.NewListeningService("h2 e2e proxy", p)
	svc.SetLogger(logger)
	if tlsConf != nil {
		cert := tlsConf.Certificates[0]
		testserve.ListenTLS(t, svc, &cert)
	} else {
		testserve.Listen(t, svc)
	}
	testserve.Run(t, testserve.Options{Logger: logger, AfterStop: p.Connector().Close}, svc)
	_, port, _ := net.SplitHostPort(testserve.Addr(t, svc))
	return port
}

// upstreams are the two kinds of origin behind the proxy: the proxy translates HTTP/2 to
// HTTP/1.1 for one and forwards HTTP/2 streams for the other.
var upstreams = []struct {
	name  string
	h2    bool
	proto string // the protocol the origin reports
}{
	{"h1 upstream", false, "HTTP/1.1"},
	{"h2 upstream", true, "HTTP/2.0"},
}

// TestProxyH2spec runs the h2spec conformance suite against the proxy's HTTP/2 listener,
// cleartext and TLS, with either kind of upstream behind it: every case must pass. The
// cleartext listener is HTTP/2-only (H2COnly): on a port shared with HTTP/1.1, bytes that are
// not the preface are an HTTP/1.1 request, which rightly gets a 400, where h2spec's case 3.5/2
// wants the connection closed without an answer.
func TestProxyH2spec(t *testing.T) {
	h2spec := tool(t, "h2spec")
	tlsConf, _ := pki(t)
	for _, up := range upstreams {
		for _, down := range []struct {
			name string
			tls  *tls.Config
			args []string
		}{{"h2c", nil, nil}, {"tls", tlsConf, []string{"-t", "-k"}}} {
			t.Run(down.name+" "+up.name, func(t *testing.T) {
				o := startOrigin(t, up.h2)
				port := startProxyWith(t, o, up.h2, down.tls, proxy.Options{H2COnly: down.tls == nil})
				args := append([]string{"-h", "127.0.0.1", "-p", port, "-o", "5"}, down.args...)
				out, err := run(t, h2spec, args...)
				summary := regexp.MustCompile(`(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed`).FindStringSubmatch(out)
				if err != nil || summary == nil || summary[4] != "0" || summary[3] != "0" {
					t.Fatalf("h2spec: %v\n%s", err, out)
				}
				if o.conns.Load() == 0 {
					t.Fatal("no request reached the upstream")
				}
				t.Log(summary[0])
			})
		}
	}
}

// TestProxyCurl sends requests through the proxy with curl, over h2c with prior knowledge and
// over TLS with ALPN, to either kind of upstream.
func TestProxyCurl(t *testing.T) {
	curl := tool(t, "curl")
	tlsConf, caFile := pki(t)
	for _, up := range upstreams {
		t.Run(up.name, func(t *testing.T) {
			o := startOrigin(t, up.h2)
			h2c := "http://127.0.0.1:" + startProxy(t, o, up.h2, nil)
			secure := "https://localhost:" + startProxy(t, o, up.h2, tlsConf)
			p := up.proto
			cases := []curlCase{
				{"h2c get", []string{"--http2-prior-knowledge", h2c + "/a?b"},
					[]string{"HTTP/2 200", p + " GET /a 0"}},
				{"h2c post", []string{"--http2-prior-knowledge", "--data-binary", "hello", h2c + "/up"},
					[]string{"HTTP/2 200", p + " POST /up 5"}},
				{"h2c trailers", []string{"--http2-prior-knowledge", "-H", "TE: trailers", h2c + "/trailer"},
					[]string{"HTTP/2 200", p + " GET /trailer 0", "x-done: yes"}},
				{"h2c head", []string{"--http2-prior-knowledge", "-I", h2c + "/h"},
					[]string{"HTTP/2 200", "content-type: text/plain"}},
				{"tls get", []string{"--http2", "--cacert", caFile, secure + "/tls"},
					[]string{"HTTP/2 200", p + " GET /tls 0"}},
				{"tls post", []string{"--http2", "--cacert", caFile, "--data-binary", "@" + caFile, secure + "/tls-up"},
					[]string{"HTTP/2 200", p + " POST /tls-up "}},
				{"tls http/1.1 on the same port", []string{"--http1.1", "--cacert", caFile, secure + "/one"},
					[]string{"HTTP/1.1 200", p + " GET /one 0"}},
			}
			runCurl(t, curl, cases)
		})
	}
}

// TestProxyH2load sends many concurrent streams, each a POST of 1 KiB, through the proxy with
// h2load, cleartext and over TLS, to either kind of upstream: no request may fail. With the HTTP/2 upstream the
// streams share upstream connections: far fewer of them than concurrent streams.
func TestProxyH2load(t *testing.T) {
	h2load := tool(t, "h2load")
	tlsConf, _ := pki(t)
	const n, clients, streams = 6000, 8, 32
	for _, up := range upstreams {
		for _, down := range []struct {
			name   string
			tls    *tls.Config
			scheme string
		}{{"h2c", nil, "http://127.0.0.1:"}, {"tls", tlsConf, "https://127.0.0.1:"}} {
			t.Run(down.name+" "+up.name, func(t *testing.T) {
				o := startOrigin(t, up.h2)
				port := startProxy(t, o, up.h2, down.tls)
				body := filepath.Join(t.TempDir(), "body")
				if err := os.WriteFile(body, make([]byte, 1024), 0o600); err != nil {
					t.Fatal(err)
				}
				out, err := run(t, h2load, "-n", fmt.Sprint(n), "-c", fmt.Sprint(clients), "-m", fmt.Sprint(streams),
					"-d", body, down.scheme+port+"/load")
				if err != nil {
					t.Fatalf("h2load: %v\n%s", err, out)
				}
				m := regexp.MustCompile(`requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored`).FindStringSubmatch(out)
				if m == nil || m[3] != fmt.Sprint(n) || m[4] != "0" || m[5] != "0" {
					t.Fatalf("h2load did not succeed on every request:\n%s", out)
				}
				if !strings.Contains(out, "status codes: "+fmt.Sprint(n)+" 2xx") {
					t.Fatalf("not every response was 2xx:\n%s", out)
				}
				conns := o.conns.Load()
				if up.h2 && conns > 2*clients*streams/100+1 {
					t.Fatalf("%d upstream HTTP/2 connections for %d concurrent streams: they are not shared", conns, clients*streams)
				}
				t.Logf("%s; %d upstream connections", strings.TrimSpace(regexp.MustCompile(`finished in .*`).FindString(out)), conns)
			})
		}
	}
}
