package gateway

import (
	"strings"
	"testing"

	"github.com/pingora-go/pingora/internal/testbin"
	"github.com/pingora-go/pingora/internal/testserve"
)

const cacheConf = `
version: 1
listeners:
  - address: {{LISTEN}}
caches:
  small: {memory: 16MiB, max_object_size: 1MiB}
  ondisk: {dir: {{DIR}}, disk: 64MiB}
upstreams:
  a:
    backends: [{{A}}]
services:
  web:
    routes:
      - match: {path_prefix: /mem/}
        upstream: a
        rewrite: {prefix: /mem/, replacement: /}
        cache: small
      - match: {path_prefix: /disk/}
        upstream: a
        rewrite: {prefix: /disk/, replacement: /}
        cache: ondisk
      - upstream: a
`

// TestRouteCache checks that a route with a cache answers a repeated cacheable request from
// it (memory and disk), while a route without one goes upstream each time.
func TestRouteCache(t *testing.T) {
	a := startOrigin(t, "A")
	dir := t.TempDir()
	listen := testbin.FreeAddr(t)
	path := writeFile(t, dir, expand(cacheConf, map[string]string{"LISTEN": listen, "A": a.addr, "DIR": dir + "/cache"}))
	serve(t, path)
	c := testserve.Client(t)
	base := "http://" + listen
	for _, prefix := range []string{"/mem", "/disk"} {
		target := "/cacheable" + prefix
		for i := range 3 {
			resp, body := testserve.Do(t, c, "GET", base+prefix+target)
			if resp.StatusCode != 200 || body != "A "+target {
				t.Fatalf("%s request %d: %d %q", prefix, i, resp.StatusCode, body)
			}
			if cs := resp.Header.Get("Cache-Status"); i > 0 && !strings.Contains(cs, "hit") {
				t.Errorf("%s request %d: Cache-Status %q, want a hit", prefix, i, cs)
			}
		}
		if n := a.count(target); n != 1 {
			t.Errorf("%s: the origin saw %d requests for a cached response, want 1", prefix, n)
		}
	}
	for range 2 {
		testserve.Do(t, c, "GET", base+"/cacheable/none")
	}
	if n := a.count("/cacheable/none"); n != 2 {
		t.Errorf("a route without a cache: the origin saw %d requests, want 2", n)
	}
}

func TestCacheConfigErrors(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{`caches: {c: {memory: 16MiB, dir: /tmp/x}}`, "caches.c: exactly one of memory and dir"},
		{`caches: {c: {memory: 10k}}`, "caches.c.memory: want at least 1MiB"},
		{`caches: {c: {memory: lots}}`, "caches.c.memory: want a size"},
		{`caches: {c: {memory: 16MiB, disk: 1GiB}}`, "caches.c.disk: disk bounds a cache in dir"},
	} {
		conf := "version: 1\nlisteners: [{address: 127.0.0.1:1}]\nservices: {web: {routes: [{upstream: a, cache: c}]}}\nupstreams: {a: {backends: [127.0.0.1:2]}}\n" + tc.conf + "\n"
		_, err := Parse([]byte(conf), "test.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.conf, err, tc.want)
		}
	}
	conf := "version: 1\nlisteners: [{address: 127.0.0.1:1}]\nservices: {web: {routes: [{respond: {body: x}, cache: c}, {upstream: a, cache: nope}]}}\nupstreams: {a: {backends: [127.0.0.1:2]}}\ncaches: {c: {memory: 2MiB}}\n"
	_, err := Parse([]byte(conf), "test.yaml")
	for _, want := range []string{"routes[0].cache: only a route to an upstream caches", `routes[1].cache: no cache named "nope"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"512": 512, "64k": 64000, "10MB": 10_000_000, "64MiB": 64 << 20, "1GiB": 1 << 30, " 2 tib ": 2 << 40} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "1 PB", "99999999999999999999"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}
