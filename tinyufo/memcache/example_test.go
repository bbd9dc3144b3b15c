package memcache_test

import (
	"context"
	"fmt"
	"time"

	"github.com/pingora-go/pingora/tinyufo/memcache"
)

func ExampleRTCache() {
	resolve := func(ctx context.Context, host string) (string, time.Duration, error) {
		return "192.0.2.1", time.Minute, nil // a DNS lookup, say
	}
	dns := memcache.NewRT[string, string](1000, resolve, memcache.RTConfig{LockTimeout: time.Second})
	ctx := context.Background()
	for range 2 {
		addr, status, err := dns.Get(ctx, "origin.example")
		fmt.Println(addr, status, err)
	}
	// Output:
	// 192.0.2.1 miss <nil>
	// 192.0.2.1 hit <nil>
}
