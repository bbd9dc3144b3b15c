package limits

import (
	"sync/atomic"
	"testing"
	"time"
)

// benchKeys is a large key space: a sketch's memory stays the same whatever
// its size, and B/op stays 0.
var benchKeys = keys(1 << 20)

func BenchmarkRateObserve(b *testing.B) {
	r := NewRate(time.Second)
	b.ReportAllocs()
	var next atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		i := next.Add(1 << 16)
		for pb.Next() {
			r.Observe(benchKeys[i&(1<<20-1)], 1)
			i++
		}
	})
}

func BenchmarkRateObserveBytes(b *testing.B) {
	r := NewRate(time.Second)
	key := []byte("203.0.113.7")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.ObserveBytes(key, 1)
		}
	})
}

func BenchmarkRateRate(b *testing.B) {
	r := NewRate(time.Second)
	b.ReportAllocs()
	var next atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		i := next.Add(1 << 16)
		for pb.Next() {
			r.Rate(benchKeys[i&(1<<20-1)])
			i++
		}
	})
}

func BenchmarkInflight(b *testing.B) {
	f := NewInflight()
	b.ReportAllocs()
	var next atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		i := next.Add(1 << 16)
		for pb.Next() {
			g, _ := f.Incr(benchKeys[i&(1<<20-1)], 1)
			g.Release()
			i++
		}
	})
}

func BenchmarkEstimatorIncr(b *testing.B) {
	e := NewEstimator(4, 1024)
	b.ReportAllocs()
	var next atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		i := next.Add(1 << 16)
		for pb.Next() {
			e.Incr(benchKeys[i&(1<<20-1)], 1)
			i++
		}
	})
}
