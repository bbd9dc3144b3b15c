package limits

import (
	"sync/atomic"
	"time"
)

// Default sketch shape of a Rate, as in the reference.
const (
	rateHashes = 4
	rateSlots  = 1024
)

// Rate estimates per-key event rates over fixed intervals with two sketches
// that take turns: one counts the current interval, the other keeps the
// previous complete one. Memory is fixed by the sketch shape (2 × 4 × 1024
// counters, 64 KiB, by default) whatever the number of keys.
//
// Turning over is lazy: the first call after an interval boundary clears the
// older sketch and makes it current. A Rate is safe for concurrent use;
// counts racing with a turnover may land in either interval.
type Rate struct {
	sketch   [2]*Estimator
	interval time.Duration
	start    time.Time
	// now returns the time since start; tests replace it.
	now func() time.Duration

	lastReset atomic.Int64 // start of the current interval, ns since start
	current   atomic.Int32 // index into sketch of the current interval
}

// RateComponents is what a Rate knows about one key, for RateWith.
type RateComponents struct {
	// PrevSamples is the count in the previous complete interval.
	PrevSamples int64
	// CurrSamples is the count so far in the current interval.
	CurrSamples int64
	// Interval is the Rate's interval.
	Interval time.Duration
	// CurrentIntervalFraction is how much of the current interval has
	// passed, in [0, 1).
	CurrentIntervalFraction float64
}

// NewRate returns a Rate with the given interval over 4 × 1024 sketches.
// It panics if interval is not positive.
func NewRate(interval time.Duration) *Rate {
	return NewRateWithEstimator(interval, rateHashes, rateSlots)
}

// NewRateWithEstimator is NewRate with a chosen sketch shape (see
// NewEstimator): more slots lower the overcount from colliding keys.
func NewRateWithEstimator(interval time.Duration, hashes, slots int) *Rate {
	if interval <= 0 {
		panic("limits: non-positive Rate interval")
	}
	r := &Rate{
		sketch:   [2]*Estimator{NewEstimator(hashes, slots), NewEstimator(hashes, slots)},
		interval: interval,
		start:    time.Now(),
	}
	r.sketch[1].seed = r.sketch[0].seed
	r.now = func() time.Duration { return time.Since(r.start) }
	return r
}

// Interval returns the Rate's interval.
func (r *Rate) Interval() time.Duration { return r.interval }

// Hash returns the hash of key for the *Hash methods.
func (r *Rate) Hash(key string) uint64 { return r.sketch[0].Hash(key) }

// HashBytes returns the hash of a []byte key for the *Hash methods.
func (r *Rate) HashBytes(key []byte) uint64 { return r.sketch[0].HashBytes(key) }

// Observe adds n events for key and returns key's count in the current
// interval, n included. It does not allocate.
func (r *Rate) Observe(key string, n int64) int64 { return r.ObserveHash(r.Hash(key), n) }

// ObserveBytes is Observe for a []byte key.
func (r *Rate) ObserveBytes(key []byte, n int64) int64 {
	return r.ObserveHash(r.HashBytes(key), n)
}

// ObserveHash is Observe for a key hashed with Hash or HashBytes.
func (r *Rate) ObserveHash(h uint64, n int64) int64 {
	r.turnover()
	return r.sketch[r.current.Load()].IncrHash(h, n)
}

// Rate returns key's events per second in the previous complete interval,
// or 0 if no interval has completed in the last two.
func (r *Rate) Rate(key string) float64 {
	c := r.components(r.Hash(key))
	return float64(c.PrevSamples) / c.Interval.Seconds()
}

// RateWith returns f applied to what the Rate knows about key, for formulas
// of one's own, such as ProportionalRate.
func (r *Rate) RateWith(key string, f func(RateComponents) float64) float64 {
	return f(r.components(r.Hash(key)))
}

// RateWithHash is RateWith for a key hashed with Hash or HashBytes.
func (r *Rate) RateWithHash(h uint64, f func(RateComponents) float64) float64 {
	return f(r.components(h))
}

// ProportionalRate estimates events per second over the sliding interval
// that ends now: the previous interval's count weighted by the part of it
// still inside the window, plus the current count. It is the approximation
// from Cloudflare's "counting things" post.
func ProportionalRate(c RateComponents) float64 {
	prev := float64(c.PrevSamples) * (1 - c.CurrentIntervalFraction)
	return (prev + float64(c.CurrSamples)) / c.Interval.Seconds()
}

func (r *Rate) components(h uint64) RateComponents {
	past := r.turnover()
	cur := r.current.Load()
	return RateComponents{
		PrevSamples:             r.sketch[1-cur].GetHash(h),
		CurrSamples:             r.sketch[cur].GetHash(h),
		Interval:                r.interval,
		CurrentIntervalFraction: float64(past) / float64(r.interval),
	}
}

// turnover starts a new interval if the current one has ended and returns
// the time passed since the start of the (new) current interval. Only the
// caller that wins the compare-and-swap clears a sketch. Interval starts stay
// on the grid start + k×interval, so intervals do not drift with call times.
func (r *Rate) turnover() time.Duration {
	now := r.now()
	last := r.lastReset.Load()
	past := time.Duration(int64(now) - last)
	if past < r.interval {
		return past
	}
	next := last + int64(past/r.interval)*int64(r.interval)
	if !r.lastReset.CompareAndSwap(last, next) {
		// Another caller turned over, maybe to a later interval than ours.
		return max(0, time.Duration(int64(now)-r.lastReset.Load()))
	}
	cur := r.current.Load()
	if past >= 2*r.interval {
		// Nothing counted in the interval just ended: both are empty.
		r.sketch[cur].Reset()
		r.sketch[1-cur].Reset()
		return time.Duration(int64(now) - next)
	}
	r.sketch[1-cur].Reset()
	r.current.Store(1 - cur)
	return time.Duration(int64(now) - next)
}
