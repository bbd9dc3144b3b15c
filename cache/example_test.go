package cache_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/pingora-go/pingora/cache"
	"github.com/pingora-go/pingora/cache/storage/memory"
	"github.com/pingora-go/pingora/header"
)

// Example stores an upstream response on a miss and serves the next request from the cache,
// the way the proxy does it.
func Example() {
	c, _ := cache.New(cache.Config{
		Storage: memory.New(memory.Config{MaxBytes: 64 << 20}),
		Name:    "edge",
	})
	ctx := context.Background()
	req := header.NewRequest("GET", "/logo.svg")
	req.Append("Host", "example.com")

	// First request: a miss. This request holds the key (Writer) while it goes upstream.
	e, _ := c.Get(ctx, c.Key("https", req), req)
	fmt.Println(e.Freshness, e.Fwd, e.Writer())
	up := header.NewRequest("GET", "/logo.svg")
	cache.UpstreamRequest(up)
	resp := header.NewResponse(200)
	resp.Append("Cache-Control", "max-age=300")
	resp.Append("Content-Length", "5")
	now := time.Now()
	w, reason, _ := c.Store(ctx, e, req, up, resp, now, now)
	fmt.Println(reason)
	_ = w.Write(ctx, []byte("<svg>"))
	_ = w.Finish(ctx)
	e.Close()

	// Second request: a hit.
	e, _ = c.Get(ctx, c.Key("https", req), req)
	defer e.Close()
	var head header.ResponseHeader
	var plan cache.RangePlan
	if c.ServeHit(&head, e, req, &plan, false) {
		body := make([]byte, 16)
		n, _ := e.Body.Read(ctx, body)
		_, err := e.Body.Read(ctx, body[n:])
		fmt.Println(head.Status, head.Value("Age"), head.Value("Cache-Status"), string(body[:n]), err == io.EOF)
	}
	// Output:
	// miss uri-miss true
	// storable
	// 200 0 edge; hit; ttl=299 <svg> true
}

// ExampleParseCacheControl shows the parsed directives of a response.
func ExampleParseCacheControl() {
	resp := header.NewResponse(200)
	resp.Append("Cache-Control", `public, max-age=60, no-cache="Set-Cookie", x-ext=1`)
	cc := cache.ParseCacheControl(&resp.Fields)
	fmt.Println(cc.Public, cc.MaxAge, cc.NoCache, cc.NoCacheFields)
	// Output: true 60 false [set-cookie]
}

// ExampleCacheStatus builds a Cache-Status member for a stored miss.
func ExampleCacheStatus() {
	cs := cache.CacheStatus{Name: "edge", Fwd: cache.FwdURIMiss, FwdStatus: 200, Stored: true}
	fmt.Println(cs.String())
	// Output: edge; fwd=uri-miss; fwd-status=200; stored
}
