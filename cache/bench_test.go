package cache_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/pingora-go/pingora/cache"
	"github.com/pingora-go/pingora/cache/internal/storagetest"
	"github.com/pingora-go/pingora/cache/storage/memory"
	"github.com/pingora-go/pingora/header"
)

// hitFixture stores one response of size bytes with typical origin fields.
func hitFixture(b *testing.B, size int) (*cache.Cache, *header.RequestHeader) {
	c, err := cache.New(cache.Config{Storage: memory.New(memory.Config{MaxBytes: 256 << 20})})
	if err != nil {
		b.Fatal(err)
	}
	req := request("GET", "/static/app.js?v=3", "User-Agent: bench", "Accept: */*", "Accept-Encoding: gzip")
	resp := header.NewResponse(200)
	for _, f := range [][2]string{{"Date", string(cache.AppendHTTPDate(nil, time.Now()))}, {"Content-Type", "application/javascript"},
		{"Content-Length", fmt.Sprint(size)}, {"Cache-Control", "public, max-age=3600"}, {"ETag", `"5f3a-1a2b3c"`},
		{"Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT"}, {"Server", "origin"}} {
		resp.Append(f[0], f[1])
	}
	ctx := context.Background()
	e, err := c.Get(ctx, c.Key("http", req), req)
	if err != nil {
		b.Fatal(err)
	}
	w, reason, err := c.Store(ctx, e, req, req, resp, time.Now(), time.Now())
	if w == nil {
		b.Fatal(reason, err)
	}
	if err := w.Write(ctx, storagetest.Body("bench", size)); err != nil {
		b.Fatal(err)
	}
	if err := w.Finish(ctx); err != nil {
		b.Fatal(err)
	}
	e.Close()
	return c, req
}

// BenchmarkHitPath is the whole hit path: key, lookup, freshness decision, response head with
// Age and Cache-Status, and reading the body out.
func BenchmarkHitPath(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10, 1 << 20} {
		b.Run(fmt.Sprint(size>>10, "KiB"), func(b *testing.B) {
			c, req := hitFixture(b, size)
			ctx := context.Background()
			var head header.ResponseHeader
			var plan cache.RangePlan
			buf := make([]byte, 32<<10)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				e, err := c.Get(ctx, c.Key("http", req), req)
				if err != nil || e.Freshness != cache.Fresh {
					b.Fatal(err, e.Freshness)
				}
				c.ServeHit(&head, e, req, &plan, false)
				for {
					_, err := e.Body.Read(ctx, buf)
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				e.Close()
			}
		})
	}
}

// BenchmarkHitHeader is the head of a hit alone: lookup, decision, Age and Cache-Status.
func BenchmarkHitHeader(b *testing.B) {
	c, req := hitFixture(b, 1024)
	ctx := context.Background()
	var head header.ResponseHeader
	var plan cache.RangePlan
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e, _ := c.Get(ctx, c.Key("http", req), req)
		c.ServeHit(&head, e, req, &plan, false)
		e.Close()
	}
}

func BenchmarkParseCacheControl(b *testing.B) {
	var h header.Fields
	h.Append("Cache-Control", `public, max-age=3600, s-maxage=600, stale-while-revalidate=30, ext="a, b"`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		cache.ParseCacheControl(&h)
	}
}

func BenchmarkParseRange(b *testing.B) {
	v := []byte("bytes=0-99, 200-299, -100")
	dst := make([]cache.ByteRange, 0, 8)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		dst, _ = cache.ParseRange(dst[:0], v, 100000, 0)
	}
}
