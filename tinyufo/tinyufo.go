// Package tinyufo is TinyUFO, a concurrent in-memory cache: S3-FIFO eviction
// (a small and a main FIFO queue) with TinyLFU admission (a count-min sketch
// of key frequencies decides whether a newcomer may displace its victim).
//
// Reads take no lock and do not allocate: a hit loads the entry from a
// lock-free hash table and bumps a 2-bit use counter. Writes are serialized
// by one mutex, which also guards the queues and the sketch.
//
// Like the reference, the cache stores the 64-bit hash of a key, not the key:
// two keys whose hashes collide (a chance of about n²/2⁶⁵ for n keys, under a
// per-cache random seed) share an entry.
package tinyufo

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// Entry state bits, in entry.state.
const (
	usesMask = 3      // use counter, 0 to maxUses
	maxUses  = 3      // as the reference: counts saturate at 3
	inMain   = 1 << 2 // queued in main, else in small
	gone     = 1 << 3 // removed or replaced; dropped when its queue reaches it
)

// Table load limits: the compact mode trades longer probes for less memory.
const (
	fastMaxLoad    = 0.6
	compactMaxLoad = 0.85
)

// entry is one cached value. Its hash, value and weight never change after
// it is published; an update publishes a new entry.
type entry[V any] struct {
	hash   uint64
	next   *entry[V] // queue link, guarded by Cache.mu
	value  V
	weight uint32
	state  atomic.Uint32
}

// setFlags sets and clears state flags, leaving the use counter to readers.
func (e *entry[V]) setFlags(set, clear uint32) {
	for {
		s := e.state.Load()
		if e.state.CompareAndSwap(s, s&^clear|set) {
			return
		}
	}
}

// Item is an entry that left the cache (or never got in), as Put reports it.
type Item[V any] struct {
	// Hash is the key's hash under the cache's seed (see Cache.Hash).
	Hash   uint64
	Value  V
	Weight int
}

// Cache is a TinyUFO cache from K to V with a limit on total weight. It is
// safe for concurrent use. Create it with New or NewCompact.
type Cache[K comparable, V any] struct {
	seed  maphash.Seed
	table atomic.Pointer[table[V]]

	mu          sync.Mutex // guards the fields below
	small, main queue[V]
	sketch      *sketch
	limit       int64
	smallLimit  int64
	maxLoad     float64

	weight atomic.Int64 // copies of the totals, for readers
	length atomic.Int64
}

// New returns a cache that holds up to limit total weight, sized for about
// estimatedSize entries (its table grows past that; its frequency sketch
// does not).
func New[K comparable, V any](limit, estimatedSize int) *Cache[K, V] {
	return newCache[K, V](limit, estimatedSize, estimatedSize, fastMaxLoad)
}

// NewCompact is New for memory over speed: a fuller table (longer probes on
// reads) and, as in the reference, a frequency sketch for estimatedSize/100
// keys, which makes admission less accurate.
func NewCompact[K comparable, V any](limit, estimatedSize int) *Cache[K, V] {
	return newCache[K, V](limit, estimatedSize, estimatedSize/100, compactMaxLoad)
}

func newCache[K comparable, V any](limit, size, sketchSize int, maxLoad float64) *Cache[K, V] {
	c := &Cache[K, V]{
		seed:       maphash.MakeSeed(),
		sketch:     newSketch(sketchSize),
		limit:      int64(limit),
		smallLimit: int64(limit)/10 + 1,
		maxLoad:    maxLoad,
	}
	c.table.Store(newTable(int(float64(max(size, 1))/maxLoad)+1, maxLoad, &entry[V]{}))
	return c
}

// Hash returns key's hash under this cache's seed, as Item.Hash reports it.
func (c *Cache[K, V]) Hash(key K) uint64 { return maphash.Comparable(c.seed, key) }

// Get returns the value cached for key. It takes no lock and does not
// allocate.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	_, e := c.table.Load().find(c.Hash(key))
	if e == nil {
		var zero V
		return zero, false
	}
	if s := e.state.Load(); s&usesMask < maxUses {
		// Best effort: a lost race loses one use, as in the reference.
		e.state.CompareAndSwap(s, s+1)
	}
	return e.value, true
}

// Contains reports whether key is cached, without counting a use.
func (c *Cache[K, V]) Contains(key K) bool {
	_, e := c.table.Load().find(c.Hash(key))
	return e != nil
}

// Put caches value under key with the given weight (at least 1), evicting
// as needed to stay within the limit. A new key may be refused by admission:
// then the cache is unchanged but for its frequency sketch.
func (c *Cache[K, V]) Put(key K, value V, weight int) {
	c.put(nil, c.Hash(key), value, weight, false)
}

// PutAppend is Put that appends what left the cache to dst and returns it:
// evicted entries, the replaced value of key, or the refused newcomer.
func (c *Cache[K, V]) PutAppend(dst []Item[V], key K, value V, weight int) []Item[V] {
	return c.put(dst, c.Hash(key), value, weight, false)
}

// ForcePut is Put without the admission test: a new key always gets in
// (unless heavier than the limit). Hit ratios under skewed load are a little
// lower than with Put.
func (c *Cache[K, V]) ForcePut(key K, value V, weight int) {
	c.put(nil, c.Hash(key), value, weight, true)
}

// ForcePutAppend is ForcePut that appends what left the cache to dst.
func (c *Cache[K, V]) ForcePutAppend(dst []Item[V], key K, value V, weight int) []Item[V] {
	return c.put(dst, c.Hash(key), value, weight, true)
}

// Remove takes key out of the cache and returns its value.
func (c *Cache[K, V]) Remove(key K) (V, bool) {
	h := c.Hash(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.table.Load()
	i, e := t.find(h)
	if e == nil {
		var zero V
		return zero, false
	}
	t.delete(i)
	c.drop(e)
	c.publishTotals()
	return e.value, true
}

// Len returns the number of cached entries.
func (c *Cache[K, V]) Len() int { return int(c.length.Load()) }

// Weight returns the total weight of the cached entries.
func (c *Cache[K, V]) Weight() int { return int(c.weight.Load()) }

// Limit returns the weight limit.
func (c *Cache[K, V]) Limit() int { return int(c.limit) }
