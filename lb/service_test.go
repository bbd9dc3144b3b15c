package lb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/pingora-go/pingora/server"
)

// eventually waits, up to a bound, until cond holds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// runService runs s until the test ends and waits for its first round.
func runService(t testing.TB, s *Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	select {
	case <-s.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("service not ready")
	}
}

func addrs(bs []Backend) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Addr
	}
	return out
}

// listDiscovery serves whatever list the test stores, with no TTL.
type listDiscovery struct {
	list  atomic.Pointer[[]Backend]
	err   atomic.Pointer[error]
	calls atomic.Int64
}

func (d *listDiscovery) Discover(context.Context) ([]Backend, time.Duration, error) {
	d.calls.Add(1)
	if e := d.err.Load(); e != nil {
		return nil, 0, *e
	}
	return slices.Clone(*d.list.Load()), 0, nil
}

func TestServiceDiscoveryKeepsHealth(t *testing.T) {
	l := newLB(t, RoundRobin, nil)
	d := &listDiscovery{}
	d.list.Store(&[]Backend{{Addr: "10.0.0.1:80"}, {Addr: "10.0.0.2:80"}})
	var down sync.Map // addresses whose checks fail
	down.Store("10.0.0.2:80", true)
	events := make(chan HealthEvent, 16)
	s, err := NewService(l, ServiceConfig{
		Discovery:      d,
		UpdateInterval: time.Millisecond,
		Health: HealthConfig{Interval: time.Hour, Checker: CheckerFunc(func(_ context.Context, b *Backend) error {
			if _, ok := down.Load(b.Addr); ok {
				return errors.New("down")
			}
			return nil
		})},
		OnEvent: func(ev HealthEvent) { events <- ev },
		Logger:  quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	runService(t, s)
	if got := addrs(l.Backends().All()); !slices.Equal(got, []string{"10.0.0.1:80", "10.0.0.2:80"}) {
		t.Fatalf("backends %v after first discovery", got)
	}
	ev := waitEvent(t, events)
	if ev.Backend.Addr != "10.0.0.2:80" || ev.Healthy || ev.Err == nil {
		t.Fatalf("event %+v, want 10.0.0.2:80 unhealthy with its error", ev)
	}
	// Discovery adds a backend, keeps 10.0.0.2 and drops 10.0.0.1; the
	// health checks are an hour away, so 10.0.0.2 must stay down.
	d.list.Store(&[]Backend{{Addr: "10.0.0.2:80"}, {Addr: "10.0.0.3:80", Weight: 2}})
	eventually(t, "the new set", func() bool { return l.Backends().Len() == 2 && l.Backends().Ready("10.0.0.3:80") })
	if l.Backends().Ready("10.0.0.2:80") {
		t.Fatal("discovery update reset the health of an unchanged backend")
	}
	// A failing discovery keeps the set.
	failure := errors.New("registry unreachable")
	d.err.Store(&failure)
	d.list.Store(&[]Backend{})
	calls := d.calls.Load()
	eventually(t, "failed discoveries", func() bool { return d.calls.Load() >= calls+3 })
	if got := addrs(l.Backends().All()); !slices.Equal(got, []string{"10.0.0.2:80", "10.0.0.3:80"}) {
		t.Fatalf("backends %v after failed discoveries", got)
	}
}

func TestServiceDNSDiscovery(t *testing.T) {
	srv := startDNS(t)
	srv.set("_api._tcp.svc.test.", dnsmessage.TypeSRV, []dnsmessage.Resource{
		srvRec("_api._tcp.svc.test.", 0, 1, 3, 8080, "a.svc.test."),
		srvRec("_api._tcp.svc.test.", 0, 1, 1, 8080, "b.svc.test."),
	}, []dnsmessage.Resource{aRec("a.svc.test.", 0, "10.2.0.1"), aRec("b.svc.test.", 0, "10.2.0.2")})
	l := newLB(t, SmoothWeightedRoundRobin, nil)
	s, err := NewService(l, ServiceConfig{
		// TTL 0 is raised to MinTTL: the set is refreshed every 5 ms.
		Discovery: &DNS{Name: "_api._tcp.svc.test", SRV: true, Network: "ip4", Resolver: srv.addr, MinTTL: 5 * time.Millisecond},
		Logger:    quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	runService(t, s)
	want := []Backend{{Addr: "10.2.0.1:8080", Weight: 3}, {Addr: "10.2.0.2:8080", Weight: 1}}
	if got := l.Backends().All(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("backends %v, want %v", got, want)
	}
	// The answer changes: b leaves, c arrives.
	srv.set("_api._tcp.svc.test.", dnsmessage.TypeSRV, []dnsmessage.Resource{
		srvRec("_api._tcp.svc.test.", 0, 1, 3, 8080, "a.svc.test."),
		srvRec("_api._tcp.svc.test.", 0, 1, 2, 9090, "c.svc.test."),
	}, []dnsmessage.Resource{aRec("a.svc.test.", 0, "10.2.0.1"), aRec("c.svc.test.", 0, "10.2.0.3")})
	want = []Backend{{Addr: "10.2.0.1:8080", Weight: 3}, {Addr: "10.2.0.3:9090", Weight: 2}}
	eventually(t, "the new DNS answer", func() bool { return fmt.Sprint(l.Backends().All()) == fmt.Sprint(want) })
}

func TestServiceStaticDiscovery(t *testing.T) {
	list := Static{{Addr: "10.0.0.2:80", Weight: 3}, {Addr: "10.0.0.1:80"}}
	l := newLB(t, SmoothWeightedRoundRobin, nil)
	s, err := NewService(l, ServiceConfig{Discovery: list, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	runService(t, s)
	want := []Backend{{Addr: "10.0.0.1:80", Weight: 1}, {Addr: "10.0.0.2:80", Weight: 3}}
	if got := l.Backends().All(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("backends %v, want %v", got, want)
	}
	// Discover hands out a copy: changing it leaves the list alone.
	got, ttl, err := list.Discover(context.Background())
	if err != nil || ttl != 0 {
		t.Fatalf("ttl %v, err %v", ttl, err)
	}
	got[0].Addr = "10.9.9.9:80"
	if list[0].Addr != "10.0.0.2:80" {
		t.Fatal("Discover returned the list itself")
	}
}

// TestServiceDNSTTLRefresh resolves A and AAAA records with a TTL of one
// second through a running Service: the next lookup waits for the TTL, the
// new answer replaces the set, and a backend in both answers keeps the
// health a check gave it.
func TestServiceDNSTTLRefresh(t *testing.T) {
	srv := startDNS(t)
	srv.set("web.test.", dnsmessage.TypeA, []dnsmessage.Resource{aRec("web.test.", 1, "10.3.0.1"), aRec("web.test.", 1, "10.3.0.2")}, nil)
	srv.set("web.test.", dnsmessage.TypeAAAA, []dnsmessage.Resource{aRec("web.test.", 5, "fd00::3")}, nil)
	l := newLB(t, RoundRobin, nil)
	s, err := NewService(l, ServiceConfig{
		Discovery: &DNS{Name: "web.test", Port: 80, Resolver: srv.addr},
		// One round of checks at start: 10.3.0.2 is down until the next
		// round, an hour away.
		Health: HealthConfig{Interval: time.Hour, Checker: CheckerFunc(func(_ context.Context, b *Backend) error {
			return okErr(b.Addr != "10.3.0.2:80")
		})},
		Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	runService(t, s)
	if got := addrs(l.Backends().All()); !slices.Equal(got, []string{"10.3.0.1:80", "10.3.0.2:80", "[fd00::3]:80"}) {
		t.Fatalf("backends %v after the first lookup", got)
	}
	if l.Backends().Ready("10.3.0.2:80") {
		t.Fatal("10.3.0.2 ready after a failed check")
	}
	srv.set("web.test.", dnsmessage.TypeA, []dnsmessage.Resource{aRec("web.test.", 1, "10.3.0.2"), aRec("web.test.", 1, "10.3.0.4")}, nil)
	want := []string{"10.3.0.2:80", "10.3.0.4:80", "[fd00::3]:80"}
	eventually(t, "the new DNS answer", func() bool { return slices.Equal(addrs(l.Backends().All()), want) })
	if l.Backends().Ready("10.3.0.2:80") || !l.Backends().Ready("10.3.0.4:80") {
		t.Fatal("the DNS update changed the health of a backend in both answers, or a new backend is not ready")
	}
	srv.mu.Lock()
	at := slices.Clone(srv.at)
	srv.mu.Unlock()
	// Each lookup is an A and an AAAA query; the second lookup starts no
	// sooner than the smallest TTL (1 s) after the first ended.
	if len(at) < 4 {
		t.Fatalf("%d queries, want two lookups of two", len(at))
	}
	if gap := at[2].Sub(at[1]); gap < time.Second {
		t.Fatalf("second lookup %v after the first, before the TTL of 1s ran out", gap)
	}
}

func TestServiceMetrics(t *testing.T) {
	l := newLB(t, RoundRobin, equal(2))
	all := addrs(l.Backends().All())
	var failing atomic.Value
	failing.Store(all[1])
	reg := prometheus.NewRegistry()
	events := make(chan HealthEvent, 16)
	s, err := NewService(l, ServiceConfig{
		Name:       "api",
		Registerer: reg,
		Health: HealthConfig{Interval: time.Millisecond, Checker: CheckerFunc(func(_ context.Context, b *Backend) error {
			return okErr(b.Addr != failing.Load())
		})},
		Passive: PassiveConfig{Failures: 1, Backoff: time.Hour},
		OnEvent: func(ev HealthEvent) { events <- ev },
		Logger:  quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewService(l, ServiceConfig{Name: "api", Registerer: reg}); err == nil {
		t.Fatal("second service with the same name registered its metrics")
	}
	runService(t, s)
	waitEvent(t, events)
	s.ReportResult(all[0], false)
	waitEvent(t, events)
	want := map[string]float64{
		"pingora_lb_backend_healthy/" + all[0]: 1,
		"pingora_lb_backend_healthy/" + all[1]: 0,
		"pingora_lb_backend_ejected/" + all[0]: 1,
		"pingora_lb_backend_ejected/" + all[1]: 0,
	}
	if got := gauges(t, reg, "api"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("gauges %v, want %v", got, want)
	}
}

// gauges returns the values of the registry's gauges by "name/backend",
// checking their "lb" label.
func gauges(t *testing.T, reg *prometheus.Registry, lbName string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["lb"] != lbName {
				t.Errorf("%s: lb label %q", mf.GetName(), labels["lb"])
			}
			out[mf.GetName()+"/"+labels["backend"]] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestServiceStopsWithServer(t *testing.T) {
	l := newLB(t, RoundRobin, equal(2))
	var checks atomic.Int32
	s, err := NewService(l, ServiceConfig{
		Name:   "upstreams",
		Logger: quiet,
		Health: HealthConfig{Interval: time.Millisecond, Checker: CheckerFunc(func(ctx context.Context, _ *Backend) error {
			checks.Add(1)
			return nil
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	bg := s.Background()
	if bg.Name() != "BG upstreams" {
		t.Errorf("name %q", bg.Name())
	}
	srv := server.New(server.Options{GracePeriod: time.Second, Logger: quiet})
	srv.AddService(bg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.RunServices(ctx) }()
	<-s.Ready()
	eventually(t, "a few rounds of checks", func() bool { return checks.Load() >= 6 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
	after := checks.Load()
	time.Sleep(10 * time.Millisecond)
	if checks.Load() != after {
		t.Fatal("health checks go on after the server stopped")
	}
}

// TestConcurrentSelectDuringHealthAndDiscovery selects and reports results
// while the service replaces the set, flips health and ejects backends; run
// it with -race.
func TestConcurrentSelectDuringHealthAndDiscovery(t *testing.T) {
	sets := [][]Backend{weighted(1, 2, 3), weighted(2, 2), weighted(1, 1, 1, 1, 5)}
	var round atomic.Int64
	disc := DiscoveryFunc(func(context.Context) ([]Backend, time.Duration, error) {
		return sets[round.Add(1)%int64(len(sets))], 0, nil
	})
	for _, tt := range algorithms {
		t.Run(tt.name, func(t *testing.T) {
			l := newLB(t, tt.algo, nil)
			var flip atomic.Int64
			s, err := NewService(l, ServiceConfig{
				Discovery:      disc,
				UpdateInterval: 100 * time.Microsecond,
				Health: HealthConfig{Interval: 100 * time.Microsecond, Checker: CheckerFunc(func(context.Context, *Backend) error {
					return okErr(flip.Add(1)%3 != 0)
				})},
				Passive: PassiveConfig{Failures: 2, Backoff: 50 * time.Microsecond},
				Logger:  quiet,
			})
			if err != nil {
				t.Fatal(err)
			}
			runService(t, s)
			var wg sync.WaitGroup
			for g := range 3 {
				wg.Go(func() {
					key := make([]byte, 0, 16)
					for i := range 3000 {
						key = fmt.Appendf(key[:0], "%d-%d", g, i)
						lease, ok := l.Acquire(key, 8)
						if !ok {
							continue
						}
						if !slices.ContainsFunc(sets, func(set []Backend) bool {
							return slices.ContainsFunc(set, func(b Backend) bool { return b.Addr == lease.Backend.Addr })
						}) {
							t.Errorf("picked unknown %s", lease.Backend.Addr)
						}
						s.ReportResult(lease.Backend.Addr, i%4 != 0)
						lease.Release()
					}
				})
			}
			wg.Wait()
		})
	}
}

func TestServiceRunsOnce(t *testing.T) {
	s, err := NewService(newLB(t, RoundRobin, equal(1)), ServiceConfig{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	runService(t, s)
	done := make(chan struct{})
	go func() {
		s.Run(context.Background())
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a second Run did not return")
	}
}
