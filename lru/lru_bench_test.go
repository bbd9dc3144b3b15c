package lru

import (
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

const benchKeys = 1 << 16

func benchLRU() *LRU[int] {
	l := New[int](Config{Shards: 16, WeightLimit: benchKeys / 2, Capacity: benchKeys})
	for k := range uint64(benchKeys) {
		l.Admit(k, int(k), 1)
	}
	l.EvictToLimit(nil)
	return l
}

func BenchmarkAdmitEvict(b *testing.B) {
	l := benchLRU()
	b.ReportAllocs()
	var seed atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(seed.Add(1), 0))
		var buf []Entry[int]
		for pb.Next() {
			l.Admit(r.Uint64()%benchKeys, 0, 1)
			buf = l.EvictToLimit(buf[:0])
		}
	})
}

func BenchmarkPromote(b *testing.B) {
	l := benchLRU()
	b.ReportAllocs()
	var seed atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(seed.Add(1), 0))
		for pb.Next() {
			l.Promote(r.Uint64() % benchKeys)
		}
	})
}

func BenchmarkPeek(b *testing.B) {
	l := benchLRU()
	b.ReportAllocs()
	var seed atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(seed.Add(1), 0))
		for pb.Next() {
			l.Peek(r.Uint64() % benchKeys)
		}
	})
}
