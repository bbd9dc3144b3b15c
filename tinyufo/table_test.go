package tinyufo

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestTableTags checks the probe's tags: hashes that differ only in the
// lowest bit share a tag and must still be told apart, removals leave
// tombstones that probes pass and inserts reuse, and a rebuild keeps every
// live entry.
func TestTableTags(t *testing.T) {
	tb := newTable[int](16, 0.85)
	var es []*entry[int]
	for i := range 6 {
		// Pairs of hashes equal but for bit 0, all with the same home.
		h := uint64(7)<<60 | uint64(i/2)<<8 | uint64(i%2)
		e := &entry[int]{hash: h, value: i}
		tb.insert(e)
		es = append(es, e)
	}
	check := func(tb *table[int], gone map[int]bool) {
		t.Helper()
		for i, e := range es {
			_, got := tb.find(e.hash)
			if gone[i] {
				if got != nil {
					t.Fatalf("entry %d found after removal", i)
				}
				continue
			}
			if got != e {
				t.Fatalf("entry %d: found %v, want its own", i, got)
			}
		}
	}
	check(tb, nil)
	tb.deleteEntry(es[0])
	tb.deleteEntry(es[3])
	tb.deleteEntry(es[3]) // not there any more: no change
	if tb.live != 4 || tb.dead != 2 {
		t.Fatalf("live %d dead %d, want 4 and 2", tb.live, tb.dead)
	}
	check(tb, map[int]bool{0: true, 3: true})
	// An insert takes the first tombstone of its probe sequence.
	tb.insert(es[0])
	if tb.live != 5 || tb.dead != 1 {
		t.Fatalf("live %d dead %d, want 5 and 1", tb.live, tb.dead)
	}
	check(tb, map[int]bool{3: true})
	// replace swaps the entry in a slot, tag unchanged.
	i, _ := tb.find(es[1].hash)
	ne := &entry[int]{hash: es[1].hash, value: 100}
	tb.replace(i, ne)
	if _, got := tb.find(es[1].hash); got != ne {
		t.Fatal("replace: the new entry is not found")
	}
	es[1] = ne
	nt := tb.rebuilt(10, 0.6)
	if nt.live != 5 || nt.dead != 0 {
		t.Fatalf("rebuilt: live %d dead %d, want 5 and 0", nt.live, nt.dead)
	}
	check(nt, map[int]bool{3: true})
}

// TestTableConcurrentReaders has readers probe while a writer removes and
// reinserts keys whose tags collide: a reader finds either nothing or the
// entry of its own hash, never another key's.
func TestTableConcurrentReaders(t *testing.T) {
	tb := newTable[uint64](64, 0.85)
	const keys = 32
	hashOf := func(k int) uint64 { return uint64(k/2)<<40 | uint64(k%2) }
	for k := range keys {
		tb.insert(&entry[uint64]{hash: hashOf(k), value: hashOf(k)})
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !stop.Load(); n++ {
				h := hashOf(n % keys)
				if _, e := tb.find(h); e != nil && (e.hash != h || e.value != h) {
					bad.Add(1)
				}
			}
		}()
	}
	for range 20_000 {
		for k := range keys {
			h := hashOf(k)
			i, e := tb.find(h)
			if k%3 == 0 {
				tb.replace(i, &entry[uint64]{hash: h, value: h})
				continue
			}
			tb.delete(i)
			tb.insert(&entry[uint64]{hash: e.hash, value: e.value})
		}
	}
	stop.Store(true)
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Fatalf("%d probes returned another key's entry", n)
	}
}
