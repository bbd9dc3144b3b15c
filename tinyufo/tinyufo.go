// Package tinyufo is TinyUFO, a concurrent in-memory cache: S3-FIFO eviction
// (a small and a main FIFO queue) with TinyLFU admission (a count-min sketch
// of key frequencies decides whether a newcomer may displace its victim).
//
// Reads take no lock and do not allocate: a hit loads the entry from a
// lock-free hash table and bumps a 2-bit use counter (and, when the counter
// moved, the sketch). Writes take the lock of one of up to 16 shards, each a
// TinyUFO of its own (table, queues and a share of the weight limit) under a
// shared frequency sketch; small caches have a single shard. Two kinds of
// Put take no lock: an update of a cached key whose value is one machine
// word (8 bytes without pointers, or a single pointer) and whose weight
// stays, stored in place atomically; and the refusal of a key seen for the
// first time by a full shard.
//
// Beyond the reference: uses counted by reads also feed the sketch, and the
// sketch stands in for S3-FIFO's ghost queue (an entry whose frequency
// reaches 3 goes to, or stays in, main). Both raise hit ratios by 1 to 3
// points on Zipf traces; see bench/cache. And the cache notices when the
// popular keys change (hits move from entries cached a while ago to ones
// cached since, and fall): it then clears the sketch and the use counters
// and turns to recency, with small taking most of the limit, until it has
// been refilled; see adapter.
//
// Like the reference, the cache stores the 64-bit hash of a key, not the key:
// two keys whose hashes collide (a chance of about n²/2⁶⁵ for n keys, under a
// per-cache random seed) share an entry. Keys of a 64-bit integer type are
// hashed by a bijection (SplitMix64's finalizer of the key xor a per-cache
// random word), so they never collide; it also takes 1.7 ns where the
// generic hash takes 7 (about 6 % of a Get's time in profiles of the
// bench/cache read traces).
package tinyufo

import (
	"hash/maphash"
	"math"
	"math/rand/v2"
	"reflect"
	"sync/atomic"
	"unsafe"
)

// Entry state bits, in entry.state.
const (
	usesMask = 3      // use counter, 0 to maxUses
	maxUses  = 3      // as the reference: counts saturate at 3
	inMain   = 1 << 2 // queued in main, else in small
	gone     = 1 << 3 // removed or replaced; dropped when its queue reaches it
	genShift = 4      // the bits above: the adapter's sample count at insertion
)

// mainFreq is the sketch frequency from which an entry belongs in main: a
// newcomer that reaches it skips small, and a small entry that reaches it
// moves to main when small is trimmed. Measured on the bench/cache traces:
// 2 admits too much noise, 4 reacts too slowly.
const mainFreq = 3

// Shards: one per shardEntries expected entries, at most maxShards. Small
// caches keep one, so their eviction order is exactly TinyUFO's.
const (
	shardEntries = 8192
	maxShards    = 16
)

// Table load limits: the compact mode trades longer probes for less memory.
const (
	fastMaxLoad    = 0.6
	compactMaxLoad = 0.85
)

// entry is one cached value. Its hash never changes after it is published.
// An update of a one-word value stores the value in place (see valueKind):
// without the shard's lock when the weight stays, else under it, where the
// weight is set too. Any other update publishes a new entry.
type entry[V any] struct {
	hash   uint64
	next   *entry[V] // queue link, guarded by its shard's mu
	value  V         // keep after two 8-byte fields: load and store need it aligned
	weight atomic.Uint32
	state  atomic.Uint32
}

// addUse counts a use, up to maxUses.
func (e *entry[V]) addUse() {
	for {
		s := e.state.Load()
		if s&usesMask == maxUses || e.state.CompareAndSwap(s, s+1) {
			return
		}
	}
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
	seed maphash.Seed
	// intKey: K is a 64-bit integer type, hashed by mixWord with key64.
	intKey bool
	key64  uint64
	shards []shard[V]
	sketch *sketch
	adapt  *adapter
	limit  int
	vk     valueKind
}

// New returns a cache that holds up to limit total weight, sized for about
// estimatedSize entries (its tables grow past that; its frequency sketch
// does not). The cache has one shard per 8192 estimated entries, rounded
// down to a power of two, at most 16; each holds an equal share of limit,
// and no entry may weigh more than a share (see MaxWeight) or 4 GiB.
func New[K comparable, V any](limit, estimatedSize int) *Cache[K, V] {
	return newCache[K, V](limit, estimatedSize, estimatedSize, fastMaxLoad)
}

// NewCompact is New for memory over speed: fuller tables (longer probes on
// reads) and, as in the reference, a frequency sketch for estimatedSize/100
// keys, which makes admission less accurate.
func NewCompact[K comparable, V any](limit, estimatedSize int) *Cache[K, V] {
	return newCache[K, V](limit, estimatedSize, estimatedSize/100, compactMaxLoad)
}

