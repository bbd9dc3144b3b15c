package lb

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pingora-go/pingora/internal/testbin"
	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/upstream"
)

// closedAddr returns a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	return testbin.FreeAddr(t)
}

// silentAddr returns a loopback address that accepts connections and never
// answers.
func silentAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

func TestHTTPCheck(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok host=%s method=%s", r.Host, r.Method)
	})
	mux.HandleFunc("/down", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(strings.Repeat("x", 100<<10) + "needle"))
	})
	mux.HandleFunc("/early", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusNoContent)
	})
	plain := httptest.NewServer(mux)
	defer plain.Close()
	tlsSrv := quietTLSServer(mux)
	defer tlsSrv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(tlsSrv.Certificate())

	tests := []struct {
		name    string
		check   *HTTPCheck
		addr    string
		wantErr error // nil: healthy; errAny: any error
	}{
		{"200", &HTTPCheck{}, plain.Listener.Addr().String(), nil},
		{"host and body", &HTTPCheck{Host: "health.example", Body: []byte("host=health.example")}, plain.Listener.Addr().String(), nil},
		{"method", &HTTPCheck{Method: "HEAD"}, plain.Listener.Addr().String(), nil},
		{"body mismatch", &HTTPCheck{Body: []byte("nope")}, plain.Listener.Addr().String(), ErrCheckBody},
		{"body beyond MaxBody", &HTTPCheck{Path: "/big", Body: []byte("needle")}, plain.Listener.Addr().String(), ErrCheckBody},
		{"body within MaxBody", &HTTPCheck{Path: "/big", Body: []byte("needle"), MaxBody: 200 << 10}, plain.Listener.Addr().String(), nil},
		{"status", &HTTPCheck{Path: "/down"}, plain.Listener.Addr().String(), ErrCheckStatus},
		{"expected status", &HTTPCheck{Path: "/down", Status: 503}, plain.Listener.Addr().String(), nil},
		{"interim response skipped", &HTTPCheck{Path: "/early", Status: 204}, plain.Listener.Addr().String(), nil},
		{"refused", &HTTPCheck{}, closedAddr(t), errAny},
		{"no answer", &HTTPCheck{Timeout: 50 * time.Millisecond}, silentAddr(t), errAny},
		{"TLS verified", &HTTPCheck{Host: "example.com", Peer: &upstream.Peer{TLS: true, SNI: "example.com", Options: upstream.Options{CA: roots}}}, tlsSrv.Listener.Addr().String(), nil},
		{"TLS untrusted", NewHTTPCheck("example.com", true), tlsSrv.Listener.Addr().String(), errAny},
		{"plain HTTP to TLS", &HTTPCheck{}, tlsSrv.Listener.Addr().String(), ErrCheckStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBackend(tt.addr)
			err := tt.check.Check(context.Background(), &b)
			checkErr(t, err, tt.wantErr)
		})
	}
}

// errAny stands for "some error" in test tables.
var errAny = errors.New("any error")

func checkErr(t *testing.T, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("err = %v, want healthy", err)
	case want == errAny && err == nil:
		t.Fatal("healthy, want an error")
	case want != nil && want != errAny && !errors.Is(err, want):
		t.Fatalf("err = %v, want %v", err, want)
	}
}

func TestTCPCheck(t *testing.T) {
	tlsSrv := quietTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(tlsSrv.Certificate())
	tlsAddr := tlsSrv.Listener.Addr().String()

	tests := []struct {
		name    string
		check   *TCPCheck
		addr    string
		wantErr error
	}{
		{"open", NewTCPCheck(), tlsAddr, nil},
		{"refused", NewTCPCheck(), closedAddr(t), errAny},
		{"TLS without SNI skips verification", NewTLSCheck(""), tlsAddr, nil},
		{"TLS verified", &TCPCheck{Peer: &upstream.Peer{TLS: true, SNI: "example.com", Options: upstream.Options{CA: roots}}}, tlsAddr, nil},
		{"TLS wrong name", &TCPCheck{Peer: &upstream.Peer{TLS: true, SNI: "other.test", Options: upstream.Options{CA: roots}}}, tlsAddr, errAny},
		{"TLS untrusted", NewTLSCheck("example.com"), tlsAddr, errAny},
		{"TLS handshake never answered", &TCPCheck{Peer: &upstream.Peer{TLS: true}, Timeout: 50 * time.Millisecond}, silentAddr(t), errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBackend(tt.addr)
			checkErr(t, tt.check.Check(context.Background(), &b), tt.wantErr)
		})
	}
}

