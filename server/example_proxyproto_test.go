package server_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pingora-go/pingora/listeners"
	"github.com/pingora-go/pingora/protocols/proxyproto"
	"github.com/pingora-go/pingora/server"
)

// whoApp answers each connection with the client's address and the SNI name the load
// balancer saw, if its header says.
type whoApp struct{}

func (whoApp) ServeConn(_ context.Context, c net.Conn) {
	defer c.Close()
	name := ""
	if h := proxyproto.HeaderOf(c); h != nil {
		name = h.Authority() // a version 2 TLV, when the load balancer sends it
	}
	fmt.Fprintf(c, "client %s, sni %q\n", c.RemoteAddr(), name)
}

// A listener behind a load balancer that sends the PROXY protocol: the App sees the client's
// address from the header. Only the load balancers' network may send headers.
func ExampleListenOptions() {
	ls := server.NewListeningService("behind the load balancer", whoApp{})
	ls.Add(listeners.Address{Network: "tcp", Addr: "127.0.0.1:0"}, server.ListenOptions{
		ProxyProtocol: &proxyproto.Options{
			Allow:   []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			Timeout: 5 * time.Second,
		},
	})
	srv := server.New(server.Options{})
	srv.AddService(ls)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.RunServices(ctx) }()
	for len(ls.Addrs()) == 0 {
		time.Sleep(time.Millisecond)
	}

	// What a load balancer does: the header, then the client's bytes.
	c, err := net.Dial("tcp", ls.Addrs()[0].String())
	if err != nil {
		panic(err)
	}
	hdr, _ := proxyproto.Append(nil, &proxyproto.Header{Version: 2, Command: proxyproto.Proxy,
		Source:      &net.TCPAddr{IP: net.ParseIP("203.0.113.50"), Port: 41000},
		Destination: &net.TCPAddr{IP: net.ParseIP("192.0.2.10"), Port: 443},
		TLVs:        []proxyproto.TLV{{Type: proxyproto.TypeAuthority, Value: []byte("shop.example.com")}}})
	c.Write(hdr)
	buf := make([]byte, 100)
	n, _ := c.Read(buf)
	fmt.Print(string(buf[:n]))
	c.Close()
	stop()
	<-done

	// Output: client 203.0.113.50:41000, sni "shop.example.com"
}
