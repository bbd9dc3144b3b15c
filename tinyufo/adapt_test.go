package tinyufo

import (
	"math/rand/v2"
	"testing"
)

// adaptCache returns a one-shard cache of size entries whose adapter counts
// every Get (so that the test does not depend on the random sampling) and
// judges samples of sample requests.
func adaptCache(size, sample int) *Cache[int, int] {
	c := New[int, int](size, size)
	c.adapt.mask, c.adapt.scale, c.adapt.sample = 0, 1, int64(sample)
	return c
}

// request is one request of the traces here: a Get, and a Put on a miss.
func request(c *Cache[int, int], k int) {
	if _, ok := c.Get(k); !ok {
		c.Put(k, k, 1)
	}
}

// TestAdaptsToShift runs Zipf traffic whose popular keys change at once and
// checks the mechanism, not just its effect on a benchmark: while popularity
// holds no shift is seen, most hits are on old entries, and small keeps a
// tenth of the limit; right after the change a shift is seen, the sketch
// forgets the old keys, their uses are reset, and small grows toward
// recencyShare of the limit; once the cache has been refilled the level
// falls back to 0, small shrinks back to its share, and no other shift is
// seen while popularity holds.
func TestAdaptsToShift(t *testing.T) {
	// A cache of a tenth of the keys: the change leaves nothing of use in
	// it. (In much smaller caches the new favourites reach main within a
	// sample, and recency gains little there.)
	const (
		keys   = 50_000
		size   = 5_000
		sample = 2_048
	)
	c := adaptCache(size, sample)
	sh := &c.shards[0]
	base := sh.smallLimit
	z := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.01, 1, keys-1)
	next := func(offset int) int { return offset + int(z.Uint64()) }

	// Stable popularity: hits land in main, no shift.
	for i := range 300_000 {
		request(c, next(0))
		// Small holds everything until the cache is full, then its share.
		if i >= 150_000 && i%1000 == 0 && sh.small.weight > base+1 {
			t.Fatalf("stable popularity: small holds %d, its share is %d", sh.small.weight, base)
		}
	}
	if c.adapt.shifts != 0 || c.adapt.level.Load() != 0 {
		t.Fatalf("stable popularity: %d shifts seen, level %d", c.adapt.shifts, c.adapt.level.Load())
	}
	if c.adapt.lastShare < 0.9 {
		t.Fatalf("stable popularity: old entries have %.2f of the hits, want most", c.adapt.lastShare)
	}
	// The hottest old keys, in the cache and with uses.
	hot := []int{0, 1, 2}
	for _, k := range hot {
		if _, e := sh.table.Load().find(c.Hash(k)); e == nil || e.state.Load()&usesMask == 0 {
			t.Fatalf("hot key %d not cached with uses before the change", k)
		}
	}

	// The popular keys change: a shift is seen within two samples.
	n := 0
	for c.adapt.shifts == 0 && n < 2*sample {
		request(c, next(keys))
		n++
	}
	if c.adapt.shifts != 1 || c.adapt.level.Load() != maxLevel {
		t.Fatalf("%d requests after the change: %d shifts seen, level %d", n, c.adapt.shifts, c.adapt.level.Load())
	}
	for _, k := range hot {
		if f := c.sketch.estimate(c.Hash(k)); f != 0 {
			t.Errorf("old hot key %d: sketch estimate %d after the shift, want 0", k, f)
		}
	}
	// The next eviction resets uses; old keys are not read again.
	request(c, -1)
	for _, k := range hot {
		if _, e := sh.table.Load().find(c.Hash(k)); e != nil && e.state.Load()&usesMask != 0 {
			t.Errorf("old hot key %d still has uses after the shift", k)
		}
	}
	// Small grows toward recency.
	grown := int64(0)
	for range 10_000 {
		request(c, next(keys))
		grown = max(grown, sh.small.weight)
	}
	if want := size / 2; grown < int64(want) {
		t.Fatalf("after the shift small reached %d, want over %d (its share at level %d is %d)",
			grown, want, c.adapt.level.Load(), sh.smallShare(c.adapt.level.Load()))
	}

	// Popularity holds again: back to frequency, and no other shift.
	for range 100_000 {
		request(c, next(keys))
	}
	if l := c.adapt.level.Load(); l != 0 {
		t.Fatalf("popularity held for 100k requests: level still %d", l)
	}
	if c.adapt.shifts != 1 {
		t.Fatalf("stable popularity after the change: %d more shifts seen", c.adapt.shifts-1)
	}
	if sh.small.weight > base+1 {
		t.Fatalf("back at level 0: small holds %d, its share is %d", sh.small.weight, base)
	}
}