func TestTCPCheckRefusedIsConnectError(t *testing.T) {
	b := NewBackend(closedAddr(t))
	err := NewTCPCheck().Check(context.Background(), &b)
	e, ok := perr.As(err)
	if !ok || e.Type != perr.ConnectRefused {
		t.Fatalf("err = %v, want a ConnectRefused *perr.Error", err)
	}
}

func TestCheckUnixSocket(t *testing.T) {
	path := t.TempDir() + "/backend.sock"
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Skip(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("unix ok")) })}
	go srv.Serve(ln)
	defer srv.Close()
	b := NewBackend("unix:" + path)
	if err := (&HTTPCheck{Body: []byte("unix ok")}).Check(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
}

func TestHealthThresholds(t *testing.T) {
	// Each step is one round of checks of a single backend: its result
	// and the health the backend must have afterwards.
	type step struct {
		ok, healthy bool
	}
	tests := []struct {
		name               string
		healthy, unhealthy int
		steps              []step
	}{
		{"thresholds of 1 flip at once", 1, 1, []step{{false, false}, {true, true}, {false, false}}},
		{"three failures to go down", 1, 3, []step{{false, true}, {false, true}, {false, false}, {true, true}}},
		{"a success resets the failure count", 1, 2, []step{{false, true}, {true, true}, {false, true}, {false, false}}},
		{"two successes to come back", 2, 1, []step{{false, false}, {true, false}, {true, true}}},
		{"a failure resets the success count", 2, 1, []step{{false, false}, {true, false}, {false, false}, {true, false}, {true, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLB(t, RoundRobin, equal(1))
			var next bool
			s, err := NewService(l, ServiceConfig{Health: HealthConfig{
				Checker:   CheckerFunc(func(context.Context, *Backend) error { return okErr(next) }),
				Healthy:   tt.healthy,
				Unhealthy: tt.unhealthy,
			}})
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Backends().All()[0].Addr
			for i, st := range tt.steps {
				next = st.ok
				s.checkRound(context.Background())
				if got := l.Backends().Ready(addr); got != st.healthy {
					t.Fatalf("step %d (check ok=%v): healthy = %v, want %v", i, st.ok, got, st.healthy)
				}
			}
		})
	}
}

func okErr(ok bool) error {
	if ok {
		return nil
	}
	return errors.New("check failed")
}

func TestBackendsStatus(t *testing.T) {
	b := mustBackends(t, []Backend{{Addr: "10.0.0.1:80"}, {Addr: "10.0.0.2:80", Weight: 2}})
	l, err := NewFromBackends(LeastInFlight, b)
	if err != nil {
		t.Fatal(err)
	}
	b.SetHealthy("10.0.0.1:80", false)
	b.SetEnabled("10.0.0.2:80", false)
	b.SetEnabled("10.0.0.2:80", true)
	lease, _ := l.Acquire(nil, 4)
	defer lease.Release()
	got := b.Status()
	want := []BackendStatus{
		{Backend: Backend{Addr: "10.0.0.1:80", Weight: 1}, Healthy: false, Enabled: true},
		{Backend: Backend{Addr: "10.0.0.2:80", Weight: 2}, Healthy: true, Enabled: true, InFlight: 1},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Status = %v, want %v", got, want)
	}
}

// quietTLSServer is httptest.NewTLSServer without log lines for the failed
// handshakes the tests cause on purpose.
func quietTLSServer(h http.Handler) *httptest.Server {
	s := httptest.NewUnstartedServer(h)
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	return s
}
