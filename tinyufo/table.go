package tinyufo

import (
	"math/bits"
	"sync/atomic"
)

// table is an open-addressing hash table from key hash to entry with linear
// probing, read without locks. Writers (one at a time, under their shard's
// lock) publish entries with atomic stores; a removed entry leaves the
// tombstone behind so that probes pass over it. A table is never resized in
// place: the Cache builds a bigger one and swaps it in, and readers still on
// the old one see a consistent, slightly stale, view.
type table[V any] struct {
	slots []atomic.Pointer[entry[V]]
	n     uint64 // len(slots)
	tomb  *entry[V]

	// Writers only.
	live, dead int
	maxUsed    int // live+dead allowed before a rebuild
}

func newTable[V any](slots int, maxLoad float64, tomb *entry[V]) *table[V] {
	slots = max(slots, 8)
	return &table[V]{
		slots:   make([]atomic.Pointer[entry[V]], slots),
		n:       uint64(slots),
		tomb:    tomb,
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
	i := t.home(h)
	for {
		e := t.slots[i].Load()
		if e == nil {
			return -1, nil
		}
		if e.hash == h && e != t.tomb {
			return int(i), e
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
		switch old := t.slots[i].Load(); old {
		case nil:
			t.slots[i].Store(e)
			t.live++
			return
		case t.tomb:
			t.slots[i].Store(e)
			t.live++
			t.dead--
			return
		}
		if i++; i == t.n {
			i = 0
		}
	}
}

// replace puts e in slot i, which holds an entry of the same hash.
func (t *table[V]) replace(i int, e *entry[V]) { t.slots[i].Store(e) }

// deleteEntry removes e if it is in the table. Its probe compares slot
// pointers only, so it touches no other entry.
func (t *table[V]) deleteEntry(e *entry[V]) {
	i := t.home(e.hash)
	for {
		switch t.slots[i].Load() {
		case nil:
			return
		case e:
			t.delete(int(i))
			return
		}
		if i++; i == t.n {
			i = 0
		}
	}
}

// delete leaves a tombstone in slot i.
func (t *table[V]) delete(i int) {
	t.slots[i].Store(t.tomb)
	t.live--
	t.dead++
}

// rebuilt returns a table without tombstones holding t's entries, with
// room for at least want live entries under maxLoad.
func (t *table[V]) rebuilt(want int, maxLoad float64) *table[V] {
	nt := newTable(int(float64(max(want, t.live+1))/maxLoad)+1, maxLoad, t.tomb)
	for i := range t.slots {
		if e := t.slots[i].Load(); e != nil && e != t.tomb {
			nt.insert(e)
		}
	}
	return nt
}
