package main

import (
	"github.com/Yiling-J/theine-go"
	"github.com/dgraph-io/ristretto/v2"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/maypok86/otter/v2"

	"github.com/pingora-go/pingora/tinyufo"
)

// cache is the common face of the caches compared: uint64 keys and values,
// every entry of weight 1.
type cache interface {
	Get(k uint64) bool
	Set(k uint64)
	Close()
}

// impl is one cache under test.
type impl struct {
	name string
	// new returns a cache holding up to size entries. sync asks for a Set that
	// is done when it returns (ristretto buffers Sets), for hit-ratio runs.
	new func(size int, sync bool) cache
}

var impls = []impl{
	{"tinyufo", func(size int, _ bool) cache { return ufo{tinyufo.New[uint64, uint64](size, size)} }},
	{"tinyufo-compact", func(size int, _ bool) cache { return ufo{tinyufo.NewCompact[uint64, uint64](size, size)} }},
	{"otter", newOtter},
	{"theine", newTheine},
	{"ristretto", newRistretto},
	{"golang-lru", newLRU},
}

type ufo struct {
	c *tinyufo.Cache[uint64, uint64]
}

func (u ufo) Get(k uint64) bool { _, ok := u.c.Get(k); return ok }
func (u ufo) Set(k uint64)      { u.c.Put(k, k, 1) }
func (u ufo) Close()            {}

type otterCache struct{ c *otter.Cache[uint64, uint64] }

func newOtter(size int, _ bool) cache {
	return otterCache{otter.Must(&otter.Options[uint64, uint64]{MaximumSize: size, InitialCapacity: size})}
}

func (o otterCache) Get(k uint64) bool { _, ok := o.c.GetIfPresent(k); return ok }
func (o otterCache) Set(k uint64)      { o.c.Set(k, k) }
func (o otterCache) Close()            { o.c.StopAllGoroutines() }

type theineCache struct{ c *theine.Cache[uint64, uint64] }

func newTheine(size int, _ bool) cache {
	c, err := theine.NewBuilder[uint64, uint64](int64(size)).Build()
	if err != nil {
		panic(err)
	}
	return theineCache{c}
}

func (t theineCache) Get(k uint64) bool { _, ok := t.c.Get(k); return ok }
func (t theineCache) Set(k uint64)      { t.c.Set(k, k, 1) }
func (t theineCache) Close()            { t.c.Close() }

type ristrettoCache struct {
	c    *ristretto.Cache[uint64, uint64]
	sync bool
}

func newRistretto(size int, sync bool) cache {
	c, err := ristretto.NewCache(&ristretto.Config[uint64, uint64]{
		NumCounters: int64(10 * size), // as its docs advise
		MaxCost:     int64(size),
		BufferItems: 64,
		// Weights are entry counts here, not bytes.
		IgnoreInternalCost: true,
	})
	if err != nil {
		panic(err)
	}
	return ristrettoCache{c, sync}
}

func (r ristrettoCache) Get(k uint64) bool { _, ok := r.c.Get(k); return ok }
func (r ristrettoCache) Set(k uint64) {
	r.c.Set(k, k, 1)
	if r.sync {
		r.c.Wait()
	}
}
func (r ristrettoCache) Close() { r.c.Close() }

type lruCache struct{ c *lru.Cache[uint64, uint64] }

func newLRU(size int, _ bool) cache {
	c, err := lru.New[uint64, uint64](size)
	if err != nil {
		panic(err)
	}
	return lruCache{c}
}

func (l lruCache) Get(k uint64) bool { _, ok := l.c.Get(k); return ok }
func (l lruCache) Set(k uint64)      { l.c.Add(k, k) }
func (l lruCache) Close()            {}
