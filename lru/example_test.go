package lru_test

import (
	"fmt"

	"github.com/pingora-go/pingora/lru"
)

func Example() {
	// One shard keeps the order global, which makes the example exact.
	l := lru.New[string](lru.Config{Shards: 1, WeightLimit: 10})
	l.Admit(1, "one", 4)
	l.Admit(2, "two", 4)
	l.Promote(1)
	l.Admit(3, "three", 4) // 12 > 10: key 2 is the least recently used
	for _, e := range l.EvictToLimit(nil) {
		fmt.Println("evicted", e.Key, e.Data, e.Weight)
	}
	fmt.Println(l.Len(), l.Weight())
	// Output:
	// evicted 2 two 4
	// 2 8
}
