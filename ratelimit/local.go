package ratelimit

import (
	"context"
	"math"
	"time"

	"github.com/pingora-go/pingora/limits"
)

// Local is a Limiter for one proxy instance: at most limit requests per key in any sliding
// window (see NewLocal), estimated with limits.Rate (two fixed windows, the previous one weighted
// by how much of it the sliding window still covers). Memory is fixed whatever the number of
// keys; keys that collide in every row of the count-min sketch share a count, so an
// estimate may run high, never low. Refused requests are not counted, so a client that keeps
// sending over its limit gets through again at the limit's pace.
//
// Local is safe for concurrent use; an allowed request costs no allocation.
type Local struct {
	rate  *limits.Rate
	limit int64
}

// NewLocal returns a Local allowing limit requests per key per window. It panics if limit or
// window is not positive.
func NewLocal(limit int64, window time.Duration) *Local {
	if limit <= 0 {
		panic("ratelimit: non-positive limit")
	}
	return &Local{rate: limits.NewRate(window), limit: limit}
}

// Allow counts one request for key and decides.
func (l *Local) Allow(_ context.Context, key []byte) Decision {
	h := l.rate.HashBytes(key)
	l.rate.ObserveHash(h, 1)
	var c limits.RateComponents
	l.rate.RateWithHash(h, func(rc limits.RateComponents) float64 { c = rc; return 0 })
	d := decide(l.limit, c)
	if !d.Allowed {
		l.rate.ObserveHash(h, -1)
	}
	return d
}

// decide turns the counts of a key, this request included in CurrSamples, into a Decision.
func decide(limit int64, c limits.RateComponents) Decision {
	frac := min(max(c.CurrentIntervalFraction, 0), 1)
	prev := float64(c.PrevSamples) * (1 - frac)
	est := prev + float64(c.CurrSamples)
	left := c.Interval - time.Duration(frac*float64(c.Interval))
	d := Decision{Limit: limit, Window: c.Interval}
	if est <= float64(limit) {
		d.Allowed = true
		d.Remaining = limit - int64(math.Ceil(est))
		d.Reset = left
		if c.CurrSamples > 0 {
			// The current window's requests weigh until the end of the next one.
			d.Reset += c.Interval
		}
		return d
	}
	d.RetryAfter = retryAfter(limit, c.PrevSamples, c.CurrSamples-1, frac, c.Interval)
	d.Reset = left + c.Interval
	return d
}

// retryAfter returns how long until prev×(1−f) + curr + 1 ≤ limit, with prev and curr the
// previous and current windows' counts at fraction frac of the current window, assuming no
// more requests pass meanwhile.
func retryAfter(limit, prev, curr int64, frac float64, interval time.Duration) time.Duration {
	room := float64(limit - 1)
	var at float64 // in windows from the current window's start
	switch {
	case float64(curr) <= room && prev > 0:
		// The previous window's weight fades within the current one.
		at = 1 - (room-float64(curr))/float64(prev)
	case float64(curr) <= room:
		at = frac
	default:
		// Only once the current window is the previous one, and fades.
		at = 1 + (1 - room/float64(curr))
	}
	return time.Duration(max(at-frac, 0) * float64(interval))
}
