package pool_test

import (
	"fmt"
	"net"
	"time"

	"github.com/pingora-go/pingora/pool"
)

// A connector keeps idle upstream connections keyed by the peer's reuse hash
// and checks each one with ConnAlive before reusing it.
func Example() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	done := make(chan struct{})
	defer close(done)
	go func() { // the upstream: accepts one connection and holds it open
		c, err := ln.Accept()
		if err != nil {
			return
		}
		<-done
		c.Close()
	}()

	conns := pool.New(pool.Options[net.Conn]{Capacity: 64, Alive: pool.ConnAlive})
	defer conns.Close()

	const peerHash = 0x9e3779b97f4a7c15
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	// ... an HTTP/1.1 exchange ends cleanly: keep the connection for 60 s.
	conns.Put(peerHash, c, 60*time.Second)

	reused, ok := conns.Get(peerHash)
	fmt.Println(ok, reused == c)
	_, ok = conns.Get(peerHash)
	fmt.Println(ok)
	st := conns.Stats()
	fmt.Println(st.Hits, st.Misses)
	reused.Close()
	// Output:
	// true true
	// false
	// 1 1
}
