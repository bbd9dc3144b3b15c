package tinyufo

import (
	"math/bits"
	"sync/atomic"
)

// table is an open-addressing hash table from key hash to entry with linear
// probing, read without locks. Each slot holds a tag made from the key's
// hash beside the entry pointer, so that a probe passes over other keys'
// slots without reading their entries: on this cache's working sets every
// entry read is a cache miss, and a miss would otherwise read one entry per
// occupied slot of its probe sequence.
//
// Writers (one at a time, under their shard's lock) publish with atomic
// stores: an insert stores the entry, then the tag; a removal leaves a
// tombstone tag so that probes go on past it. A table is never resized in
// place: the shard builds a bigger one and swaps it in, and readers still
// on the old one see a consistent, slightly stale, view.
type table[V any] struct {
	slots []slot[V]
	n     uint64 // len(slots)

	// Writers only, on a cache line apart from what every reader loads
	// (64 bytes on: the table is not allocated line-aligned): an insert or
	// a removal changes them.
	_          [64]byte
	live, dead int
	maxUsed    int // live+dead allowed before a rebuild
}

// slot is one table slot: tag 0 is empty, tombTag a removed entry, and any
// other tag that of the entry in e (tagOf its hash).
type slot[V any] struct {
	tag atomic.Uint64
	e   atomic.Pointer[entry[V]]
}

const tombTag = 2

// tagOf returns the tag of hash h: odd, so never empty or tombTag. Two
// hashes that differ only in the lowest bit share a tag; a probe that
// matches a tag compares the entry's hash.
func tagOf(h uint64) uint64 { return h | 1 }

func newTable[V any](slots int, maxLoad float64) *table[V] {
	slots = max(slots, 8)
	return &table[V]{
		slots:   make([]slot[V], slots),
		n:       uint64(slots),
		maxUsed: int(float64(slots) * maxLoad),
	}
}

// home maps h onto [0, n) by multiply-shift, so n need not be a power of two.
func (t *table[V]) home(h uint64) uint64 {
	hi, _ := bits.Mul64(h, t.n)
	return hi
}

// find returns the slot index and entry for h, or -1 and nil.
func (t *table[V]) find(h uint64) (int, *entry[V]) {
	want := tagOf(h)
	i := t.home(h)
	for {
		s := &t.slots[i]
		switch s.tag.Load() {
		case 0:
			return -1, nil
		case want:
			// A racing removal may have cleared e since the tag load.
			if e := s.e.Load(); e != nil && e.hash == h {
				return int(i), e
			}
		}
		if i++; i == t.n {
			i = 0
		}
	}
}

// full reports whether one more insert needs a rebuild first.
func (t *table[V]) full() bool { return t.live+t.dead >= t.maxUsed }

// insert adds e, whose hash must be absent, in the first free or tombstone
// slot of its probe sequence.
func (t *table[V]) insert(e *entry[V]) {
	i := t.home(e.hash)
	for {
		s := &t.slots[i]
		switch s.tag.Load() {
		case 0:
			t.live++
			s.e.Store(e)
			s.tag.Store(tagOf(e.hash))
			return
		case tombTag:
			t.live++
			t.dead--
			s.e.Store(e)
			s.tag.Store(tagOf(e.hash))
			return
		}
		if i++; i == t.n {
			i = 0
		}
	}
}

// replace puts e in slot i, which holds an entry of the same hash.
func (t *table[V]) replace(i int, e *entry[V]) { t.slots[i].e.Store(e) }

// deleteEntry removes e if it is in the table. Its probe reads tags and
// slot pointers only, so it touches no other entry.
func (t *table[V]) deleteEntry(e *entry[V]) {
	want := tagOf(e.hash)
	i := t.home(e.hash)
	for {
		s := &t.slots[i]
		switch s.tag.Load() {
		case 0:
			return
		case want:
			if s.e.Load() == e {
				t.delete(int(i))
				return
			}
		}
		if i++; i == t.n {
			i = 0
		}
	}
}

// delete leaves a tombstone in slot i. The tag goes first: a reader that
// saw the old tag and then finds e nil passes on.
func (t *table[V]) delete(i int) {
	t.slots[i].tag.Store(tombTag)
	t.slots[i].e.Store(nil)
	t.live--
	t.dead++
}

// rebuilt returns a table without tombstones holding t's entries, with
// room for at least want live entries under maxLoad.
func (t *table[V]) rebuilt(want int, maxLoad float64) *table[V] {
	nt := newTable[V](int(float64(max(want, t.live+1))/maxLoad)+1, maxLoad)
	for i := range t.slots {
		if e := t.slots[i].e.Load(); e != nil {
			nt.insert(e)
		}
	}
	return nt
}
