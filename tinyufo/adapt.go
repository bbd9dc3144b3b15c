package tinyufo

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// Adaptation to shifting popularity. When the keys in favour change, two
// things hold stale ones in the cache: the sketch still remembers their old
// counts (so admission keeps them over newcomers), and main keeps them for
// as long as small holds its share, which can be for ever. The adapter
// watches the hit ratio over samples of adaptSample requests; when it falls
// sharply, it ages the sketch at once and raises a recency level that makes
// each eviction also advance main's clock hand, so that entries no longer
// used leave main. The level falls by one each sample after.
//
// Measured on bench/cache (shifting Zipf 1.0, cache 10% of the keys): 69.97
// to 71.7-72.5 % hits (it varies with how many of the 5 shifts are caught);
// no other trace there triggers it.
const (
	adaptSample = 200_000 // requests per sample
	sampleShift = 3       // Gets counted: one in 1<<sampleShift, at random
	stripes     = 8       // counters the counted Gets spread over
	// A sample's hit ratio must fall below the better of the two before it
	// by this fraction of it, and by dropSigmas standard errors, to count
	// as a shift: Zipf and scan-polluted traces never do.
	dropFraction = 0.1
	dropSigmas   = 5
	shiftAgings  = 2 // sketch halvings on a shift
	maxLevel     = 8 // samples of recency after a shift
)

// adapter detects shifts in popularity from the hit ratio; one serves all
// shards of a cache.
type adapter struct {
	stripes [stripes]struct {
		hits, misses atomic.Int64
		_            [48]byte // a cache line each
	}
	level  atomic.Int32 // recency level, 0 to maxLevel
	mask   uint32       // a Get is counted when its draw has none of these bits
	sample int64        // counted requests per sample

	mu          sync.Mutex // guards the fields below; held by one writer at a time
	prev, prev2 float64    // hit ratios of the last two samples, NaN if none
	shifts      int        // shifts detected, for tests
}

func newAdapter(sample int) *adapter {
	return &adapter{sample: int64(sample) >> sampleShift, mask: 1<<sampleShift - 1, prev: math.NaN(), prev2: math.NaN()}
}

// count records a Get's outcome one time in 1<<sampleShift, drawn at random
// (the runtime's per-thread generator, a few nanoseconds), on one of the
// stripes, also drawn at random: an exact count on one counter would be a
// cache line that every reader writes. Sampling by key hash instead would be
// cheaper still, but a Zipf trace's few hottest keys then swing the sample's
// hit ratio away from the cache's.
func (a *adapter) count(hit bool) {
	r := rand.Uint32()
	if r&a.mask != 0 {
		return
	}
	s := &a.stripes[r>>29%stripes]
	if hit {
		s.hits.Add(1)
	} else {
		s.misses.Add(1)
	}
}

// counted returns the hits and misses counted so far.
func (a *adapter) counted() (h, m int64) {
	for i := range a.stripes {
		h += a.stripes[i].hits.Load()
		m += a.stripes[i].misses.Load()
	}
	return h, m
}

// maybeDecide closes a sample once enough requests were counted: on a
// shift it ages sk and sets the recency level to its maximum, else it
// lowers the level by one. Of writers racing, one decides.
func (a *adapter) maybeDecide(sk *sketch) {
	if h, m := a.counted(); h+m < a.sample || !a.mu.TryLock() {
		return
	}
	defer a.mu.Unlock()
	var h, m int64
	for i := range a.stripes {
		s := &a.stripes[i]
		sh, sm := s.hits.Load(), s.misses.Load()
		s.hits.Add(-sh)
		s.misses.Add(-sm)
		h, m = h+sh, m+sm
	}
	if h+m < a.sample {
		// Not yet: give the counts back.
		a.stripes[0].hits.Add(h)
		a.stripes[0].misses.Add(m)
		return
	}
	r := float64(h) / float64(h+m)
	ref := max(a.prev, a.prev2) // NaN (no sample yet) compares false below
	sigma := math.Sqrt(ref * (1 - ref) / float64(h+m))
	if ref-r > max(ref*dropFraction, dropSigmas*sigma) {
		a.shifts++
		a.level.Store(maxLevel)
		for range shiftAgings {
			sk.age()
		}
	} else if l := a.level.Load(); l > 0 {
		a.level.Store(l - 1)
	}
	// After a shift the ratio before it stays a reference for one more
	// sample: if the next is still far below, the sketch ages again.
	a.prev2, a.prev = a.prev, r
}
