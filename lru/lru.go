// Package lru is a sharded, weighted least-recently-used index: each entry
// has a weight (bytes, say) and eviction brings the total weight back under a
// limit, O(1) per admitted, promoted, peeked or evicted entry.
//
// Keys are uint64 hashes; shard = key % shards. Each shard is a hash map over
// an array-backed doubly linked list behind its own RWMutex, so operations on
// different shards never contend. Totals are kept in atomics and, like the
// reference, are best effort while writers race.
package lru

import (
	"math/rand/v2"
	"sync/atomic"
)

// Config sets the shape and limits of an LRU.
type Config struct {
	// Shards is the number of independent shards, at least 1.
	Shards int
	// WeightLimit is the total weight EvictToLimit brings the LRU under.
	WeightLimit int
	// LenWatermark, when positive, also caps the number of entries that
	// EvictToLimit leaves.
	LenWatermark int
	// Capacity is the expected number of entries, for preallocation.
	Capacity int
}

// Entry is an entry taken out of the LRU.
type Entry[T any] struct {
	Key    uint64
	Data   T
	Weight int
}

// LRU is a sharded weighted LRU safe for concurrent use. Create it with New.
type LRU[T any] struct {
	shards       []shard[T]
	weightLimit  int64
	lenWatermark int64

	weight        atomic.Int64
	length        atomic.Int64
	evictedWeight atomic.Uint64
	evictedLen    atomic.Uint64
}

// New returns an empty LRU for c.
func New[T any](c Config) *LRU[T] {
	n := max(c.Shards, 1)
	l := &LRU[T]{
		shards:       make([]shard[T], n),
		weightLimit:  int64(c.WeightLimit),
		lenWatermark: int64(c.LenWatermark),
	}
	per := max(c.Capacity, 0) / n
	for i := range l.shards {
		l.shards[i].init(per)
	}
	return l
}

func (l *LRU[T]) shard(key uint64) *shard[T] { return &l.shards[key%uint64(len(l.shards))] }

// Admit inserts data under key with the given weight (at least 1) as the
// most recently used entry. Admitting an existing key replaces its data and
// weight and promotes it. Admit does not evict; call EvictToLimit.
func (l *LRU[T]) Admit(key uint64, data T, weight int) {
	weight = max(weight, 1)
	s := l.shard(key)
	s.mu.Lock()
	old, existed := s.admit(key, data, weight, true)
	s.mu.Unlock()
	l.weight.Add(int64(weight - old))
	if !existed {
		l.length.Add(1)
	}
}

// InsertTail inserts data under key as the least recently used entry of its
// shard, for rebuilding an order saved from most to least recent. It does
// nothing and returns false if key is present.
func (l *LRU[T]) InsertTail(key uint64, data T, weight int) bool {
	weight = max(weight, 1)
	s := l.shard(key)
	s.mu.Lock()
	if _, ok := s.index[key]; ok {
		s.mu.Unlock()
		return false
	}
	s.admit(key, data, weight, false)
	s.mu.Unlock()
	l.weight.Add(int64(weight))
	l.length.Add(1)
	return true
}

// IncrementWeight adds delta to key's weight and promotes it. It returns the
// new weight, or 0 if key is absent. If maxWeight is positive and the new
// weight exceeds it, the entry is removed (as too heavy to keep), counted as
// evicted, and 0 is returned.
func (l *LRU[T]) IncrementWeight(key uint64, delta, maxWeight int) int {
	s := l.shard(key)
	s.mu.Lock()
	i, ok := s.index[key]
	if !ok {
		s.mu.Unlock()
		return 0
	}
	n := &s.nodes[i]
	w := max(n.weight+delta, 1)
	if maxWeight > 0 && w > maxWeight {
		e := s.remove(i)
		s.mu.Unlock()
		l.taken(e, true)
		return 0
	}
	l.weight.Add(int64(w - n.weight))
	s.weight.Add(int64(w - n.weight))
	n.weight = w
	s.moveToHead(i)
	s.mu.Unlock()
	return w
}

// Promote makes key the most recently used entry of its shard and reports
// whether it is present. It takes a read lock first and the write lock only
// if key is not already at the head.
func (l *LRU[T]) Promote(key uint64) bool { return l.PromoteTopN(key, 1) }

