package main

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
)

// BenchmarkRead measures read throughput on readTrace (see readThroughput):
// Get, and at 90 % reads Set on every tenth request, at 0 % Set only (the
// cost of writes), from b.RunParallel. Run with -cpu 1,2 for GOMAXPROCS 1
// and 2; `go run . -table read` runs the same workload interleaved.
func BenchmarkRead(b *testing.B) {
	trace := readTrace()
	for _, reads := range []int{100, 90, 0} {
		for _, im := range impls {
			b.Run(fmt.Sprintf("reads=%d%%/%s", reads, im.name), func(b *testing.B) {
				c := im.new(readSize, true)
				defer c.Close()
				for _, k := range trace {
					if !c.Get(k) {
						c.Set(k)
					}
				}
				var seed atomic.Uint64
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					i := rand.New(rand.NewPCG(seed.Add(1), 0)).Uint64()
					for pb.Next() {
						k := trace[i&traceMask]
						if reads == 0 || reads == 90 && i%10 == 0 {
							c.Set(k)
						} else {
							c.Get(k)
						}
						i++
					}
				})
			})
		}
	}
}

// BenchmarkOverhead fills each cache with 1M uint64→uint64 entries and
// reports the live heap added per entry (payload is 16 bytes of it).
func BenchmarkOverhead(b *testing.B) {
	const n = 1_000_000
	for _, im := range impls {
		b.Run(im.name, func(b *testing.B) {
			b.ReportAllocs()
			var per float64
			for range b.N {
				before := liveHeap()
				c := im.new(n, true)
				for i := range n {
					c.Set(keyOf(i))
				}
				per = float64(liveHeap()-before) / n
				c.Close()
				runtime.KeepAlive(c)
			}
			b.ReportMetric(per, "bytes/entry")
		})
	}
}
