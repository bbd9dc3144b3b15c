package limits

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable time since start, safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Duration      { return time.Duration(c.ns.Load()) }
func (c *fakeClock) set(d time.Duration)     { c.ns.Store(int64(d)) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func newTestRate(interval time.Duration, hashes, slots int) (*Rate, *fakeClock) {
	r := NewRateWithEstimator(interval, hashes, slots)
	c := &fakeClock{}
	r.now = c.now
	return r, c
}

func keys(n int) []string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = fmt.Sprintf("client-%d", i)
	}
	return ks
}

func TestEstimatorCounts(t *testing.T) {
	tests := []struct {
		name   string
		keys   int
		each   int64
		hashes int
		slots  int
	}{
		{"one key", 1, 1000, 4, 1024},
		{"few keys", 10, 7, 4, 1024},
		{"crowded", 5000, 3, 4, 1024},
		{"one row", 300, 2, 1, 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEstimator(tt.hashes, tt.slots)
			ks := keys(tt.keys)
			for _, k := range ks {
				for range tt.each {
					e.Incr(k, 1)
				}
			}
			total := float64(int64(tt.keys) * tt.each)
			var over float64
			for _, k := range ks {
				got := e.Get(k)
				if got < tt.each {
					t.Fatalf("Get(%q) = %d, undercounts %d", k, got, tt.each)
				}
				over += float64(got - tt.each)
			}
			// One row alone overcounts by total/slots on average (1.5× leaves
			// room for chance); the minimum
			// of several rows by less.
			if mean, bound := over/float64(tt.keys), 1.5*total/float64(tt.slots); mean > bound {
				t.Errorf("mean overcount %.2f > bound %.2f", mean, bound)
			}
		})
	}
}

func TestEstimatorIncrDecrReset(t *testing.T) {
	e := NewEstimator(3, 100)
	if got := e.Incr("a", 5); got != 5 {
		t.Fatalf("Incr = %d, want 5", got)
	}
	if got := e.IncrHash(e.HashBytes([]byte("a")), 2); got != 7 {
		t.Fatalf("IncrHash of []byte key = %d, want 7", got)
	}
	e.Decr("a", 3)
	if got := e.Get("a"); got != 4 {
		t.Fatalf("Get after Decr = %d, want 4", got)
	}
	e.Reset()
	if got := e.Get("a"); got != 0 {
		t.Fatalf("Get after Reset = %d, want 0", got)
	}
	if n := len(e.cells); n != 3*128 {
		t.Fatalf("cells = %d, want 3 rows × 128 slots", n)
	}
}

func TestRateIntervals(t *testing.T) {
	const interval = time.Second
	r, clock := newTestRate(interval, 4, 1024)
	steps := []struct {
		at       time.Duration
		observe  int64
		wantCurr int64   // Observe's result
		wantRate float64 // Rate after the step
	}{
		{0, 10, 10, 0},
		{500 * time.Millisecond, 5, 15, 0},
		{1100 * time.Millisecond, 2, 2, 15},
		{1999 * time.Millisecond, 1, 3, 15},
		{2000 * time.Millisecond, 4, 4, 3},
		// More than two intervals idle: both windows are empty.
		{5500 * time.Millisecond, 1, 1, 0},
		{6000 * time.Millisecond, 0, 0, 1},
	}
	for _, s := range steps {
		clock.set(s.at)
		if got := r.Observe("k", s.observe); got != s.wantCurr {
			t.Fatalf("at %v: Observe = %d, want %d", s.at, got, s.wantCurr)
		}
		if got := r.Rate("k"); got != s.wantRate {
			t.Fatalf("at %v: Rate = %v, want %v", s.at, got, s.wantRate)
		}
	}
	clock.set(9 * time.Second)
	if got := r.Rate("k"); got != 0 {
		t.Fatalf("Rate after idle = %v, want 0", got)
	}
}

