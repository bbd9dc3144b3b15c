package limits_test

import (
	"fmt"
	"time"

	"github.com/pingora-go/pingora/limits"
)

// A per-client rate limit as a request filter would apply it: count the
// request, refuse it when the count in the current second passes the limit.
func ExampleRate() {
	const maxPerSecond = 3
	rate := limits.NewRate(time.Second)
	for i := range 5 {
		if n := rate.Observe("client-42", 1); n > maxPerSecond {
			fmt.Println("request", i, "429 Too Many Requests")
			continue
		}
		fmt.Println("request", i, "ok")
	}
	// Output:
	// request 0 ok
	// request 1 ok
	// request 2 ok
	// request 3 429 Too Many Requests
	// request 4 429 Too Many Requests
}

func ExampleInflight() {
	inflight := limits.NewInflight()
	g, n := inflight.Incr("upstream-a", 1)
	defer g.Release()
	fmt.Println("in flight:", n)
	// Output: in flight: 1
}
