// Package eviction bounds a cache storage in bytes: it tracks the size of every stored entry in
// a sharded weighted LRU (package lru) and names the least recently used entries to remove once
// the total passes the limit.
package eviction

import (
	"github.com/pingora-go/pingora/cache"
	"github.com/pingora-go/pingora/lru"
)

// Manager is an LRU over cache keys weighted by entry size. It is safe for concurrent use; a
// storage usually calls it under its own lock, so that an entry and its accounting change
// together.
type Manager struct {
	lru   *lru.LRU[cache.Key]
	limit int64
}

// New returns a manager that keeps the total size under limit bytes. shards spreads the LRU
// over independent locks (1 gives an exact global order).
func New(limit int64, shards int) *Manager {
	return &Manager{
		lru:   lru.New[cache.Key](lru.Config{Shards: max(shards, 1), WeightLimit: int(limit)}),
		limit: limit,
	}
}

// Limit returns the byte limit.
func (m *Manager) Limit() int64 { return m.limit }

// Admit records key with its size as the most recently used entry and evicts down to the limit.
// It returns the keys whose entries must now be removed from storage: the evicted ones, and a
// different key whose 64-bit hash collided with key's (its accounting was just replaced). key
// itself is among them when it alone exceeds the limit.
func (m *Manager) Admit(key cache.Key, size int64) []cache.Key {
	h := key.Uint64()
	var out []cache.Key
	if old, ok := m.lru.Peek(h); ok && old != key {
		out = append(out, old)
	}
	m.lru.Admit(h, key, int(max(size, 1)))
	for _, e := range m.lru.EvictToLimit(nil) {
		out = append(out, e.Data)
	}
	return out
}

// Access marks key as just used.
func (m *Manager) Access(key cache.Key) { m.lru.Promote(key.Uint64()) }

// Remove forgets key (a purge or a replaced entry), without counting an eviction.
func (m *Manager) Remove(key cache.Key) {
	h := key.Uint64()
	if old, ok := m.lru.Peek(h); ok && old == key {
		m.lru.Remove(h)
	}
}

// Usage returns the number of entries and their total size, and how many entries and bytes
// were evicted so far.
func (m *Manager) Usage() cache.Usage {
	return cache.Usage{
		Items:        int64(m.lru.Len()),
		Bytes:        int64(m.lru.Weight()),
		EvictedItems: m.lru.EvictedLen(),
		EvictedBytes: m.lru.EvictedWeight(),
	}
}