// TestRateAccuracy feeds known traffic (a steady key among noisy ones) and
// checks the estimate is within the sketch's bound: never below the truth
// and above it by at most the overcount that a crowded sketch allows.
func TestRateAccuracy(t *testing.T) {
	tests := []struct {
		name      string
		perSecond int64 // steady key's true rate
		noiseKeys int   // other keys, each once per tick
		interval  time.Duration
	}{
		{"quiet", 1000, 0, time.Second},
		{"noisy", 1000, 2000, time.Second},
		{"short interval", 400, 500, 100 * time.Millisecond},
	}
	const tick = 10 * time.Millisecond
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, clock := newTestRate(tt.interval, 4, 1024)
			noise := keys(tt.noiseKeys)
			perTick := tt.perSecond * int64(tick) / int64(time.Second)
			ticksPerInterval := int(tt.interval / tick)
			// Traffic observed per interval by all keys together bounds the
			// overcount: one row overcounts by total/slots on average, the
			// min of 4 rows stays far below 4× that.
			total := float64(perTick+int64(tt.noiseKeys)) * float64(ticksPerInterval)
			bound := 4 * total / 1024 / tt.interval.Seconds()
			for i := range 5 * ticksPerInterval {
				clock.set(time.Duration(i) * tick)
				r.Observe("steady", perTick)
				for _, k := range noise {
					r.Observe(k, 1)
				}
				if i < ticksPerInterval {
					continue
				}
				truth := float64(tt.perSecond)
				got := r.Rate("steady")
				if got < truth-1e-9 || got > truth+bound {
					t.Fatalf("tick %d: Rate = %.1f, want in [%.1f, %.1f]", i, got, truth, truth+bound)
				}
				// The sliding estimate misses at most one tick's worth of the
				// current interval's traffic.
				slide := r.RateWith("steady", ProportionalRate)
				slack := float64(perTick) / tt.interval.Seconds()
				if slide < truth-slack-1e-9 || slide > truth+bound+slack {
					t.Fatalf("tick %d: ProportionalRate = %.1f, want %.1f ± %.1f (+%.1f)", i, slide, truth, slack, bound)
				}
			}
		})
	}
}

func TestRateBytesKeyMatchesString(t *testing.T) {
	r, _ := newTestRate(time.Second, 4, 1024)
	r.Observe("abc", 3)
	if got := r.ObserveBytes([]byte("abc"), 1); got != 4 {
		t.Fatalf("ObserveBytes = %d, want 4", got)
	}
}

func TestRateConcurrent(t *testing.T) {
	r, clock := newTestRate(time.Second, 4, 1024)
	const workers, each = 4, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			key := []byte(fmt.Sprintf("w%d", w))
			for range each {
				r.Observe("shared", 1)
				r.ObserveBytes(key, 1)
				r.Rate("shared")
			}
		})
	}
	wg.Wait()
	if got := r.sketch[r.current.Load()].Get("shared"); got != workers*each {
		t.Fatalf("shared count = %d, want %d", got, workers*each)
	}
	// Turnovers racing with observers must not lose the CAS discipline.
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if w == 0 && i%100 == 0 {
					clock.advance(300 * time.Millisecond)
				}
				r.Observe("shared", 1)
				r.Rate("shared")
			}
		})
	}
	wg.Wait()
	if got := r.Rate("shared"); got < 0 || math.IsNaN(got) {
		t.Fatalf("Rate = %v after concurrent turnovers", got)
	}
}

func TestInflightGuard(t *testing.T) {
	f := NewInflight()
	g1, n := f.Incr("a", 1)
	if n != 1 {
		t.Fatalf("first Incr count = %d, want 1", n)
	}
	g2, n := f.IncrBytes([]byte("a"), 2)
	if n != 3 || g2.Get() != 3 {
		t.Fatalf("second Incr count = %d, guard %d; want 3", n, g2.Get())
	}
	g1.Release()
	g1.Release()
	if got := f.Get("a"); got != 2 {
		t.Fatalf("after double Release of g1: %d, want 2", got)
	}
	if g1.Get() != 0 {
		t.Fatalf("released guard Get = %d, want 0", g1.Get())
	}
	g2.Release()
	if got := f.Get("a"); got != 0 {
		t.Fatalf("after all releases: %d, want 0", got)
	}
}

func TestInflightConcurrent(t *testing.T) {
	f := NewInflight()
	var wg sync.WaitGroup
	var peak atomic.Int64
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				g, n := f.Incr("k", 1)
				if n > peak.Load() {
					peak.Store(n)
				}
				g.Release()
			}
		})
	}
	wg.Wait()
	if got := f.Get("k"); got != 0 {
		t.Fatalf("count after all releases = %d, want 0", got)
	}
	if p := peak.Load(); p < 1 || p > 8 {
		t.Fatalf("peak = %d, want within [1, 8]", p)
	}
}

func TestHotPathAllocs(t *testing.T) {
	r := NewRate(time.Second)
	f := NewInflight()
	bkey := []byte("client-b")
	allocs := testing.AllocsPerRun(100, func() {
		r.Observe("client-a", 1)
		r.ObserveBytes(bkey, 1)
		r.Rate("client-a")
		g, _ := f.Incr("client-a", 1)
		g.Release()
	})
	if allocs != 0 {
		t.Fatalf("allocs per request = %v, want 0", allocs)
	}
}
