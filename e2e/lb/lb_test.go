// Package lb_test runs the proxy with a load balancer, health checks and passive health
// against real origin servers on 127.0.0.1 that go down and come back, and checks that no
// request fails while a healthy backend remains. Every wait is bounded.
package lb_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pingora-go/pingora/internal/testserve"
	"github.com/pingora-go/pingora/lb"
	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/upstream"
)

// waitBound bounds every wait: an event that takes longer is a failure.
const waitBound = 15 * time.Second

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// origin is an HTTP server on a fixed loopback address that can be stopped and started
// again. "/health" answers 200; anything else answers the origin's address and counts a
// hit.
type origin struct {
	addr string
	hits atomic.Int64

	mu  sync.Mutex // guards srv
	srv *http.Server
}

func startOrigin(t *testing.T) *origin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &origin{addr: ln.Addr().String()}
	o.serve(ln)
	t.Cleanup(o.stop)
	return o
}

func (o *origin) serve(ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		o.hits.Add(1)
		io.WriteString(w, o.addr)
	})
	srv := &http.Server{Handler: mux}
	o.mu.Lock()
	o.srv = srv
	o.mu.Unlock()
	go srv.Serve(ln)
}

// stop shuts the origin down as a server being taken out of service does: it closes the
// listener (connecting is refused from now on) and idle connections, and lets the requests
// in flight finish.
func (o *origin) stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), waitBound)
		defer cancel()
		if o.srv.Shutdown(ctx) != nil {
			o.srv.Close()
		}
		o.srv = nil
	}
}

