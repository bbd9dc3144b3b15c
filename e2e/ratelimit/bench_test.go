package ratelimit

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/pingora-go/pingora/ratelimit"
)

// staticOrigin answers every request on a connection with the same small response and
// allocates nothing per request itself.
func staticOrigin(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
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
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkProxy measures one allowed request through a proxy over a keep-alive loopback
// connection, without a limiter and with the ready filter keyed by client IP or by header.
// allocs/op counts the whole process: the client and the origin allocate nothing per request,
// so the difference between the cases is the limiter's.
func BenchmarkProxy(b *testing.B) {
	origin := staticOrigin(b)
	cases := []struct {
		name  string
		limit *ratelimit.Filter
	}{
		{"no limiter", nil},
		{"request without key", &ratelimit.Filter{Limiter: ratelimit.NewLocal(1, time.Hour), Key: ratelimit.Header("absent")}},
		{"local by client IP", &ratelimit.Filter{Limiter: ratelimit.NewLocal(1<<40, time.Second), Key: ratelimit.ClientIP}},
		{"local by header", &ratelimit.Filter{Limiter: ratelimit.NewLocal(1<<40, time.Second), Key: ratelimit.Header("appid")}},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			addr := startProxy(b, origin, bc.limit)
			c, err := net.DialTimeout("tcp", addr, waitBound)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := []byte("GET /bench HTTP/1.1\r\nHost: bench.example\r\nappid: app-42\r\n\r\n")
			buf := make([]byte, 4096)
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
					if i := bytes.Index(buf[:have], []byte("\r\n\r\n")); i >= 0 && have >= i+6 {
						if !bytes.HasPrefix(buf, []byte("HTTP/1.1 200")) {
							b.Fatalf("response %q", buf[:have])
						}
						return
					}
				}
			}
			for range 100 {
				roundTrip()
			}
			b.ReportAllocs()
			for b.Loop() {
				roundTrip()
			}
		})
	}
}

// BenchmarkRedisAllow measures Redis.Allow against a real redis-server on loopback, one key,
// with leases of 1 (a round trip per request), 10 and 100 tokens.
func BenchmarkRedisAllow(b *testing.B) {
	r := startRedis(b)
	c := newClient(b, r)
	for _, lease := range []int64{1, 10, 100} {
		b.Run("lease "+strconv.FormatInt(lease, 10), func(b *testing.B) {
			lim := ratelimit.NewRedis(c, ratelimit.RedisOptions{Limit: 1 << 40, Window: time.Second, Lease: lease,
				Timeout: time.Second, FailMode: ratelimit.FailClosed, Prefix: "bench-" + strconv.FormatInt(lease, 10) + ":"})
			key := []byte("10.1.2.3")
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if !lim.Allow(ctx, key).Allowed {
					b.Fatal("refused")
				}
			}
		})
	}
}
