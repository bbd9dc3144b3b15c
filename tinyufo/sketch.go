package tinyufo

import (
	"math/bits"
	"math/rand/v2"
	"sync/atomic"
)

// sketch is a count-min sketch of 4-bit saturating counters, four per key,
// all four in one 64-byte block so that one cache line serves a key. It
// spends one uint64 (16 counters) per expected key. After 10 × size
// increments every counter is halved, so that old popularity fades.
//
// It is lock-free: readers count uses, writers of every shard count puts,
// and whoever first sees a full period ages it. An increment racing with
// aging may be halved or not: counts are estimates anyway.
type sketch struct {
	table     []atomic.Uint64 // blocks of 8 words
	blockMask uint64
	period    int64
	_         [64]byte // additions is written by every reader that counts
	additions atomic.Int64
	_         [56]byte
}

func newSketch(size int) *sketch {
	words := 1 << bits.Len(uint(max(size, 8)-1))
	return &sketch{
		table:     make([]atomic.Uint64, words),
		blockMask: uint64(words/8 - 1),
		period:    10 * int64(max(size, 8)),
	}
}

// slots returns, for each of the 4 rows, the word index and the bit shift of
// h's counter. Row i reads word 2i or 2i+1 of h's block.
func (s *sketch) slots(h uint64) (words [4]uint64, shifts [4]uint64) {
	block := (h & s.blockMask) * 8
	x := h * 0x9e3779b97f4a7c15
	x ^= x >> 32
	for i := range uint64(4) {
		b := x >> (i * 8)
		words[i] = block + 2*i + b&1
		shifts[i] = (b >> 1 & 15) * 4
	}
	return words, shifts
}

// touch loads a word of h's block, to start its cache miss early: a caller
// issues it before other misses of its own so that the processor waits for
// them together.
func (s *sketch) touch(h uint64) { s.table[(h&s.blockMask)*8].Load() }

// estimate returns h's frequency estimate, 0 to 15.
func (s *sketch) estimate(h uint64) uint8 {
	words, shifts := s.slots(h)
	m := uint64(15)
	for i := range 4 {
		m = min(m, s.table[words[i]].Load()>>shifts[i]&15)
	}
	return uint8(m)
}

// increment counts one occurrence of h and returns its new estimate, and
// whether the sketch may be due for aging (see maybeAge). It raises only the
// counters at the minimum (conservative update), which keeps keys that share
// counters with popular ones from looking popular.
func (s *sketch) increment(h uint64) (freq uint8, due bool) {
	words, shifts := s.slots(h)
	var c [4]uint64
	m := uint64(15)
	for i := range 4 {
		c[i] = s.table[words[i]].Load() >> shifts[i] & 15
		m = min(m, c[i])
	}
	if m == 15 {
		return 15, false
	}
	for i := range 4 {
		if c[i] != m {
			continue
		}
		w := &s.table[words[i]]
		for {
			old := w.Load()
			if old>>shifts[i]&15 == 15 || w.CompareAndSwap(old, old+1<<shifts[i]) {
				break
			}
		}
	}
	// Count additions 16 at a time, one increment in 16 at random: an exact
	// count would be one more cache line that every core writes. Only the
	// increment that counts may find a period complete, so others need
	// not read the count either.
	if rand.Uint32()&15 == 0 {
		due = s.additions.Add(16) >= s.period
	}
	return uint8(m + 1), due
}

// maybeAge halves every counter once a period's worth of increments has
// been counted. Of callers racing, one wins the period and ages.
func (s *sketch) maybeAge() {
	a := s.additions.Load()
	if a < s.period || !s.additions.CompareAndSwap(a, a-s.period/2) {
		return
	}
	s.age()
}

// age halves every counter.
func (s *sketch) age() {
	for i := range s.table {
		w := &s.table[i]
		for {
			old := w.Load()
			if w.CompareAndSwap(old, old>>1&0x7777777777777777) {
				break
			}
		}
	}
}

// clear zeroes every counter and starts a new aging period, for a sketch
// whose counts no longer tell what is popular.
func (s *sketch) clear() {
	for i := range s.table {
		s.table[i].Store(0)
	}
	s.additions.Store(0)
}
