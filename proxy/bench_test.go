package proxy_test

import (
	"bytes"
	"net"
	"strconv"
	"testing"

	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/upstream"
)

// staticOrigin answers every request on a connection with the same response, reading heads
// with a fixed buffer so that it allocates nothing per request itself.
func staticOrigin(b *testing.B, body []byte) string {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	resp = append(resp, body...)
	return rawOrigin(b, func(c net.Conn) {
		buf := make([]byte, 16<<10)
		have := 0
		for {
			n, err := c.Read(buf[have:])
			if err != nil {
				return
			}
			have += n
			for {
				i := bytes.Index(buf[:have], []byte("\r\n\r\n"))
				if i < 0 {
					break
				}
				if _, err := c.Write(resp); err != nil {
					return
				}
				have = copy(buf, buf[i+4:have])
			}
		}
	})
}

// BenchmarkProxyH1 measures one request through the proxy over real loopback connections:
// a keep-alive client, the proxy, and a keep-alive origin answering 1 KiB. allocs/op counts
// every allocation of the process per request: client and origin allocate nothing per request,
// so it is the proxy's.
func BenchmarkProxyH1(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	origin := staticOrigin(b, body)
	app := &testApp{peers: []*upstream.Peer{mustPeer(b, origin)}}
	addr, _ := startProxy(b, app, proxy.Options{})
	c := dial(b, addr)
	req := []byte("GET /bench HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\n\r\n")
	buf := make([]byte, 64<<10)
	// One warm-up request creates the pooled connections and buffers.
	roundTrip := func() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		have := 0
		for {
			n, err := c.Read(buf[have:])
			if err != nil {
				b.Fatal(err)
			}
			have += n
			if i := bytes.Index(buf[:have], []byte("\r\n\r\n")); i >= 0 && have >= i+4+len(body) {
				if have != i+4+len(body) {
					b.Fatalf("unexpected extra bytes")
				}
				return
			}
		}
	}
	for i := 0; i < 100; i++ {
		roundTrip()
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		roundTrip()
	}
}
