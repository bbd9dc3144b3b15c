package ketama_test

import (
	"fmt"

	"github.com/pingora-go/pingora/ketama"
)

func Example() {
	servers := []ketama.Bucket{
		{Addr: "127.0.0.1:19101", Weight: 1},
		{Addr: "127.0.0.1:19102", Weight: 1},
		{Addr: "127.0.0.1:19103", Weight: 1},
		{Addr: "127.0.0.1:19104", Weight: 1},
		{Addr: "127.0.0.1:19105", Weight: 1},
	}
	ring, err := ketama.New(servers)
	if err != nil {
		panic(err)
	}
	// The same choice nginx makes with `hash $arg_key consistent;`.
	fmt.Println(servers[ring.Node([]byte("key-0"))].Addr)
	// Output: 127.0.0.1:19104
}

func ExampleContinuum_Iter() {
	servers := []ketama.Bucket{{Addr: "10.0.0.1:80", Weight: 1}, {Addr: "10.0.0.2:80", Weight: 1}}
	ring, err := ketama.New(servers)
	if err != nil {
		panic(err)
	}
	// Walk the ring from the key until a server other than the first shows up:
	// the failover order for when the first choice is down.
	it := ring.Iter([]byte("user-42"))
	first, _ := it.Next()
	for {
		next, ok := it.Next()
		if !ok {
			break
		}
		if next != first {
			fmt.Println(servers[first].Addr != servers[next].Addr)
			break
		}
	}
	// Output: true
}
