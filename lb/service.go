package lb

import (
	"cmp"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pingora-go/pingora/server"
)

// Defaults of ServiceConfig and HealthConfig.
const (
	// DefaultHealthInterval is how often backends are checked.
	DefaultHealthInterval = 5 * time.Second
	// DefaultParallelChecks is how many checks run at the same time.
	DefaultParallelChecks = 16
	// DefaultDiscoveryTimeout bounds one Discover call.
	DefaultDiscoveryTimeout = 10 * time.Second
	// DefaultDiscoveryRetry is how soon a failed discovery is retried when
	// no UpdateInterval is set.
	DefaultDiscoveryRetry = 5 * time.Second
)

// HealthConfig configures active health checks.
type HealthConfig struct {
	// Checker checks one backend; nil turns active health checks off.
	Checker Checker
	// Interval is the time between two rounds of checks; zero means
	// DefaultHealthInterval.
	Interval time.Duration
	// Healthy is how many consecutive passed checks mark an unhealthy
	// backend healthy, and Unhealthy how many consecutive failed checks
	// mark a healthy one unhealthy; zero means 1. A result that agrees
	// with the current state resets the count.
	Healthy, Unhealthy int
	// Parallel caps the checks running at the same time; zero means
	// DefaultParallelChecks.
	Parallel int
}

// ServiceConfig configures a Service.
type ServiceConfig struct {
	// Name names the background service ("BG " + Name) and is the "lb"
	// label of its metrics; empty means "lb".
	Name string
	// Discovery finds the backends; nil keeps the LoadBalancer's own.
	Discovery Discovery
	// UpdateInterval is the time between two discoveries, and the longest
	// a discovered TTL is trusted; zero runs discovery once, or when the
	// TTL it returns runs out.
	UpdateInterval time.Duration
	// DiscoveryTimeout bounds one Discover call; zero means
	// DefaultDiscoveryTimeout.
	DiscoveryTimeout time.Duration
	// Health configures active health checks.
	Health HealthConfig
	// Passive configures passive health, fed by ReportResult.
	Passive PassiveConfig
	// OnEvent, when set, is told every change of a backend's health or
	// ejection. It runs on the service goroutine and should return soon.
	OnEvent func(HealthEvent)
	// Registerer, when set, receives two gauges per backend, labelled
	// "lb" (Name) and "backend" (Addr): pingora_lb_backend_healthy (1 when
	// active checks find it healthy) and pingora_lb_backend_ejected (1
	// while passive health keeps it out).
	Registerer prometheus.Registerer
	// Logger receives health changes (warn when a backend goes down, info
	// when it comes back) and discovery errors; nil uses slog.Default().
	Logger *slog.Logger
}

// HealthEvent is a change of a backend's health or ejection.
type HealthEvent struct {
	// Backend is the backend that changed.
	Backend Backend
	// Healthy is what active health checks say now.
	Healthy bool
	// Ejected is whether passive health keeps the backend out now.
	Ejected bool
	// Err is the last failed check when Healthy is false, else nil.
	Err error
}

// Service keeps a LoadBalancer current: it runs discovery and updates the
// backends, runs health checks and marks backends up and down, and ejects
// and readmits backends on the results ReportResult feeds it. Run it as a
// background service of the server (Background) or on a goroutine of its
// own (Run).
type Service struct {
	lb      *LoadBalancer
	cfg     ServiceConfig
	log     *slog.Logger
	passive passive
	metrics *healthMetrics
	wake    chan struct{} // a token asks the loop to look at ejections now
	ready   chan struct{} // closed after the first discovery and checks

	running atomic.Bool
	// known is owned by the Run goroutine.
	known map[string]*backendHealth
}

// backendHealth is what the Run loop remembers of one backend.
type backendHealth struct {
	run      int  // consecutive check results against the current state
	healthy  bool // state last reported through events and metrics
	ejected  bool
	checkErr error
}

// NewService returns a Service for l, with its metrics registered. It does
// nothing until Run.
func NewService(l *LoadBalancer, cfg ServiceConfig) (*Service, error) {
	cfg.Name = cmp.Or(cfg.Name, "lb")
	s := &Service{
		lb:    l,
		cfg:   cfg,
		log:   cmp.Or(cfg.Logger, slog.Default()),
		wake:  make(chan struct{}, 1),
		ready: make(chan struct{}),
		known: make(map[string]*backendHealth),
	}
	s.passive = passive{cfg: cfg.Passive, backends: l.backends, wake: s.poke, ejections: make(map[string]*ejection)}
	if cfg.Registerer != nil {
		m, err := newHealthMetrics(cfg.Registerer, cfg.Name)
		if err != nil {
			return nil, err
		}
		s.metrics = m
	}
	return s, nil
}

