// Package testserve runs services of package server for a test: on loopback ports, quietly,
// until the test ends, with every wait bounded.
package testserve

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pingora-go/pingora/listeners"
	"github.com/pingora-go/pingora/server"
)

// Bound bounds every wait of the helpers: a server that does not start listening or stop in
// that time fails the test.
const Bound = 30 * time.Second

// Quiet returns a logger that discards everything.
func Quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// maxKept bounds what Kept holds: the first records are the ones that explain a failure.
const maxKept = 1 << 20

// Kept returns a logger that holds what is logged (up to 1 MiB) and prints it to the test's
// log only if the test failed, so that a load test stays quiet until its log explains a
// failure.
func Kept(t testing.TB) *slog.Logger {
	w := &keptLog{}
	t.Cleanup(func() {
		if t.Failed() {
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.b.Len() > 0 {
				t.Logf("the server's log:\n%s", w.b.String())
			}
		}
	})
	return slog.New(slog.NewTextHandler(w, nil))
}

// keptLog is the writer of Kept.
type keptLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *keptLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.b.Len() < maxKept {
		w.b.Write(p)
	}
	w.mu.Unlock()
	return len(p), nil
}

// Options configures Run.
type Options struct {
	// GracePeriod is the server's grace period at the stop (default one second).
	GracePeriod time.Duration
	// Logger is the server's logger (default Quiet).
	Logger *slog.Logger
	// AfterStop, if not nil, runs once after the server stopped, such as a proxy's
	// Connector().Close to close its upstream connections. Its error is ignored.
	AfterStop func() error
	// ReportErr makes an error returned by RunServices fail the test.
	ReportErr bool
}

// Run runs svcs on a server.Server in a goroutine until the test ends or the returned function
// is called, whichever comes first. Stopping cancels the server and waits, at most Bound, for
// RunServices to return; calling it again does nothing.
func Run(t testing.TB, o Options, svcs ...server.Service) (stop func()) {
	t.Helper()
	if o.GracePeriod == 0 {
		o.GracePeriod = time.Second
	}
	if o.Logger == nil {
		o.Logger = Quiet()
	}
	srv := server.New(server.Options{GracePeriod: o.GracePeriod, Logger: o.Logger})
	for _, s := range svcs {
		srv.AddService(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.RunServices(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil && o.ReportErr {
					t.Errorf("server: %v", err)
				}
			case <-time.After(Bound):
				t.Errorf("the server did not stop within %s", Bound)
			}
			if o.AfterStop != nil {
				o.AfterStop()
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// Listen adds a listener on a fresh 127.0.0.1 port to svc and returns its address.
func Listen(t testing.TB, svc *server.ListeningService) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc.AddListener(ln)
	return ln.Addr().String()
}

// ListenTLS adds a TLS listener with cert, offering HTTP/2 and HTTP/1.1 by ALPN, on a fresh
// 127.0.0.1 port to svc; Addr tells the port once the server runs.
func ListenTLS(t testing.TB, svc *server.ListeningService, cert *tls.Certificate) {
	t.Helper()
	to := listeners.TLSOptions{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil }}
	to.EnableH2()
	settings, err := listeners.NewTLS(to)
	if err != nil {
		t.Fatal(err)
	}
	svc.AddTLS("127.0.0.1:0", settings)
}

// Client returns an HTTP/1.1 client for a test: it asks for no compression, follows no
// redirects, bounds each request by Bound, and closes its idle connections when the test ends.
func Client(t testing.TB) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: Bound, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Do sends a request with c and returns the response with its body read whole. hdr holds
// pairs of a field name and a value; a "Host" pair sets the request's host.
func Do(t testing.TB, c *http.Client, method, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// Addr waits, at most Bound, until svc listens and returns its first address.
func Addr(t testing.TB, svc *server.ListeningService) string {
	t.Helper()
	for deadline := time.Now().Add(Bound); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if a := svc.Addrs(); len(a) > 0 {
			return a[0].String()
		}
	}
	t.Fatalf("%s did not start listening within %s", svc.Name(), Bound)
	return ""
}
