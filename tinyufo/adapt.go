package tinyufo

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// Adaptation to shifting popularity. When the keys in favour change, what
// the cache learnt holds stale keys in it: the sketch remembers their old
// counts (so admission keeps them over newcomers and sends them back to
// main), and main keeps them for as long as small holds its share, which
// can be for ever. Measured on bench/cache (Zipf 1.0 whose popular keys move
// every 500k requests), no frequency-based setting recovers as fast as LRU;
// a cache that turns to recency at the change, with a sketch that starts
// afresh, does, and turning back to frequency once the cache has been
// refilled gains a little more.
//
// The adapter watches which entries hits land on, over samples of
// adaptSample requests: while popularity holds, nearly all hits are on
// entries cached before the last two samples; right after a shift they are
// on entries cached since (the new favourites), while hits fall too. A scan,
// by contrast, adds misses but moves no hit, so it never looks like a shift.
// (A fall of the hit ratio alone, this adapter's first signal, is also what
// a scan looks like; it had to be slow and caught one shift in five there.)
// On a shift the adapter
//   - clears the sketch,
//   - has every shard reset its entries' use counters, so that main's hand
//     evicts, in one round, every entry not used since,
//   - raises the recency level to maxLevel: small's share of the limit goes
//     from a tenth to recencyShare (evictions then take from main, the old
//     favourites, first), an entry leaves small for main after a single
//     use, as in a plain FIFO with reinsertion, and admission lets a
//     newcomer in on a tie with its victim.
//
// The level holds for holdMisses × the expected entry count misses (by then
// the cache has been refilled), then falls by one per decayMisses × that
// count, back to the frequency setting. Measured on bench/cache, hits on the
// shifting trace with a cache of 10 % / 1 % / 0.1 % of the keys: 74.1–74.2
// / 64.0 / 50.3 %, against 69.97 / 61.9 / 50.2 without adapting (LRU: 74.00
// / 58.2 / 40.2); no Zipf or scan trace there sets it off.
const (
	adaptSample  = 4096 // requests per sample
	sampleShift  = 3    // Gets counted: one in 1<<sampleShift, at random
	stripes      = 8    // counters the counted Gets spread over
	minHits      = 128  // counted hits a sample needs to be judged
	shiftDrop    = 0.15 // fall of old entries' share of hits that marks a shift
	hitDrop      = 0.9  // ... while the hit ratio falls below this fraction
	quietSamples = 3    // samples after a shift in which no other is seen
	maxLevel     = 8    // recency levels
	recencyShare = 0.95 // small's share of the limit at maxLevel
	holdMisses   = 0.8  // × expected entries: misses at maxLevel after a shift
	decayMisses  = 0.1  // × expected entries: misses per level after that
	youngSamples = 2    // an entry cached in the last this many samples is young
)

// Outcomes of a Get, as counted.
const (
	missed   = iota
	youngHit // a hit on an entry cached in the last youngSamples samples
	oldHit
)

// adapter detects shifts in popularity from the age of the entries hit and
// sets the recency level that the shards follow; one serves all shards of a
// cache.
type adapter struct {
	stripes [stripes]struct {
		n [3]atomic.Int64 // counted Gets by outcome
		_ [40]byte        // a cache line each
	}
	level atomic.Int32  // recency level, 0 to maxLevel
	epoch atomic.Uint32 // shifts seen; a shard resets uses when it changes
	gen   atomic.Uint32 // samples judged, mod 1<<(32-genShift); entries keep it
	mask  uint32        // a Get is counted when its draw has none of these bits
	scale int64         // Gets per counted Get: mask+1
	// sample is counted Gets per sample; hold and decay are holdMisses and
	// decayMisses in misses.
	sample, hold, decay int64

	mu        sync.Mutex // guards the fields below; held by one writer at a time
	share     [2]float64 // old entries' share of hits in the last two samples
	hitRatio  [2]float64 // hit ratio of the last two samples
	quiet     int        // samples left in which no shift is seen
	misses    int64      // misses since the last shift, while level > 0
	shifts    int        // shifts seen, for tests
	lastShare float64    // old entries' share of hits in the last sample, for tests
}

