package proxy_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/pingora-go/pingora/conf"
	"github.com/pingora-go/pingora/internal/testpki"
	"github.com/pingora-go/pingora/listeners"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
	"github.com/pingora-go/pingora/upstream"
)

// onePeer is the smallest proxy program: every request goes to one peer.
type onePeer struct {
	proxy.Defaults[struct{}]
	peer *upstream.Peer
}

func (a *onePeer) NewCtx() struct{} { return struct{}{} }

func (a *onePeer) UpstreamPeer(*proxy.Session, *struct{}) (*upstream.Peer, error) {
	return a.peer, nil
}

// A proxy that terminates TLS, run by a server until a graceful shutdown: the program shape
// of the TLS and start/stop pages, on loopback with a generated certificate.
func ExampleNewService_tls() {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	origin, originAddr := exampleOrigin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello over %s", r.Proto)
	}))
	defer origin.Close()
	peer, err := upstream.NewPeer(originAddr, false, "")
	if err != nil {
		log.Fatal(err)
	}
	app := &onePeer{peer: peer}

	// The certificate files; in production they come from a CA.
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	ca, _ := testpki.NewCA("example CA")
	leaf, _ := ca.Issue(testpki.LeafOptions{Names: []string{"www.example.com"}})
	certFile, keyFile, _ := leaf.WriteFiles(dir, "www")

	settings, err := listeners.NewTLS(listeners.TLSOptions{
		Certs:          []listeners.CertFiles{{CertFile: certFile, KeyFile: keyFile}},
		ReloadInterval: -1, // no watch of the files in this example
		Logger:         quiet,
	})
	if err != nil {
		log.Fatal(err)
	}
	svc := proxy.NewService("my proxy", app, proxy.Options{Logger: quiet})
	svc.AddTLS("127.0.0.1:0", settings) // "0.0.0.0:443" in production; here a free port
	svc.SetLogger(quiet)

	c := conf.Default()
	c.GracePeriodSeconds = 5
	srv := server.New(server.Options{Conf: c, Logger: quiet})
	srv.AddService(svc)
	// A program's main calls srv.Run(context.Background()): signals, daemon, upgrade,
	// privileges. RunServices runs only the services, for tests and embedding.
	done := make(chan error, 1)
	go func() { done <- srv.RunServices(context.Background()) }()
	addr := waitListening(svc)

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "www.example.com"},
	}}
	resp, err := client.Get("https://" + addr + "/")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.TLS.Version == tls.VersionTLS13, string(body))

	srv.Shutdown(true) // graceful; Shutdown(false) is fast
	fmt.Println("stopped:", <-done)
	// Output:
	// 200 true hello over HTTP/1.1
	// stopped: <nil>
}

// The accept loop's protections of one listening service: at most 50,000 downstream
// connections at once, the others wait in the kernel's listen queue.
func ExampleNewService_acceptOptions() {
	peer, _ := upstream.NewPeer("127.0.0.1:8000", false, "")
	app := &onePeer{peer: peer}

	svc := proxy.NewService("my proxy", app, proxy.Options{})
	svc.AddTCP("0.0.0.0:6188")
	svc.SetAcceptOptions(server.AcceptOptions{MaxConns: 50_000})

	fmt.Println(svc.AcceptOptions().MaxConns)
	// Output: 50000
}

// A peer that takes one request at a time and lets one more wait: a third request at once
// is shed with 503 and Retry-After, and the waiting one is served when the first ends.
func ExampleProxy_Inflight() {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	release := make(chan struct{})
	origin, originAddr := exampleOrigin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "ok")
	}))
	defer origin.Close()
	peer, err := upstream.NewPeer(originAddr, false, "")
	if err != nil {
		log.Fatal(err)
	}

	peer.Options.MaxInflight = 1                // at most 1 request at once to this peer
	peer.Options.MaxQueued = 1                  // 1 more waits for a slot
	peer.Options.QueueTimeout = 5 * time.Second // for up to 5 s
	p := proxy.New(&onePeer{peer: peer}, proxy.Options{Logger: quiet})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	svc := server.NewListeningService("example", p)
	svc.SetLogger(quiet)
	svc.AddListener(ln)
	srv := server.New(server.Options{GracePeriod: time.Second, Logger: quiet})
	srv.AddService(svc)
	done := make(chan error, 1)
	go func() { done <- srv.RunServices(context.Background()) }()
	defer func() { srv.Shutdown(true); <-done; p.Connector().Close() }()

	client := &http.Client{Timeout: 10 * time.Second}
	url := "http://" + ln.Addr().String() + "/"
	get := func() (int, string) {
		resp, err := client.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}

	var wg sync.WaitGroup
	var first, second int
	wg.Add(2)
	go func() { defer wg.Done(); first, _ = get() }()
	waitInflight(p, peer, 1, 0)
	go func() { defer wg.Done(); second, _ = get() }()
	waitInflight(p, peer, 1, 1)
	running, queued := p.Inflight(peer)
	fmt.Println("running:", running, "queued:", queued)

	status, retryAfter := get()
	fmt.Println("third:", status, "Retry-After:", retryAfter)

	close(release)
	wg.Wait()
	fmt.Println("first:", first, "second:", second)
	// Output:
	// running: 1 queued: 1
	// third: 503 Retry-After: 1
	// first: 200 second: 200
}

// exampleOrigin serves h on a free loopback port and returns the server and its address.
func exampleOrigin(h http.Handler) (*http.Server, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	origin := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go origin.Serve(ln)
	return origin, ln.Addr().String()
}

// waitListening waits (at most 10 s) until svc listens and returns its first address.
func waitListening(svc *server.ListeningService) string {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if a := svc.Addrs(); len(a) > 0 {
			return a[0].String()
		}
	}
	log.Fatal("the service did not start listening")
	return ""
}

// waitInflight waits (at most 10 s) until p has running requests in flight to peer and
// queued ones waiting.
func waitInflight(p *proxy.Proxy[struct{}], peer *upstream.Peer, running, queued int) {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if r, q := p.Inflight(peer); r == running && q == queued {
			return
		}
	}
	r, q := p.Inflight(peer)
	log.Fatalf("in flight: %d running, %d queued; want %d, %d", r, q, running, queued)
}