// PromoteTopN promotes key unless it is already among the n most recently
// used entries of its shard, which the check does under a read lock in O(n).
// It reports whether key is present. It saves write locks on hot keys; at
// large n the walk costs more than it saves.
func (l *LRU[T]) PromoteTopN(key uint64, n int) bool {
	s := l.shard(key)
	s.mu.RLock()
	i, ok := s.index[key]
	top := ok && s.inTop(i, n)
	s.mu.RUnlock()
	if !ok || top {
		return ok
	}
	s.mu.Lock()
	i, ok = s.index[key]
	if ok {
		s.moveToHead(i)
	}
	s.mu.Unlock()
	return ok
}

// Peek returns key's data without promoting it.
func (l *LRU[T]) Peek(key uint64) (T, bool) {
	s := l.shard(key)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if i, ok := s.index[key]; ok {
		return s.nodes[i].data, true
	}
	var zero T
	return zero, false
}

// PeekWeight returns key's weight without promoting it.
func (l *LRU[T]) PeekWeight(key uint64) (int, bool) {
	s := l.shard(key)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if i, ok := s.index[key]; ok {
		return s.nodes[i].weight, true
	}
	return 0, false
}

// PeekLRU returns the least recently used entry of shard i without removing
// it.
func (l *LRU[T]) PeekLRU(i int) (Entry[T], bool) {
	s := &l.shards[i]
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.tail == none {
		return Entry[T]{}, false
	}
	n := &s.nodes[s.tail]
	return Entry[T]{Key: n.key, Data: n.data, Weight: n.weight}, true
}

// Remove takes key out of the LRU and returns its entry. A removal is not
// counted as an eviction.
func (l *LRU[T]) Remove(key uint64) (Entry[T], bool) {
	s := l.shard(key)
	s.mu.Lock()
	i, ok := s.index[key]
	if !ok {
		s.mu.Unlock()
		return Entry[T]{}, false
	}
	e := s.remove(i)
	s.mu.Unlock()
	l.taken(e, false)
	return e, true
}

// EvictShard evicts the least recently used entry of shard seed % Shards().
func (l *LRU[T]) EvictShard(seed uint64) (Entry[T], bool) {
	s := &l.shards[seed%uint64(len(l.shards))]
	s.mu.Lock()
	if s.tail == none {
		s.mu.Unlock()
		return Entry[T]{}, false
	}
	e := s.remove(s.tail)
	s.mu.Unlock()
	l.taken(e, true)
	return e, true
}

// EvictToLimit evicts entries until the total weight is at most the weight
// limit and the count at most the len watermark, appending them to dst and
// returning it. Each victim is the least recently used entry of the fuller of
// two randomly chosen shards (power of two choices).
func (l *LRU[T]) EvictToLimit(dst []Entry[T]) []Entry[T] {
	n := uint64(len(l.shards))
	for l.overLimit() {
		a, b := rand.Uint64()%n, rand.Uint64()%n
		if l.shards[b].length.Load() > l.shards[a].length.Load() {
			a = b
		}
		e, ok := l.EvictShard(a)
		for probe := uint64(1); !ok && probe < n; probe++ {
			e, ok = l.EvictShard(a + probe)
		}
		if !ok {
			break
		}
		dst = append(dst, e)
	}
	return dst
}

func (l *LRU[T]) overLimit() bool {
	return l.weight.Load() > l.weightLimit ||
		(l.lenWatermark > 0 && l.length.Load() > l.lenWatermark)
}

// taken updates the totals after e left a shard.
func (l *LRU[T]) taken(e Entry[T], evicted bool) {
	l.weight.Add(-int64(e.Weight))
	l.length.Add(-1)
	if evicted {
		l.evictedWeight.Add(uint64(e.Weight))
		l.evictedLen.Add(1)
	}
}

// Weight returns the total weight of the entries.
func (l *LRU[T]) Weight() int { return int(l.weight.Load()) }

// Len returns the number of entries.
func (l *LRU[T]) Len() int { return int(l.length.Load()) }

// Shards returns the number of shards.
func (l *LRU[T]) Shards() int { return len(l.shards) }

// ShardLen returns the number of entries in shard i.
func (l *LRU[T]) ShardLen(i int) int { return int(l.shards[i].length.Load()) }

// ShardWeight returns the total weight of shard i.
func (l *LRU[T]) ShardWeight(i int) int { return int(l.shards[i].weight.Load()) }

// EvictedWeight returns the total weight evicted so far.
func (l *LRU[T]) EvictedWeight() uint64 { return l.evictedWeight.Load() }

// EvictedLen returns the number of entries evicted so far.
func (l *LRU[T]) EvictedLen() uint64 { return l.evictedLen.Load() }