// newAdapter returns an adapter that judges samples of sample requests, for
// a cache of about entries entries.
func newAdapter(sample, entries int) *adapter {
	entries = max(entries, 1)
	return &adapter{
		sample: max(int64(sample)>>sampleShift, 1),
		mask:   1<<sampleShift - 1,
		scale:  1 << sampleShift,
		hold:   int64(holdMisses * float64(entries)),
		decay:  max(int64(decayMisses*float64(entries)), 1),
	}
}

// count records a Get's outcome one time in 1<<sampleShift, drawn at random
// (the runtime's per-thread generator, a few nanoseconds), on one of the
// stripes, also drawn at random: an exact count on one counter would be a
// cache line that every reader writes. Sampling by key hash instead would be
// cheaper still, but a Zipf trace's few hottest keys then swing the sample.
func (a *adapter) count(outcome uint32) {
	r := rand.Uint32()
	if r&a.mask != 0 {
		return
	}
	a.stripes[r>>29%stripes].n[outcome].Add(1)
}

// countHit is count for a hit on an entry in state s: young or old, by the
// sample in which it was cached.
func (a *adapter) countHit(s uint32) {
	r := rand.Uint32()
	if r&a.mask != 0 {
		return
	}
	outcome := oldHit
	if (a.gen.Load()-s>>genShift)&(1<<(32-genShift)-1) < youngSamples {
		outcome = youngHit
	}
	a.stripes[r>>29%stripes].n[outcome].Add(1)
}

// counted returns the Gets counted so far.
func (a *adapter) counted() (n int64) {
	for i := range a.stripes {
		for j := range a.stripes[i].n {
			n += a.stripes[i].n[j].Load()
		}
	}
	return n
}

// maybeDecide closes a sample once enough Gets were counted: on a shift it
// clears sk and sets the recency level to maxLevel, else it lowers the level
// as misses accrue. Of writers racing, one decides.
func (a *adapter) maybeDecide(sk *sketch) {
	// Gets spread evenly over the stripes, so one stripe tells whether a
	// sample may be complete: 3 loads, where a full count is 24.
	s := &a.stripes[0].n
	if (s[0].Load()+s[1].Load()+s[2].Load())*stripes < a.sample ||
		a.counted() < a.sample || !a.mu.TryLock() {
		return
	}
	defer a.mu.Unlock()
	var n [3]int64
	for i := range a.stripes {
		for j := range n {
			c := &a.stripes[i].n[j]
			v := c.Load()
			c.Add(-v)
			n[j] += v
		}
	}
	if n[missed]+n[youngHit]+n[oldHit] < a.sample {
		// Not yet: give the counts back.
		for j := range n {
			a.stripes[0].n[j].Add(n[j])
		}
		return
	}
	a.gen.Add(1)
	a.decide(sk, n)
}

// decide judges a sample of n counted Gets by outcome.
func (a *adapter) decide(sk *sketch, n [3]int64) {
	hits := n[youngHit] + n[oldHit]
	ratio := float64(hits) / float64(hits+n[missed])
	share := 0.0
	if hits > 0 {
		share = float64(n[oldHit]) / float64(hits)
	}
	a.lastShare = share
	// A sample with too few hits (all of a scan, say) is neither judged nor
	// a reference for the next ones.
	if hits >= minHits {
		refShare := max(a.share[0], a.share[1])
		refRatio := max(a.hitRatio[0], a.hitRatio[1])
		a.share = [2]float64{share, a.share[0]}
		a.hitRatio = [2]float64{ratio, a.hitRatio[0]}
		if a.quiet > 0 {
			a.quiet--
		} else if refShare-share >= shiftDrop && 1-share >= 2*(1-refShare) &&
			ratio < hitDrop*refRatio {
			// Old entries lost a good part of the hits, young ones'
			// part at least doubled, and hits fell: the popular keys
			// changed.
			a.shifts++
			a.quiet = quietSamples
			a.misses = 0
			sk.clear()
			a.epoch.Add(1)
			a.level.Store(maxLevel)
			return
		}
	}
	l := a.level.Load()
	if l == 0 {
		return
	}
	a.misses += n[missed] * a.scale
	if a.misses < a.hold {
		return
	}
	if want := int32(maxLevel - (a.misses-a.hold)/a.decay); want < l {
		a.level.Store(max(want, 0))
	}
}
