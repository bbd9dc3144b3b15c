package lb

import (
	"strconv"
	"testing"
)

func BenchmarkSelect(b *testing.B) {
	for _, tt := range algorithms {
		for _, n := range []int{10, 100, 1000} {
			b.Run(tt.name+"/"+strconv.Itoa(n), func(b *testing.B) {
				bs := equal(n)
				for i := range bs {
					bs[i].Weight = i%3 + 1
				}
				l := newLB(b, tt.algo, bs)
				key := []byte("/some/request/path?id=12345")
				b.ReportAllocs()
				for b.Loop() {
					if _, ok := l.Select(key, 3); !ok {
						b.Fatal("no backend")
					}
				}
			})
		}
	}
}

// BenchmarkSelectParallel measures contention on shared counters.
func BenchmarkSelectParallel(b *testing.B) {
	for _, tt := range algorithms {
		b.Run(tt.name, func(b *testing.B) {
			l := newLB(b, tt.algo, equal(10))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				key := []byte("/some/request/path?id=12345")
				for pb.Next() {
					if lease, ok := l.Acquire(key, 3); ok {
						lease.Release()
					}
				}
			})
		})
	}
}

// BenchmarkSelectFailover selects with the first choice of every key down:
// the cost of walking the fallback order.
func BenchmarkSelectFailover(b *testing.B) {
	for _, tt := range algorithms {
		b.Run(tt.name, func(b *testing.B) {
			l := newLB(b, tt.algo, equal(10))
			for _, be := range l.Backends().All()[:5] {
				l.Backends().SetHealthy(be.Addr, false)
			}
			key := []byte("/some/request/path?id=12345")
			b.ReportAllocs()
			for b.Loop() {
				l.Select(key, 16)
			}
		})
	}
}

func BenchmarkBuild(b *testing.B) {
	for _, tt := range algorithms {
		b.Run(tt.name+"/1000", func(b *testing.B) {
			bs := equal(1000)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tt.algo(bs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
