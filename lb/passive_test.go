package lb

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newPassive(t *testing.T, n int, cfg PassiveConfig) (*passive, *Backends) {
	t.Helper()
	b := mustBackends(t, equal(n))
	return &passive{cfg: cfg, backends: b, wake: func() {}, ejections: make(map[string]*ejection)}, b
}

func TestPassiveEjection(t *testing.T) {
	// Results are reported against backend 0 of a set of four unless the
	// step names another; after each step the test compares which
	// backends are ejected.
	type step struct {
		backend int
		ok      bool
		ejected string // ejected backends, as "0100"
	}
	tests := []struct {
		name  string
		cfg   PassiveConfig
		steps []step
	}{
		{"off", PassiveConfig{}, []step{{0, false, "0000"}, {0, false, "0000"}}},
		{"ejects after three failures", PassiveConfig{Failures: 3}, []step{
			{0, false, "0000"}, {0, false, "0000"}, {0, false, "1000"}, {0, false, "1000"},
		}},
		{"a success resets the count", PassiveConfig{Failures: 2}, []step{
			{0, false, "0000"}, {0, true, "0000"}, {0, false, "0000"}, {0, false, "1000"},
		}},
		{"counts are per backend", PassiveConfig{Failures: 2}, []step{
			{0, false, "0000"}, {1, false, "0000"}, {1, false, "0100"}, {0, false, "1100"},
		}},
		{"at most half the backends by default", PassiveConfig{Failures: 1}, []step{
			{0, false, "1000"}, {1, false, "1100"}, {2, false, "1100"}, {3, false, "1100"},
		}},
		{"one backend may always be ejected", PassiveConfig{Failures: 1, MaxEjectedPercent: 10}, []step{
			{2, false, "0010"}, {1, false, "0010"},
		}},
		{"unknown address ignored", PassiveConfig{Failures: 1}, []step{{-1, false, "0000"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, b := newPassive(t, 4, tt.cfg)
			all := b.All()
			for i, st := range tt.steps {
				addr := "10.9.9.9:80"
				if st.backend >= 0 {
					addr = all[st.backend].Addr
				}
				p.report(addr, st.ok)
				got := ""
				for _, s := range b.Status() {
					got += map[bool]string{true: "1", false: "0"}[s.Ejected]
				}
				if got != st.ejected {
					t.Fatalf("step %d: ejected %s, want %s", i, got, st.ejected)
				}
			}
		})
	}
}

func TestPassiveBackoff(t *testing.T) {
	p := &passive{cfg: PassiveConfig{Backoff: time.Second, MaxBackoff: 10 * time.Second}}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		if got := p.backoff(i + 1); got != w {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := (&passive{}).backoff(1); got != DefaultEjectBackoff {
		t.Errorf("default backoff = %v", got)
	}
}

func TestPassiveSettle(t *testing.T) {
	p, b := newPassive(t, 2, PassiveConfig{Failures: 1, Backoff: time.Second, MaxBackoff: 8 * time.Second})
	addr := b.All()[0].Addr
	t0 := time.Unix(1000, 0)
	st := b.load().lookup(addr)
	if !p.eject(addr, st, t0) {
		t.Fatal("not ejected")
	}
	steps := []struct {
		at        time.Duration // since t0
		wantDue   bool
		probeOK   bool
		wantReady bool
		wantNext  time.Duration // since t0; 0: none
	}{
		{at: 500 * time.Millisecond, wantDue: false, wantNext: time.Second},
		// The probe fails: the next back-off doubles.
		{at: time.Second, wantDue: true, probeOK: false, wantNext: 3 * time.Second},
		{at: 3 * time.Second, wantDue: true, probeOK: true, wantReady: true},
	}
	for i, s := range steps {
		now := t0.Add(s.at)
		addrs, next := p.due(now)
		if (len(addrs) == 1) != s.wantDue {
			t.Fatalf("step %d: due = %v", i, addrs)
		}
		if s.wantDue {
			p.settle(addr, s.probeOK, now)
			addrs, next = p.due(now)
			if len(addrs) != 0 {
				t.Fatalf("step %d: still due after settle", i)
			}
		}
		if got := b.Ready(addr); got != s.wantReady {
			t.Fatalf("step %d: ready = %v", i, got)
		}
		if (s.wantNext == 0) != next.IsZero() || (!next.IsZero() && next.Sub(t0) != s.wantNext) {
			t.Fatalf("step %d: next = %v, want t0+%v", i, next.Sub(t0), s.wantNext)
		}
	}
	// Ejected again soon after readmission: the streak goes on (third
	// ejection, 4 s). Much later: a new streak (1 s).
	readmitted := t0.Add(3 * time.Second)
	p.eject(addr, st, readmitted.Add(time.Second))
	if _, next := p.due(readmitted.Add(time.Second)); next.Sub(readmitted) != 5*time.Second {
		t.Fatalf("repeat ejection ends %v after readmission, want 5s", next.Sub(readmitted))
	}
	p.settle(addr, true, readmitted.Add(5*time.Second))
	later := readmitted.Add(time.Hour)
	p.eject(addr, st, later)
	if _, next := p.due(later); next.Sub(later) != time.Second {
		t.Fatalf("new streak back-off %v, want 1s", next.Sub(later))
	}
	// Leaving the set forgets the ejection.
	if _, err := b.Update(equal(1)[:0]); err != nil {
		t.Fatal(err)
	}
	p.prune()
	if addrs, next := p.due(later.Add(time.Hour)); len(addrs) != 0 || !next.IsZero() {
		t.Fatalf("pruned ejection still due: %v %v", addrs, next)
	}
}

// TestServicePassive runs ejection, a failed probe and recovery through a
// running Service, and checks the events.
func TestServicePassive(t *testing.T) {
	l := newLB(t, RoundRobin, equal(2))
	bad := l.Backends().All()[0].Addr
	var probeOK atomic.Bool
	var probes atomic.Int32
	events := make(chan HealthEvent, 16)
	s, err := NewService(l, ServiceConfig{
		Passive: PassiveConfig{Failures: 2, Backoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond},
		Health: HealthConfig{
			// Active rounds far apart: only the ejection probes run.
			Interval: time.Hour,
			Checker: CheckerFunc(func(_ context.Context, b *Backend) error {
				if b.Addr != bad {
					return nil
				}
				probes.Add(1)
				return okErr(probeOK.Load())
			}),
		},
		OnEvent: func(ev HealthEvent) { events <- ev },
	})
	if err != nil {
		t.Fatal(err)
	}
	// The first round finds bad down; make it healthy first.
	probeOK.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })
	defer func() {
		cancel()
		wg.Wait()
	}()
	<-s.Ready()
	probeOK.Store(false)
	probes.Store(0)

	s.ReportResult(bad, false)
	s.ReportResult(bad, false)
	ev := waitEvent(t, events)
	if ev.Backend.Addr != bad || !ev.Ejected || !ev.Healthy {
		t.Fatalf("event %+v, want %s ejected", ev, bad)
	}
	if _, ok := l.SelectWith(nil, 4, func(b *Backend, ready bool) bool { return ready && b.Addr == bad }); ok {
		t.Fatal("ejected backend selected")
	}
	// Probes fail a few times; then the backend recovers.
	eventually(t, "three failed probes", func() bool { return probes.Load() >= 3 })
	probeOK.Store(true)
	ev = waitEvent(t, events)
	if ev.Backend.Addr != bad || ev.Ejected {
		t.Fatalf("event %+v, want %s readmitted", ev, bad)
	}
	if !l.Backends().Ready(bad) {
		t.Fatal("readmitted backend not ready")
	}
}

func waitEvent(t *testing.T, events <-chan HealthEvent) HealthEvent {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no health event")
		return HealthEvent{}
	}
}

func BenchmarkReportResult(b *testing.B) {
	l := newLB(b, RoundRobin, equal(8))
	s, err := NewService(l, ServiceConfig{Passive: PassiveConfig{Failures: 5}})
	if err != nil {
		b.Fatal(err)
	}
	addrs := make([]string, 8)
	for i, be := range l.Backends().All() {
		addrs[i] = be.Addr
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			s.ReportResult(addrs[i%len(addrs)], true)
			i++
		}
	})
}
