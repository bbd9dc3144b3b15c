// Package exampletest starts the real servers the examples' tests talk to: origins on
// loopback ports and an example's proxy program behind a server.Server.
package exampletest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/pingora-go/pingora/internal/testbin"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
)

// Origin starts an HTTP/1.1 origin serving h on a free 127.0.0.1 port until the test ends
// and returns its "host:port".
func Origin(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// NamedOrigin starts an origin that answers every request with 200 and name as its body, and
// calls seen (when not nil) with each request it receives.
func NamedOrigin(t testing.TB, name string, seen func(*http.Request)) string {
	t.Helper()
	return Origin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seen != nil {
			seen(r)
		}
		io.WriteString(w, name)
	}))
}

// SilentOrigin starts a server that accepts connections and reads from them but never answers,
// so that a proxy waiting for a response times out.
func SilentOrigin(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(io.Discard, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// DeadAddr returns a loopback address on which nothing listens: connecting to it is refused.
func DeadAddr(t testing.TB) string {
	t.Helper()
	return testbin.FreeAddr(t)
}

// Serve runs app as a proxy on a free 127.0.0.1 port until the test ends and returns the
// proxy's "host:port". Error log lines are discarded.
func Serve[C any](t testing.TB, app proxy.ProxyHTTP[C]) string {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := proxy.New(app, proxy.Options{Logger: quiet})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc := server.NewListeningService("example proxy", p)
	svc.SetLogger(quiet)
	svc.AddListener(ln)
	srv := server.New(server.Options{GracePeriod: time.Second, Logger: quiet})
	srv.AddService(svc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.RunServices(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("proxy server: %v", err)
		}
		p.Connector().Close()
	})
	return ln.Addr().String()
}

// Get sends a GET for path to the proxy at addr with the extra request headers hdr (may be
// nil) and returns the response with its body read whole.
func Get(t testing.TB, c *http.Client, addr, path string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
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

// Client returns an HTTP client for talking to a test proxy; its idle connections close when
// the test ends.
func Client(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}
