package tinyufo

import (
	"math/rand/v2"
	"testing"
)

// TestAdaptsToShift runs Zipf traffic whose popular keys change at once and
// checks the mechanism, not just its effect on a benchmark: no shift is seen
// while popularity holds, one is seen right after the change (the recency
// level goes up), and the level comes back down once popularity holds
// again. (Whether adapting pays is measured in bench/cache: on this small
// cache it costs about 0.2 points of hit ratio, on the 100k-entry one of
// the shifting trace it gains about 2.)
func TestAdaptsToShift(t *testing.T) {
	const (
		keys   = 20_000
		size   = 1_000
		sample = 20_000
	)
	c := New[int, int](size, size)
	// Count every Get, so that the test does not depend on the random sampling.
	c.adapt.sample, c.adapt.mask = sample, 0
	z := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.1, 1, keys-1)
	// phase runs n requests over keys offset..offset+keys and returns the
	// highest recency level seen.
	phase := func(n, offset int) int32 {
		top := int32(0)
		for i := range n {
			k := offset + int(z.Uint64())
			if _, ok := c.Get(k); !ok {
				c.Put(k, k, 1)
			}
			if i%1000 == 0 {
				top = max(top, c.adapt.level.Load())
			}
		}
		return top
	}
	if top := phase(300_000, 0); top != 0 || c.adapt.shifts != 0 {
		t.Fatalf("stable popularity: level reached %d, %d shifts seen", top, c.adapt.shifts)
	}
	top := phase(100_000, keys)
	if c.adapt.shifts == 0 || top == 0 {
		t.Fatalf("after the change: %d shifts seen, level reached %d", c.adapt.shifts, top)
	}
	seen := c.adapt.shifts
	phase(300_000, keys)
	if l := c.adapt.level.Load(); l != 0 {
		t.Fatalf("popularity held for 15 samples: level still %d", l)
	}
	if c.adapt.shifts != seen {
		t.Fatalf("stable popularity after the change: %d more shifts seen", c.adapt.shifts-seen)
	}
}