// TestScanIsNoShift runs Zipf traffic polluted by scans of keys never seen
// before: the hit ratio falls by half or more at every scan, but hits stay
// on old entries, so no shift is seen.
func TestScanIsNoShift(t *testing.T) {
	const (
		keys = 50_000
		size = 5_000
	)
	c := adaptCache(size, 2_048)
	z := rand.NewZipf(rand.New(rand.NewPCG(3, 4)), 1.01, 1, keys-1)
	fresh := keys
	for range 30 {
		for range 10_000 {
			request(c, int(z.Uint64()))
		}
		// Scan requests 2 in 3 for a while: every sample then has hits
		// enough to be judged, and half or fewer of them.
		for i := range 6_000 {
			if i%3 == 0 {
				request(c, int(z.Uint64()))
			} else {
				request(c, fresh)
				fresh++
			}
		}
	}
	if c.adapt.shifts != 0 || c.adapt.level.Load() != 0 {
		t.Fatalf("scans: %d shifts seen, level %d", c.adapt.shifts, c.adapt.level.Load())
	}
}

// TestSmallShareBounds checks small's share at every recency level: from a
// tenth of the shard's limit to recencyShare of it, never down, never past
// the limit, also for limits too small to split.
func TestSmallShareBounds(t *testing.T) {
	for _, limit := range []int{1, 2, 3, 10, 1000, 1 << 40} {
		c := New[int, int](limit, 1)
		sh := &c.shards[0]
		prev := int64(0)
		for l := int32(-1); l <= maxLevel+1; l++ {
			s := sh.smallShare(l)
			if s < sh.smallLimit || s < prev {
				t.Fatalf("limit %d, level %d: share %d, below %d or the lower level's %d", limit, l, s, sh.smallLimit, prev)
			}
			if top := max(int64(recencyShare*float64(limit)), sh.smallLimit); s > top {
				t.Fatalf("limit %d, level %d: share %d over %d", limit, l, s, top)
			}
			prev = s
		}
		if limit >= 1000 && sh.smallShare(maxLevel) != int64(recencyShare*float64(limit)) {
			t.Fatalf("limit %d: share %d at maxLevel, want %v of it", limit, sh.smallShare(maxLevel), recencyShare)
		}
	}
}

// TestRecencyLevelKeepsLimit runs weighted random traffic at every recency
// level: the cache stays within its limit and its counts stay true.
func TestRecencyLevelKeepsLimit(t *testing.T) {
	for l := int32(0); l <= maxLevel; l += 2 {
		c := New[int, int](500, 100)
		r := rand.New(rand.NewPCG(uint64(l), 9))
		for i := range 50_000 {
			if i%5_000 == 0 {
				c.adapt.level.Store(l)
			}
			k := int(r.Uint32() % 3_000)
			if _, ok := c.Get(k); !ok {
				c.Put(k, k, 1+int(r.Uint32()%7))
			}
			if w := c.Weight(); w > c.Limit() {
				t.Fatalf("level %d: weight %d over the limit %d", l, w, c.Limit())
			}
		}
		sh := &c.shards[0]
		if got := sh.small.weight + sh.main.weight; got != int64(c.Weight()) {
			t.Fatalf("level %d: queues weigh %d, Weight says %d", l, got, c.Weight())
		}
	}
}