// LoadBalancer returns the load balancer s keeps current.
func (s *Service) LoadBalancer() *LoadBalancer { return s.lb }

// Background returns s as a server background service, which runs it
// until the server stops.
func (s *Service) Background() *server.BackgroundService {
	return server.NewBackgroundService(s.cfg.Name, s.Run)
}

// Ready is closed once Run has done its first discovery and first round of
// health checks, so that a proxy may wait for it before it listens.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// ReportResult tells passive health how a proxied request to the backend
// at addr (its Backend.Addr) went: ok is false when connecting or proxying
// failed because of the backend. Call it from the FailToConnect,
// ErrorWhileProxy or Logging phase. It is safe for concurrent use, cheap on
// success, and does nothing for an address not in the set or when passive
// health is off.
func (s *Service) ReportResult(addr string, ok bool) {
	s.passive.report(addr, ok)
}

func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run discovers backends, checks them, and then repeats both at their
// intervals and settles passive ejections as their back-off ends, until
// ctx ends. A Service runs once: later calls return at once.
func (s *Service) Run(ctx context.Context) {
	if s.running.CompareAndSwap(false, true) {
		s.run(ctx)
	}
}

func (s *Service) run(ctx context.Context) {
	var nextUpdate, nextHealth time.Time
	if s.cfg.Discovery != nil {
		nextUpdate = s.discover(ctx)
	}
	if s.cfg.Health.Checker != nil {
		s.checkRound(ctx)
		nextHealth = time.Now().Add(orDefault(s.cfg.Health.Interval, DefaultHealthInterval))
	}
	s.publish()
	close(s.ready)

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		_, nextProbe := s.passive.due(time.Now())
		next := earliest(earliest(nextUpdate, nextHealth), nextProbe)
		var tick <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-tick:
		}
		timer.Stop()
		if due(nextUpdate) {
			nextUpdate = s.discover(ctx)
		}
		if due(nextHealth) {
			s.checkRound(ctx)
			nextHealth = time.Now().Add(orDefault(s.cfg.Health.Interval, DefaultHealthInterval))
		}
		s.probeEjected(ctx)
		if ctx.Err() != nil {
			return
		}
		s.publish()
	}
}

// earliest returns the earlier of two times, zero meaning never.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func due(t time.Time) bool {
	return !t.IsZero() && !time.Now().Before(t)
}

// discover runs discovery, updates the set and returns when to run it next.
func (s *Service) discover(ctx context.Context) time.Time {
	dctx, cancel := context.WithTimeout(ctx, orDefault(s.cfg.DiscoveryTimeout, DefaultDiscoveryTimeout))
	defer cancel()
	list, ttl, err := s.cfg.Discovery.Discover(dctx)
	if err == nil {
		_, err = s.lb.Update(list)
	}
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("backend discovery failed, keeping the previous backends", "lb", s.cfg.Name, "error", err)
		}
		return time.Now().Add(orDefault(s.cfg.UpdateInterval, DefaultDiscoveryRetry))
	}
	s.passive.prune()
	every := s.cfg.UpdateInterval
	if ttl > 0 && (every <= 0 || ttl < every) {
		every = ttl
	}
	if every <= 0 {
		return time.Time{}
	}
	return time.Now().Add(every)
}

// checkRound checks every backend once and applies the thresholds.
func (s *Service) checkRound(ctx context.Context) {
	set := s.lb.backends.load()
	errs := s.checkAll(ctx, set.list)
	if ctx.Err() != nil {
		return
	}
	up, down := intOr(s.cfg.Health.Healthy, 1), intOr(s.cfg.Health.Unhealthy, 1)
	for i, b := range set.list {
		st := set.status[i]
		h := s.health(b.Addr, st)
		ok, healthy := errs[i] == nil, !st.down.Load()
		if !ok {
			h.checkErr = errs[i]
		}
		if ok == healthy {
			h.run = 0
			continue
		}
		h.run++
		if (healthy && h.run >= down) || (!healthy && h.run >= up) {
			h.run = 0
			st.down.Store(healthy)
		}
	}
}

