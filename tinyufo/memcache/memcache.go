// Package memcache is an in-memory key→value cache with per-item TTLs on top
// of TinyUFO, plus RTCache, a read-through cache that lets one caller per key
// run the lookup while the others wait for its result.
package memcache

import (
	"time"

	"github.com/pingora-go/pingora/tinyufo"
)

// Status says how a cache lookup was answered.
type Status uint8

// The statuses of a lookup.
const (
	// Hit: a fresh value was found.
	Hit Status = iota
	// Miss: no value was found.
	Miss
	// Expired: a value was found past its TTL and not returned.
	Expired
	// LockHit: another caller's lookup, waited for, gave the value.
	LockHit
	// Stale: a value past its TTL was returned (GetStale and the
	// stale-while-update helpers).
	Stale
)

var statusNames = [...]string{Hit: "hit", Miss: "miss", Expired: "expired", LockHit: "lock_hit", Stale: "stale"}

// String returns the status in lower case, as a log or header value.
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}

// item is a cached value and when it expires (ns since the Unix epoch;
// 0 for never).
type item[V any] struct {
	value   V
	expires int64
}

// Cache maps K to V with optional per-item TTLs, in a TinyUFO cache of a
// fixed number of items. It is safe for concurrent use; reads take no lock.
type Cache[K comparable, V any] struct {
	ufo *tinyufo.Cache[K, item[V]]
	now func() int64 // ns since the Unix epoch; tests replace it
}

// New returns a cache of up to size items.
func New[K comparable, V any](size int) *Cache[K, V] {
	return &Cache[K, V]{
		ufo: tinyufo.New[K, item[V]](size, size),
		now: func() int64 { return time.Now().UnixNano() },
	}
}

// Get returns key's value if it is cached and fresh. A value past its TTL
// is reported as Expired, with the zero V.
func (c *Cache[K, V]) Get(key K) (V, Status) {
	v, st, _ := c.GetStale(key)
	if st == Stale {
		var zero V
		return zero, Expired
	}
	return v, st
}

// GetStale is Get that also returns a value past its TTL, as Stale with how
// long ago it expired.
func (c *Cache[K, V]) GetStale(key K) (V, Status, time.Duration) {
	it, ok := c.ufo.Get(key)
	if !ok {
		return it.value, Miss, 0
	}
	if it.expires != 0 {
		if now := c.now(); now >= it.expires {
			return it.value, Stale, time.Duration(now - it.expires)
		}
	}
	return it.value, Hit, 0
}

// Put caches value under key for ttl; a ttl of 0 or less never expires. As
// in TinyUFO, a new key may be refused when the cache is full of keys used
// more often.
func (c *Cache[K, V]) Put(key K, value V, ttl time.Duration) {
	it := item[V]{value: value}
	if ttl > 0 {
		it.expires = c.now() + int64(ttl)
	}
	c.ufo.Put(key, it, 1)
}

// Remove drops key from the cache.
func (c *Cache[K, V]) Remove(key K) { c.ufo.Remove(key) }

// Len returns the number of cached items, fresh or not.
func (c *Cache[K, V]) Len() int { return c.ufo.Len() }
