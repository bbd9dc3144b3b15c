package proxy_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

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

// BenchmarkProxyH2 measures one HTTP/2 request (h2c with prior knowledge) through the proxy
// to the same HTTP/1.1 origin as BenchmarkProxyH1: a client driving x/net's framer directly
// (reused frames, a header block encoded once), one stream after another on one connection.
// Its allocs/op are the proxy's, plus the framer's few on the client side.
func BenchmarkProxyH2(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	origin := staticOrigin(b, body)
	app := &testApp{peers: []*upstream.Peer{mustPeer(b, origin)}}
	addr, _ := startProxy(b, app, proxy.Options{H2C: true})
	c := dial(b, addr)
	c.SetDeadline(time.Time{})
	bw := bufio.NewWriter(c)
	fr := http2.NewFramer(bw, bufio.NewReader(c))
	fr.SetReuseFrames()
	io.WriteString(bw, http2.ClientPreface)
	fr.WriteSettings()
	fr.WriteWindowUpdate(0, 1<<30)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/bench"},
		{":authority", "bench.example"}, {"user-agent", "bench/1.0"}, {"accept", "*/*"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	block := hb.Bytes()
	id := uint32(1)
	got := 0
	roundTrip := func() {
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}); err != nil {
			b.Fatal(err)
		}
		if err := bw.Flush(); err != nil {
			b.Fatal(err)
		}
		n := 0
		for done := false; !done; {
			f, err := fr.ReadFrame()
			if err != nil {
				b.Fatal(err)
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					fr.WriteSettingsAck()
				}
			case *http2.DataFrame:
				if f.StreamID == id {
					n += len(f.Data())
					done = f.StreamEnded()
				}
			case *http2.HeadersFrame:
				done = f.StreamID == id && f.StreamEnded()
			case *http2.RSTStreamFrame, *http2.GoAwayFrame:
				b.Fatalf("stream %d ended by %v", id, f)
			}
		}
		if n != len(body) {
			b.Fatalf("stream %d: %d body bytes", id, n)
		}
		got += n
		if got > 1<<29 {
			fr.WriteWindowUpdate(0, uint32(got))
			got = 0
		}
		id += 2
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