// TestHitAge checks how a hit is counted: on an entry cached in the current
// or the previous sample it is young, else old, also when the sample count
// wraps around the bits that entries keep.
func TestHitAge(t *testing.T) {
	const genMask = 1<<(32-genShift) - 1
	tests := []struct {
		gen, cached uint32 // sample counts now and at caching
		young       bool
	}{
		{5, 5, true},
		{5, 4, true},
		{5, 3, false},
		{5, 0, false},
		{0, genMask, true}, // cached just before the count wrapped
		{1, genMask, false},
		{genMask, 0, false}, // "cached in the future": a stale count
	}
	for _, tt := range tests {
		a := newAdapter(adaptSample, 100)
		a.mask = 0
		a.gen.Store(tt.gen)
		a.countHit(tt.cached<<genShift | inMain | 2)
		young, old := a.stripes[0].n[youngHit].Load(), a.stripes[0].n[oldHit].Load()
		for i := 1; i < stripes; i++ {
			young += a.stripes[i].n[youngHit].Load()
			old += a.stripes[i].n[oldHit].Load()
		}
		if want := map[bool][2]int64{true: {1, 0}, false: {0, 1}}[tt.young]; [2]int64{young, old} != want {
			t.Errorf("now %d, cached %d: counted %d young, %d old; want young %v", tt.gen, tt.cached, young, old, tt.young)
		}
	}
	// An entry put now is stamped with the current count.
	c := New[int, int](10, 10)
	c.adapt.gen.Store(77)
	c.Put(1, 1, 1)
	_, e := c.shards[0].table.Load().find(c.Hash(1))
	if got := e.state.Load() >> genShift; got != 77 {
		t.Fatalf("entry cached at sample 77 is stamped %d", got)
	}
	// An update keeps the stamp: the key was cached then.
	c.adapt.gen.Store(80)
	c.Put(1, 2, 1)
	_, e = c.shards[0].table.Load().find(c.Hash(1))
	if got := e.state.Load() >> genShift; got != 77 || e.value != 2 {
		t.Fatalf("updated entry: value %d, stamped %d, want 2 and 77", e.value, got)
	}
}

// TestTieAdmission checks that a newcomer as frequent as its victim is
// refused, unless the cache is turned to recency.
func TestTieAdmission(t *testing.T) {
	c := New[int, int](1, 1)
	c.Put(1, 1, 1)
	c.Put(2, 2, 1) // seen once, as its victim
	if !c.Contains(1) || c.Contains(2) {
		t.Fatalf("tie at level 0: contains 1 %v, 2 %v; want the victim kept", c.Contains(1), c.Contains(2))
	}
	c.adapt.level.Store(maxLevel)
	c.Put(3, 3, 1)
	if c.Contains(1) || !c.Contains(3) {
		t.Fatalf("tie at recency: contains 1 %v, 3 %v; want the newcomer in", c.Contains(1), c.Contains(3))
	}
}

// TestDecide feeds samples to the adapter's judgement directly: steady
// samples see no shift, samples with too few hits (a scan) are skipped
// rather than taken as the reference, a sample whose hits moved to young
// entries and fell is a shift, the samples right after it see none, and the
// level then falls with misses to 0.
func TestDecide(t *testing.T) {
	a := newAdapter(adaptSample, 1000) // hold 800 misses, then 100 a level
	sk := newSketch(64)
	steady := [3]int64{missed: 100, youngHit: 20, oldHit: 380}
	scan := [3]int64{missed: 500}
	shifted := [3]int64{missed: 300, youngHit: 150, oldHit: 50}
	for range 5 {
		a.decide(sk, steady)
	}
	for range 3 {
		a.decide(sk, scan)
	}
	if a.shifts != 0 {
		t.Fatalf("steady and scan samples: %d shifts seen", a.shifts)
	}
	sk.increment(42)
	a.decide(sk, shifted)
	if a.shifts != 1 || a.level.Load() != maxLevel || a.epoch.Load() != 1 || sk.estimate(42) != 0 {
		t.Fatalf("shifted sample: %d shifts, level %d, epoch %d, sketch estimate %d",
			a.shifts, a.level.Load(), a.epoch.Load(), sk.estimate(42))
	}
	// Misses: 300 × 8 a sample, counted from the shift on.
	a.decide(sk, shifted) // quiet; 2400 misses, past the hold: 16 levels down
	if a.shifts != 1 {
		t.Fatalf("the sample right after a shift: %d shifts seen", a.shifts)
	}
	if l := a.level.Load(); l != 0 {
		t.Fatalf("2400 misses after the shift: level %d, want 0", l)
	}

	// Slower: one level per 100 misses after the first 800.
	b := newAdapter(adaptSample, 1000)
	for range 3 {
		b.decide(sk, steady)
	}
	b.decide(sk, shifted)
	slow := [3]int64{missed: 25, youngHit: 100, oldHit: 300} // 200 misses a sample
	var levels []int32
	for range 9 {
		b.decide(sk, slow)
		levels = append(levels, b.level.Load())
	}
	want := []int32{8, 8, 8, 8, 6, 4, 2, 0, 0}
	for i := range want {
		if levels[i] != want[i] {
			t.Fatalf("levels %v, want %v", levels, want)
		}
	}
}