func newCache[K comparable, V any](limit, size, sketchSize int, maxLoad float64) *Cache[K, V] {
	n := 1
	for n < maxShards && size/(2*n) >= shardEntries {
		n *= 2
	}
	c := &Cache[K, V]{
		key64:  rand.Uint64(),
		seed:   maphash.MakeSeed(),
		intKey: isIntKey[K](),
		shards: make([]shard[V], n),
		sketch: newSketch(sketchSize),
		adapt:  newAdapter(adaptSample, size),
		limit:  limit,
		vk:     valueKindOf[V](),
	}
	for i := range c.shards {
		share := limit / n
		if i < limit%n {
			share++
		}
		c.shards[i].init(int64(share), size/n, maxLoad, c.sketch, c.adapt, c.vk)
	}
	return c
}

// shard returns h's shard. Tables index by the high bits of h, shards by the
// low ones.
func (c *Cache[K, V]) shard(h uint64) *shard[V] {
	return &c.shards[h&uint64(len(c.shards)-1)]
}

// Hash returns key's hash under this cache's seed, as Item.Hash reports it:
// maphash.Comparable, or for a 64-bit integer type a seeded bijection.
func (c *Cache[K, V]) Hash(key K) uint64 {
	if c.intKey {
		return mixWord(*(*uint64)(unsafe.Pointer(&key)) ^ c.key64)
	}
	return maphash.Comparable(c.seed, key)
}

// Get returns the value cached for key. It takes no lock and does not
// allocate.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	h := c.Hash(key)
	_, e := c.shard(h).table.Load().find(h)
	if e == nil {
		c.adapt.count(missed)
		var zero V
		return zero, false
	}
	s := e.state.Load()
	c.adapt.countHit(s)
	if s&usesMask < maxUses {
		// Best effort: a lost race loses one use, as in the reference.
		// Only uses that count are told to the sketch, so reads of hot
		// entries (uses saturated) write nothing shared.
		if e.state.CompareAndSwap(s, s+1) {
			c.sketch.increment(h)
		}
	}
	return e.load(c.vk), true
}

// Contains reports whether key is cached, without counting a use.
func (c *Cache[K, V]) Contains(key K) bool {
	h := c.Hash(key)
	_, e := c.shard(h).table.Load().find(h)
	return e != nil
}

// Put caches value under key with the given weight (at least 1), evicting
// as needed to stay within the limit. A new key may be refused by admission:
// then the cache is unchanged but for its frequency sketch.
func (c *Cache[K, V]) Put(key K, value V, weight int) {
	h := c.Hash(key)
	c.shard(h).put(nil, h, value, weight, false)
}

// PutAppend is Put that appends what left the cache to dst and returns it:
// evicted entries, the replaced value of key, or the refused newcomer.
func (c *Cache[K, V]) PutAppend(dst []Item[V], key K, value V, weight int) []Item[V] {
	h := c.Hash(key)
	c.shard(h).put(&dst, h, value, weight, false)
	return dst
}

// ForcePut is Put without the admission test: a new key always gets in
// (unless heavier than the limit). Hit ratios under skewed load are a little
// lower than with Put.
func (c *Cache[K, V]) ForcePut(key K, value V, weight int) {
	h := c.Hash(key)
	c.shard(h).put(nil, h, value, weight, true)
}

// ForcePutAppend is ForcePut that appends what left the cache to dst.
func (c *Cache[K, V]) ForcePutAppend(dst []Item[V], key K, value V, weight int) []Item[V] {
	h := c.Hash(key)
	c.shard(h).put(&dst, h, value, weight, true)
	return dst
}

// Remove takes key out of the cache and returns its value.
func (c *Cache[K, V]) Remove(key K) (V, bool) {
	h := c.Hash(key)
	return c.shard(h).remove(h)
}

// Len returns the number of cached entries.
func (c *Cache[K, V]) Len() int {
	n := int64(0)
	for i := range c.shards {
		n += c.shards[i].length.Load()
	}
	return int(n)
}

// Weight returns the total weight of the cached entries.
func (c *Cache[K, V]) Weight() int {
	w := int64(0)
	for i := range c.shards {
		w += c.shards[i].weight.Load()
	}
	return int(w)
}

// Limit returns the weight limit.
func (c *Cache[K, V]) Limit() int { return c.limit }

// MaxWeight returns the heaviest entry the cache accepts: the smallest
// shard's share of the limit.
func (c *Cache[K, V]) MaxWeight() int {
	return int(min(c.shards[len(c.shards)-1].limit, math.MaxUint32))
}

// isIntKey reports whether K is a 64-bit integer type.
func isIntKey[K comparable]() bool {
	switch reflect.TypeFor[K]().Kind() {
	case reflect.Int, reflect.Int64, reflect.Uint, reflect.Uint64, reflect.Uintptr:
		return reflect.TypeFor[K]().Size() == 8
	}
	return false
}

// mixWord is the finalizer of SplitMix64: a bijection of 64-bit words, so that
// no two keys of a 64-bit integer type share a hash (and an entry).
func mixWord(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
