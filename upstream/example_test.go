package upstream_test

import (
	"fmt"
	"time"

	"github.com/pingora-go/pingora/upstream"
)

func ExampleNewPeer() {
	p, err := upstream.NewPeer("[2001:db8::0001]:443", true, "example.com")
	if err != nil {
		fmt.Println(err)
		return
	}
	p.Options.ConnectTimeout = 2 * time.Second
	p.Options.IdleTimeout = 60 * time.Second
	p.Options.ALPN = upstream.H2H1
	fmt.Println(p)

	_, err = upstream.NewPeer("example.com", true, "example.com")
	fmt.Println(err)
	// Output:
	// addr=[2001:db8::1]:443 tls=true sni=example.com
	// upstream: invalid address "example.com": address example.com: missing port in address
}

func ExamplePeer_ReuseHash() {
	a, _ := upstream.NewPeer("10.0.0.1:80", false, "")
	b, _ := upstream.NewPeer("10.0.0.1:80", false, "")
	b.Options.ReadTimeout = time.Second // not part of the identity
	fmt.Println(a.ReuseHash() == b.ReuseHash())

	b.GroupKey = 42 // isolates b's connections from a's
	fmt.Println(a.ReuseHash() == b.ReuseHash())
	// Output:
	// true
	// false
}

func ExampleNewALPN() {
	a := upstream.NewALPN(2, 1)
	fmt.Println(a, a.MaxHTTPVersion(), a.MinHTTPVersion(), a.NextProtos())
	// Output:
	// h2h1 2 1 [h2 http/1.1]
}
