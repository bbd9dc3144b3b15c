package lb_test

import (
	"fmt"

	"github.com/pingora-go/pingora/lb"
)

// The Go form of Pingora's quick start:
// LoadBalancer::<RoundRobin>::try_from_iter(["1.1.1.1:443", "1.0.0.1:443"]).
func Example() {
	upstreams, err := lb.New(lb.RoundRobin, "1.1.1.1:443", "1.0.0.1:443")
	if err != nil {
		panic(err)
	}
	for range 3 {
		// Round robin ignores the key and walks the backends in address
		// order; 256 is how many candidates to try when some are down.
		b, ok := upstreams.Select(nil, 256)
		fmt.Println(b.Addr, ok)
	}
	// Output:
	// 1.0.0.1:443 true
	// 1.1.1.1:443 true
	// 1.0.0.1:443 true
}

func ExampleBackends_SetHealthy() {
	upstreams, err := lb.New(lb.Ketama, "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80")
	if err != nil {
		panic(err)
	}
	key := []byte("/videos/42")
	first, _ := upstreams.Select(key, 1)

	// A health checker marks the key's backend down: the key moves to the
	// next backend on the ring, and back once it recovers.
	upstreams.Backends().SetHealthy(first.Addr, false)
	failover, _ := upstreams.Select(key, 16)
	upstreams.Backends().SetHealthy(first.Addr, true)
	again, _ := upstreams.Select(key, 16)

	fmt.Println(failover.Addr != first.Addr, again.Addr == first.Addr)
	// Output: true true
}

func ExampleLoadBalancer_Acquire() {
	upstreams, err := lb.NewFromBackends(lb.LeastInFlight, must(lb.NewBackends(
		lb.Backend{Addr: "10.0.0.1:80", Weight: 1},
		lb.Backend{Addr: "10.0.0.2:80", Weight: 2},
	)))
	if err != nil {
		panic(err)
	}
	// Three requests in flight at once: the weight-2 backend takes two.
	var leases []lb.Lease
	for range 3 {
		lease, _ := upstreams.Acquire(nil, 4)
		leases = append(leases, lease)
	}
	fmt.Println(upstreams.Backends().InFlight("10.0.0.1:80"), upstreams.Backends().InFlight("10.0.0.2:80"))
	for _, lease := range leases {
		lease.Release() // when the request is done
	}
	// Output: 1 2
}

func ExampleLoadBalancer_Update() {
	upstreams, err := lb.New(lb.Maglev, "10.0.0.1:80", "10.0.0.2:80")
	if err != nil {
		panic(err)
	}
	// Service discovery publishes a new list; selection keeps running
	// during the update and sees either the old list or the new one.
	changed, err := upstreams.Update([]lb.Backend{
		lb.NewBackend("10.0.0.1:80"),
		lb.NewBackend("10.0.0.2:80"),
		{Addr: "10.0.0.3:80", Weight: 2, Ext: map[string]any{"zone": "b"}},
	})
	fmt.Println(changed, err, upstreams.Backends().Len())
	// Output: true <nil> 3
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