// restart listens on the same address again.
func (o *origin) restart(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	deadline := time.Now().Add(waitBound)
	for ln, err = net.Listen("tcp", o.addr); err != nil; ln, err = net.Listen("tcp", o.addr) {
		if time.Now().After(deadline) {
			t.Fatalf("relisten on %s: %v", o.addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	o.serve(ln)
}

// lbCtx is the per-request context of the proxy program: the backends tried so far.
type lbCtx struct {
	tried []string
}

// app is the proxy program under test, written as a user would: pick a ready backend not
// tried yet, retry connection failures on another one, and feed passive health.
type app struct {
	proxy.Defaults[lbCtx]
	svc *lb.Service

	mu           sync.Mutex // guards connectFails
	connectFails map[string]int
}

func (a *app) NewCtx() lbCtx { return lbCtx{} }

func (a *app) UpstreamPeer(_ *proxy.Session, c *lbCtx) (*upstream.Peer, error) {
	b, ok := a.svc.LoadBalancer().SelectWith(nil, 256, func(b *lb.Backend, ready bool) bool {
		return ready && !slices.Contains(c.tried, b.Addr)
	})
	if !ok {
		return nil, perr.Explain(perr.ConnectNoRoute, "no ready backend").AsUp()
	}
	c.tried = append(c.tried, b.Addr)
	return upstream.NewPeer(b.Addr, false, "")
}

func (a *app) last(c *lbCtx) string {
	if len(c.tried) == 0 {
		return ""
	}
	return c.tried[len(c.tried)-1]
}

func (a *app) FailToConnect(_ *proxy.Session, _ *upstream.Peer, c *lbCtx, err *perr.Error) *perr.Error {
	a.mu.Lock()
	a.connectFails[a.last(c)]++
	a.mu.Unlock()
	a.svc.ReportResult(a.last(c), false)
	// Nothing was sent: retrying on another backend is always safe.
	err.SetRetry(true)
	return err
}

func (a *app) ErrorWhileProxy(peer *upstream.Peer, s *proxy.Session, err *perr.Error, c *lbCtx, reused bool) *perr.Error {
	if !reused {
		a.svc.ReportResult(a.last(c), false)
	}
	return a.Defaults.ErrorWhileProxy(peer, s, err, c, reused)
}

func (a *app) Logging(_ *proxy.Session, err error, c *lbCtx) {
	if err == nil {
		a.svc.ReportResult(a.last(c), true)
	}
}

func (a *app) fails(addr string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.connectFails[addr]
}

// startProxy runs a server with the proxy and the load balancer's background service, as
// a user's main would, until the test ends. It returns the proxy's address once the first
// discovery and health checks are done.
func startProxy(t *testing.T, svc *lb.Service) (string, *app) {
	t.Helper()
	a := &app{svc: svc, connectFails: map[string]int{}}
	p := proxy.NewService("lb proxy", a, proxy.Options{Logger: quiet})
	p.SetLogger(quiet)
	addr := testserve.Listen(t, p)
	testserve.Run(t, testserve.Options{GracePeriod: 2 * time.Second, Logger: quiet}, svc.Background(), p)
	select {
	case <-svc.Ready():
	case <-time.After(waitBound):
		t.Fatal("load balancer not ready")
	}
	return addr, a
}

// client sends requests through the proxy.
type client struct {
	t     *testing.T
	proxy string
	http  *http.Client
}

func newClient(t *testing.T, proxyAddr string) *client {
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	t.Cleanup(tr.CloseIdleConnections)
	return &client{t: t, proxy: proxyAddr, http: &http.Client{Transport: tr, Timeout: waitBound}}
}

// get returns the address of the origin that answered, or an error for any failure.
func (c *client) get() (string, error) {
	resp, err := c.http.Get("http://" + c.proxy + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	return string(body), nil
}

// load is a bounded background load: a few clients sending requests one after another
// until stopped, counting failures.
type load struct {
	stopc    chan struct{}
	wg       sync.WaitGroup
	requests atomic.Int64
	failures atomic.Int64
	firstErr atomic.Value
}

func startLoad(t *testing.T, proxyAddr string, clients int) *load {
	l := &load{stopc: make(chan struct{})}
	for range clients {
		c := newClient(t, proxyAddr)
		l.wg.Go(func() {
			for {
				select {
				case <-l.stopc:
					return
				default:
				}
				l.requests.Add(1)
				if _, err := c.get(); err != nil {
					l.failures.Add(1)
					l.firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	return l
}

// stop ends the load, waits for its requests to finish and fails the test on any failed
// request.
func (l *load) stop(t *testing.T) {
	t.Helper()
	close(l.stopc)
	l.wg.Wait()
	if n := l.failures.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed under load; first: %v", n, l.requests.Load(), l.firstErr.Load())
	}
}

// waitEvent waits for the event of addr that satisfies want.
func waitEvent(t *testing.T, events <-chan lb.HealthEvent, addr string, want func(lb.HealthEvent) bool) {
	t.Helper()
	timeout := time.After(waitBound)
	for {
		select {
		case ev := <-events:
			if ev.Backend.Addr == addr && want(ev) {
				return
			}
		case <-timeout:
			t.Fatalf("no expected health event for %s", addr)
		}
	}
}

// sequential sends n requests one after another and returns how many each origin answered.
func sequential(t *testing.T, c *client, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		who, err := c.get()
		if err != nil {
			t.Fatalf("request failed: %v", err)
		}
		got[who]++
	}
	return got
}

func TestHealthChecksMoveTraffic(t *testing.T) {
	origins := []*origin{startOrigin(t), startOrigin(t), startOrigin(t)}
	addrs := make([]string, len(origins))
	for i, o := range origins {
		addrs[i] = o.addr
	}
	upstreams, err := lb.New(lb.RoundRobin, addrs...)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan lb.HealthEvent, 64)
	svc, err := lb.NewService(upstreams, lb.ServiceConfig{
		Name: "origins",
		Health: lb.HealthConfig{
			Checker:   &lb.HTTPCheck{Path: "/health", Body: []byte("ok"), Timeout: time.Second},
			Interval:  20 * time.Millisecond,
			Healthy:   2,
			Unhealthy: 2,
		},
		OnEvent: func(ev lb.HealthEvent) { events <- ev },
		Logger:  quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	proxyAddr, a := startProxy(t, svc)
	c := newClient(t, proxyAddr)
	if got := sequential(t, c, 30); len(got) != 3 {
		t.Fatalf("answers by origin %v, want all three", got)
	}

	tests := []struct {
		name      string
		change    func()
		healthy   bool
		wantShare int // requests of 30 the changed origin answers afterwards
	}{
		{"down", origins[1].stop, false, 0},
		{"back up", func() { origins[1].restart(t) }, true, 10},
		{"down again", origins[1].stop, false, 0},
		{"up again", func() { origins[1].restart(t) }, true, 10},
	}
	changed := origins[1].addr
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ld := startLoad(t, proxyAddr, 4)
			tt.change()
			waitEvent(t, events, changed, func(ev lb.HealthEvent) bool { return ev.Healthy == tt.healthy })
			ld.stop(t)
			if ld.requests.Load() == 0 {
				t.Fatal("no request ran during the change")
			}
			failsBefore := a.fails(changed)
			got := sequential(t, c, 30)
			if got[changed] != tt.wantShare {
				t.Errorf("answers by origin %v: %s answered %d, want %d", got, changed, got[changed], tt.wantShare)
			}
			if n := a.fails(changed) - failsBefore; n != 0 {
				t.Errorf("%d connection attempts to %s while it is unhealthy", n, changed)
			}
		})
	}
}

func TestPassiveHealthEjectsAndReadmits(t *testing.T) {
	good, bad := startOrigin(t), startOrigin(t)
	upstreams, err := lb.New(lb.RoundRobin, good.addr, bad.addr)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan lb.HealthEvent, 64)
	svc, err := lb.NewService(upstreams, lb.ServiceConfig{
		Passive: lb.PassiveConfig{Failures: 3, Backoff: 20 * time.Millisecond, MaxBackoff: 40 * time.Millisecond},
		Health: lb.HealthConfig{
			// The probe after each back-off; the periodic rounds are out of the way.
			Checker:  &lb.HTTPCheck{Path: "/health"},
			Interval: time.Hour,
		},
		OnEvent: func(ev lb.HealthEvent) { events <- ev },
		Logger:  quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	proxyAddr, a := startProxy(t, svc)
	c := newClient(t, proxyAddr)

	bad.stop()
	// Each request that picks bad first fails to connect there and is retried on good;
	// the third such failure ejects bad.
	ld := startLoad(t, proxyAddr, 2)
	waitEvent(t, events, bad.addr, func(ev lb.HealthEvent) bool { return ev.Ejected })
	ld.stop(t)
	failsBefore := a.fails(bad.addr)
	if got := sequential(t, c, 20); got[good.addr] != 20 {
		t.Fatalf("answers by origin %v while %s is ejected", got, bad.addr)
	}
	if n := a.fails(bad.addr) - failsBefore; n != 0 {
		t.Fatalf("%d connection attempts to the ejected backend", n)
	}

	// Back-offs end, probes fail and extend the ejection; once the origin is back, a probe
	// passes and it is readmitted.
	bad.restart(t)
	waitEvent(t, events, bad.addr, func(ev lb.HealthEvent) bool { return !ev.Ejected })
	if got := sequential(t, c, 20); got[bad.addr] != 10 {
		t.Fatalf("answers by origin %v after readmission, want 10 each", got)
	}
}

func TestDrainOnUpdate(t *testing.T) {
	// Replacing the backend set while requests are in flight fails none of them: leases
	// taken before the update keep counting on the backend they chose.
	origins := []*origin{startOrigin(t), startOrigin(t), startOrigin(t)}
	upstreams, err := lb.New(lb.RoundRobin, origins[0].addr, origins[1].addr)
	if err != nil {
		t.Fatal(err)
	}
	var step atomic.Int64
	sets := [][]lb.Backend{
		{lb.NewBackend(origins[0].addr), lb.NewBackend(origins[1].addr)},
		{lb.NewBackend(origins[1].addr), lb.NewBackend(origins[2].addr)},
		{lb.NewBackend(origins[2].addr), lb.NewBackend(origins[0].addr)},
	}
	svc, err := lb.NewService(upstreams, lb.ServiceConfig{
		Discovery: lb.DiscoveryFunc(func(context.Context) ([]lb.Backend, time.Duration, error) {
			return sets[step.Add(1)%int64(len(sets))], 0, nil
		}),
		UpdateInterval: time.Millisecond,
		Logger:         quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	proxyAddr, _ := startProxy(t, svc)
	ld := startLoad(t, proxyAddr, 4)
	deadline := time.After(waitBound)
	for ld.requests.Load() < 500 || step.Load() < 50 {
		select {
		case <-deadline:
			t.Fatalf("only %d requests and %d updates", ld.requests.Load(), step.Load())
		case <-time.After(time.Millisecond):
		}
	}
	ld.stop(t)
}