// checkAll runs the Checker on backends, at most Parallel at a time, and
// returns each one's result.
func (s *Service) checkAll(ctx context.Context, backends []Backend) []error {
	errs := make([]error, len(backends))
	sem := make(chan struct{}, intOr(s.cfg.Health.Parallel, DefaultParallelChecks))
	var wg sync.WaitGroup
	for i := range backends {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = s.cfg.Health.Checker.Check(ctx, &backends[i])
		})
	}
	wg.Wait()
	return errs
}

// probeEjected settles the ejections whose back-off has ended: with a
// Checker a passing probe readmits the backend and a failing one extends
// the ejection; without one the backend is readmitted on trial.
func (s *Service) probeEjected(ctx context.Context) {
	addrs, _ := s.passive.due(time.Now())
	if len(addrs) == 0 {
		return
	}
	set := s.lb.backends.load()
	backends := make([]Backend, len(addrs))
	for i, a := range addrs {
		backends[i] = Backend{Addr: a}
		if j, ok := set.index[a]; ok {
			backends[i] = set.list[j]
		}
	}
	errs := make([]error, len(addrs))
	if s.cfg.Health.Checker != nil {
		errs = s.checkAll(ctx, backends)
	}
	if ctx.Err() != nil {
		return
	}
	now := time.Now()
	for i, a := range addrs {
		s.passive.settle(a, errs[i] == nil, now)
	}
}

// health returns the loop's record of the backend at addr, starting one
// from its current state.
func (s *Service) health(addr string, st *status) *backendHealth {
	h := s.known[addr]
	if h == nil {
		h = &backendHealth{healthy: !st.down.Load(), ejected: st.ejected.Load()}
		s.known[addr] = h
		s.metrics.set(addr, h.healthy, h.ejected)
	}
	return h
}

// publish reports the changes since the last call as events, log lines and
// metrics, and forgets backends that left the set.
func (s *Service) publish() {
	set := s.lb.backends.load()
	for i, b := range set.list {
		st := set.status[i]
		h := s.health(b.Addr, st)
		healthy, ejected := !st.down.Load(), st.ejected.Load()
		if healthy == h.healthy && ejected == h.ejected {
			continue
		}
		ev := HealthEvent{Backend: b, Healthy: healthy, Ejected: ejected}
		if !healthy {
			ev.Err = h.checkErr
		}
		switch {
		case healthy != h.healthy && healthy:
			s.log.Info("backend healthy", "lb", s.cfg.Name, "backend", b.Addr)
		case healthy != h.healthy:
			s.log.Warn("backend unhealthy", "lb", s.cfg.Name, "backend", b.Addr, "error", h.checkErr)
		case ejected:
			s.log.Warn("backend ejected after failed requests", "lb", s.cfg.Name, "backend", b.Addr)
		default:
			s.log.Info("backend readmitted", "lb", s.cfg.Name, "backend", b.Addr)
		}
		h.healthy, h.ejected = healthy, ejected
		if healthy {
			h.checkErr = nil
		}
		s.metrics.set(b.Addr, healthy, ejected)
		if s.cfg.OnEvent != nil {
			s.cfg.OnEvent(ev)
		}
	}
	for addr := range s.known {
		if set.lookup(addr) == nil {
			delete(s.known, addr)
			s.metrics.remove(addr)
		}
	}
}

// healthMetrics are a Service's gauges; a nil *healthMetrics records
// nothing.
type healthMetrics struct {
	healthy, ejected *prometheus.GaugeVec
}

func newHealthMetrics(reg prometheus.Registerer, name string) (*healthMetrics, error) {
	labels := prometheus.Labels{"lb": name}
	m := &healthMetrics{
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name:        "pingora_lb_backend_healthy",
			Help:        "1 when active health checks find the backend healthy, else 0.",
			ConstLabels: labels,
		}, []string{"backend"}),
		ejected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name:        "pingora_lb_backend_ejected",
			Help:        "1 while passive health keeps the backend out of selection, else 0.",
			ConstLabels: labels,
		}, []string{"backend"}),
	}
	if err := reg.Register(m.healthy); err != nil {
		return nil, err
	}
	if err := reg.Register(m.ejected); err != nil {
		reg.Unregister(m.healthy)
		return nil, err
	}
	return m, nil
}

func (m *healthMetrics) set(addr string, healthy, ejected bool) {
	if m == nil {
		return
	}
	m.healthy.WithLabelValues(addr).Set(b2f(healthy))
	m.ejected.WithLabelValues(addr).Set(b2f(ejected))
}

func (m *healthMetrics) remove(addr string) {
	if m == nil {
		return
	}
	m.healthy.DeleteLabelValues(addr)
	m.ejected.DeleteLabelValues(addr)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
