package tinyufo

import (
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

// benchTrace is Zipf-distributed keys over 1M, for a cache of 100k.
var benchTrace = func() []uint64 {
	z := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.01, 1, 1_000_000)
	t := make([]uint64, 1<<20)
	for i := range t {
		t[i] = z.Uint64()
	}
	return t
}()

func warmCache() *Cache[uint64, uint64] {
	c := New[uint64, uint64](100_000, 100_000)
	for _, k := range benchTrace {
		if _, ok := c.Get(k); !ok {
			c.Put(k, k, 1)
		}
	}
	return c
}

func benchMix(b *testing.B, c *Cache[uint64, uint64], putEvery uint64) {
	b.ReportAllocs()
	var seed atomic.Uint64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.New(rand.NewPCG(seed.Add(1), 0)).Uint64()
		for pb.Next() {
			k := benchTrace[i&(1<<20-1)]
			if putEvery != 0 && i%putEvery == 0 {
				c.Put(k, k, 1)
			} else {
				c.Get(k)
			}
			i++
		}
	})
}

func BenchmarkGet(b *testing.B)   { benchMix(b, warmCache(), 0) }
func BenchmarkMix90(b *testing.B) { benchMix(b, warmCache(), 10) }
func BenchmarkPut(b *testing.B)   { benchMix(b, warmCache(), 1) }
