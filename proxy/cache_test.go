package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pingora-go/pingora/cache"
	"github.com/pingora-go/pingora/cache/storage/memory"
	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/upstream"
)

// cacheApp is a proxy program with the cache on for every request (Options.Cache), whose
// cache phases tests may override through function fields.
type cacheApp struct {
	proxy.Defaults[testCtx]
	peer        *upstream.Peer
	purge       bool
	hitFilter   func(m *cache.Meta, fresh bool) proxy.ForcedFreshness
	storeFilter func(resp *header.ResponseHeader) proxy.ResponseCacheable
	phases      sync.Map // request target → last proxy.CachePhase, background ones as "bg "+target
}

func (a *cacheApp) NewCtx() testCtx { return testCtx{} }

func (a *cacheApp) UpstreamPeer(*proxy.Session, *testCtx) (*upstream.Peer, error) {
	return a.peer, nil
}

func (a *cacheApp) IsPurge(s *proxy.Session, _ *testCtx) bool {
	return a.purge && proxy.IsPurgeMethod(s)
}

func (a *cacheApp) CacheHitFilter(_ *proxy.Session, m *cache.Meta, fresh bool, _ *testCtx) (proxy.ForcedFreshness, error) {
	if a.hitFilter != nil {
		return a.hitFilter(m, fresh), nil
	}
	return proxy.NoForce, nil
}

func (a *cacheApp) ResponseCacheFilter(_ *proxy.Session, resp *header.ResponseHeader, _ *testCtx) (proxy.ResponseCacheable, error) {
	if a.storeFilter != nil {
		return a.storeFilter(resp), nil
	}
	return proxy.StoreByRules, nil
}

func (a *cacheApp) Logging(s *proxy.Session, _ error, _ *testCtx) {
	k := string(s.Req().Target())
	if s.Cache().Background() {
		k = "bg " + k
	}
	a.phases.Store(k, s.Cache().Phase())
}

// cacheRig is a proxy with a cache in front of a counting origin on 127.0.0.1.
type cacheRig struct {
	t      *testing.T
	app    *cacheApp
	c      *cache.Cache
	addr   string
	origin *countingServer
	hits   atomic.Int64 // requests the origin answered
	mu     sync.Mutex
	h      http.HandlerFunc
	client *http.Client
}

func newCacheRig(t *testing.T, cfg cache.Config, opts proxy.Options, h http.HandlerFunc) *cacheRig {
	t.Helper()
	if cfg.Storage == nil {
		cfg.Storage = memory.New(memory.Config{MaxBytes: 64 << 20})
	}
	c, err := cache.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &cacheRig{t: t, c: c, h: h}
	r.origin = startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		r.mu.Lock()
		h := r.h
		r.mu.Unlock()
		h(w, req)
	}))
	r.app = &cacheApp{peer: mustPeer(t, r.origin.addr)}
	opts.Cache = c
	r.addr, _ = startProxy(t, r.app, opts)
	r.client = &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 256}}
	t.Cleanup(r.client.CloseIdleConnections)
	return r
}

func (r *cacheRig) setHandler(h http.HandlerFunc) {
	r.mu.Lock()
	r.h = h
	r.mu.Unlock()
}

// reply is a response the client read whole.
type reply struct {
	status int
	head   http.Header
	body   string
}

func (r *reply) cs(s string) bool { return strings.Contains(r.head.Get("Cache-Status"), s) }

func (r *cacheRig) do(method, path string, lines ...string) *reply {
	r.t.Helper()
	rep, err := r.try(context.Background(), method, path, lines...)
	if err != nil {
		r.t.Fatal(err)
	}
	return rep
}

func (r *cacheRig) try(ctx context.Context, method, path string, lines ...string) (*reply, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+r.addr+path, nil)
	if err != nil {
		return nil, err
	}
	for _, l := range lines {
		n, v, _ := strings.Cut(l, ":")
		req.Header.Add(n, strings.TrimSpace(v))
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &reply{status: resp.StatusCode, head: resp.Header, body: string(b)}, nil
}

// phaseIs reports whether the Logging phase of the last request for target saw the cache
// phase want, waiting a little for it: Logging runs after the response is sent.
func (r *cacheRig) phaseIs(target string, want proxy.CachePhase) bool {
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		v, _ := r.app.phases.Load(target)
		if p, _ := v.(proxy.CachePhase); p == want || time.Now().After(deadline) {
			return p == want
		}
	}
}

func maxAge60(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("ETag", `"e1"`)
		io.WriteString(w, body)
	}
}

func TestCacheMissThenHit(t *testing.T) {
	r := newCacheRig(t, cache.Config{}, proxy.Options{}, maxAge60("hello"))
	m := r.do("GET", "/a")
	if m.status != 200 || m.body != "hello" || !m.cs("fwd=uri-miss") || !m.cs("stored") || !r.phaseIs("/a", proxy.CacheMiss) {
		t.Fatalf("miss: %d %q %q", m.status, m.body, m.head.Get("Cache-Status"))
	}
	h := r.do("GET", "/a")
	if h.status != 200 || h.body != "hello" || !h.cs("hit") || h.head.Get("Age") == "" || h.head.Get("Content-Length") != "5" || !r.phaseIs("/a", proxy.CacheHit) {
		t.Fatalf("hit: %d %q %v", h.status, h.body, h.head)
	}
	if n := r.hits.Load(); n != 1 {
		t.Fatalf("origin saw %d requests", n)
	}
	// HEAD is answered from the stored GET.
	if hd := r.do("HEAD", "/a"); hd.status != 200 || hd.body != "" || hd.head.Get("Content-Length") != "5" || !hd.cs("hit") || r.hits.Load() != 1 {
		t.Fatalf("HEAD from the stored GET: %d %v", hd.status, hd.head)
	}
	// A HEAD miss goes upstream as GET and stores the response for both.
	var method atomic.Value
	r.setHandler(func(w http.ResponseWriter, req *http.Request) {
		method.Store(req.Method)
		maxAge60("bee")(w, req)
	})
	if hd := r.do("HEAD", "/b"); hd.status != 200 || hd.body != "" || hd.head.Get("Content-Length") != "3" || method.Load() != "GET" {
		t.Fatalf("HEAD miss: %d %v %v", hd.status, hd.head, method.Load())
	}
	if g := r.do("GET", "/b"); g.body != "bee" || !g.cs("hit") {
		t.Fatalf("GET after a HEAD miss: %q %q", g.body, g.head.Get("Cache-Status"))
	}
	st := r.c.Stats()
	if st.Hits != 3 || st.Misses != 2 || st.Stored != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCacheNotStored(t *testing.T) {
	r := newCacheRig(t, cache.Config{}, proxy.Options{}, func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/private":
			w.Header().Set("Cache-Control", "private, max-age=60")
		case "/nostore":
			w.Header().Set("Cache-Control", "no-store")
		case "/vary-star":
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Vary", "*")
		case "/cookie":
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Set-Cookie", "a=b")
		}
		io.WriteString(w, "x")
	})
	for _, p := range []string{"/private", "/nostore", "/vary-star", "/cookie"} {
		first := r.do("GET", p)
		if first.cs("stored") || !first.cs("fwd=uri-miss") {
			t.Errorf("%s: %q", p, first.head.Get("Cache-Status"))
		}
		if again := r.do("GET", p); again.cs("hit") {
			t.Errorf("%s served from the cache", p)
		}
	}
	if n := r.hits.Load(); n != 8 {
		t.Fatalf("origin saw %d requests", n)
	}
	r.setHandler(maxAge60("secret"))
	r.do("GET", "/auth", "Authorization: Bearer x")
	if again := r.do("GET", "/auth"); again.cs("hit") {
		t.Fatal("a response to an authorized request was shared")
	}
	// A response the program declines to store.
	r.app.storeFilter = func(*header.ResponseHeader) proxy.ResponseCacheable { return proxy.DoNotStore }
	r.do("GET", "/declined")
	if again := r.do("GET", "/declined"); again.cs("hit") || !again.cs("response_cache_filter") {
		t.Fatalf("declined response: %q", again.head.Get("Cache-Status"))
	}
}

func TestCacheVary(t *testing.T) {
	r := newCacheRig(t, cache.Config{}, proxy.Options{}, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language")
		io.WriteString(w, "lang="+req.Header.Get("Accept-Language"))
	})
	r.do("GET", "/v", "Accept-Language: en")
	r.do("GET", "/v", "Accept-Language: fr")
	for _, tc := range []struct{ lang, want string }{{"en", "lang=en"}, {"fr", "lang=fr"}} {
		got := r.do("GET", "/v", "Accept-Language: "+tc.lang)
		if got.body != tc.want || !got.cs("hit") {
			t.Fatalf("%s: %q %q", tc.lang, got.body, got.head.Get("Cache-Status"))
		}
	}
	if got := r.do("GET", "/v", "Accept-Language: de"); got.body != "lang=de" || !got.cs("fwd=vary-miss") {
		t.Fatalf("new variant: %q %q", got.body, got.head.Get("Cache-Status"))
	}
	if n := r.hits.Load(); n != 3 {
		t.Fatalf("origin saw %d requests", n)
	}
}

func TestCacheRevalidation(t *testing.T) {
	var conditional atomic.Int64
	r := newCacheRig(t, cache.Config{}, proxy.Options{}, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "max-age=0")
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("X-Validated", fmt.Sprint(req.Header.Get("If-None-Match") != ""))
		if req.Header.Get("If-None-Match") == `"v1"` {
			conditional.Add(1)
			w.WriteHeader(304)
			return
		}
		io.WriteString(w, "body-v1")
	})
	r.do("GET", "/r")
	got := r.do("GET", "/r")
	if got.status != 200 || got.body != "body-v1" || conditional.Load() != 1 || got.head.Get("X-Validated") != "true" ||
		!got.cs("fwd=stale") || !got.cs("fwd-status=304") || !r.phaseIs("/r", proxy.CacheRevalidated) {
		t.Fatalf("after a 304: %d %q %v", got.status, got.body, got.head)
	}
	// The client's own validators are answered by the proxy, not forwarded.
	if nm := r.do("GET", "/r", `If-None-Match: "v1"`); nm.status != 304 || nm.body != "" {
		t.Fatalf("client conditional on a revalidation: %d", nm.status)
	}
	// The representation changed: a 200 to the conditional request replaces it.
	r.setHandler(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("ETag", `"v2"`)
		io.WriteString(w, "body-v2")
	})
	if got := r.do("GET", "/r"); got.body != "body-v2" || !got.cs("fwd=stale") || !got.cs("stored") || !r.phaseIs("/r", proxy.CacheExpired) {
		t.Fatalf("replacement: %q %q", got.body, got.head.Get("Cache-Status"))
	}
	if got := r.do("GET", "/r"); got.body != "body-v2" || !got.cs("hit") {
		t.Fatalf("after the replacement: %q", got.body)
	}
	if st := r.c.Stats(); st.Revalidated304 != 2 || st.Revalidated200 != 1 {
		t.Fatalf("stats %+v", st)
	}
	// A hit forced to revalidate by the program.
	r.app.hitFilter = func(*cache.Meta, bool) proxy.ForcedFreshness { return proxy.ForceExpired }
	before := r.hits.Load()
	if got := r.do("GET", "/r"); got.body != "body-v2" || r.hits.Load() != before+1 {
		t.Fatalf("forced revalidation: %q", got.body)
	}
}

func TestCacheConditionalAndRange(t *testing.T) {
	const body = "0123456789"
	r := newCacheRig(t, cache.Config{}, proxy.Options{}, maxAge60(body))
	// A miss with Range: the whole object is fetched and stored, the client gets its range.
	var gotRange atomic.Value
	r.setHandler(func(w http.ResponseWriter, req *http.Request) {
		gotRange.Store(req.Header.Get("Range") + req.Header.Get("If-None-Match"))
		maxAge60(body)(w, req)
	})
	m := r.do("GET", "/c", "Range: bytes=2-4")
	if m.status != 206 || m.body != "234" || m.head.Get("Content-Range") != "bytes 2-4/10" || !m.cs("stored") || gotRange.Load() != "" {
		t.Fatalf("range on a miss: %d %q %v upstream range %q", m.status, m.body, m.head, gotRange.Load())
	}
	cases := []struct {
		name   string
		lines  []string
		status int
		body   string
		check  func(h http.Header) bool
	}{
		{"whole", nil, 200, body, func(h http.Header) bool { return h.Get("Accept-Ranges") == "bytes" }},
		{"not modified", []string{`If-None-Match: "e1"`}, 304, "", nil},
		{"if-match fails", []string{`If-Match: "zzz"`}, 412, "", nil},
		{"single range", []string{"Range: bytes=-3"}, 206, "789", func(h http.Header) bool { return h.Get("Content-Range") == "bytes 7-9/10" }},
		{"unsatisfiable", []string{"Range: bytes=20-"}, 416, "", func(h http.Header) bool { return h.Get("Content-Range") == "bytes */10" }},
		{"if-range mismatch", []string{"Range: bytes=0-0", `If-Range: "other"`}, 200, body, nil},
	}
	for _, tc := range cases {
		got := r.do("GET", "/c", tc.lines...)
		if got.status != tc.status || got.body != tc.body || !got.cs("hit") || (tc.check != nil && !tc.check(got.head)) {
			t.Errorf("%s: %d %q %v", tc.name, got.status, got.body, got.head)
		}
	}
	multi := r.do("GET", "/c", "Range: bytes=0-1,5-6")
	if multi.status != 206 || !strings.HasPrefix(multi.head.Get("Content-Type"), "multipart/byteranges") ||
		!strings.Contains(multi.body, "01") || !strings.Contains(multi.body, "56") || !strings.Contains(multi.body, "Content-Range: bytes 5-6/10") {
		t.Fatalf("multipart: %d %v %q", multi.status, multi.head, multi.body)
	}
	if n := r.hits.Load(); n != 1 {
		t.Fatalf("origin saw %d requests", n)
	}
	// On another miss: multiple ranges and a client conditional answered from the upstream 200.
	mm := r.do("GET", "/d", "Range: bytes=0-1,8-")
	if mm.status != 206 || !strings.Contains(mm.body, "Content-Range: bytes 8-9/10\r\n\r\n89") || fmt.Sprint(len(mm.body)) != mm.head.Get("Content-Length") {
		t.Fatalf("multipart on a miss: %d %v %q", mm.status, mm.head, mm.body)
	}
	if nm := r.do("GET", "/e", `If-None-Match: "e1"`); nm.status != 304 || !nm.cs("stored") {
		t.Fatalf("conditional on a miss: %d %v", nm.status, nm.head)
	}
	if got := r.do("GET", "/e"); got.body != body || !got.cs("hit") {
		t.Fatalf("after a conditional miss: %q %q", got.body, got.head.Get("Cache-Status"))
	}
}

func TestCacheOnlyIfCached(t *testing.T) {
	r := newCacheRig(t, cache.Config{}, proxy.Options{}, maxAge60("x"))
	if got := r.do("GET", "/o", "Cache-Control: only-if-cached"); got.status != 504 || !got.cs("only-if-cached") {
		t.Fatalf("only-if-cached miss: %d %v", got.status, got.head)
	}
	r.do("GET", "/o")
	if got := r.do("GET", "/o", "Cache-Control: only-if-cached"); got.status != 200 || !got.cs("hit") {
		t.Fatalf("only-if-cached hit: %d", got.status)
	}
	if n := r.hits.Load(); n != 1 {
		t.Fatalf("origin saw %d requests", n)
	}
}

// clock is a settable time source for the cache.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestCacheStaleWhileRevalidate(t *testing.T) {
	clk := &clock{now: time.Now()}
	var gen atomic.Int64
	release := make(chan struct{})
	r := newCacheRig(t, cache.Config{Now: clk.Now}, proxy.Options{}, func(w http.ResponseWriter, req *http.Request) {
		g := gen.Add(1)
		if g > 1 {
			select { // the background refresh is slow
			case <-release:
			case <-time.After(10 * time.Second):
			}
		}
		w.Header().Set("Date", string(cache.AppendHTTPDate(nil, clk.Now())))
		w.Header().Set("Cache-Control", "max-age=10, stale-while-revalidate=60")
		fmt.Fprint(w, "gen", g)
	})
	r.do("GET", "/s")
	clk.advance(20 * time.Second)
	for i := 0; i < 5; i++ {
		got := r.do("GET", "/s")
		if got.body != "gen1" || !got.cs("stale-while-revalidate") {
			t.Fatalf("stale not served at once: %q %q", got.body, got.head.Get("Cache-Status"))
		}
	}
	close(release)
	waitFor(t, func() bool { return r.phaseIs("bg /s", proxy.CacheExpired) && r.c.Stats().Stored == 2 })
	if n := r.hits.Load(); n != 2 {
		t.Fatalf("one background refresh expected, origin saw %d requests", n)
	}
	if got := r.do("GET", "/s"); got.body != "gen2" || !got.cs("hit") || got.cs("stale") {
		t.Fatalf("after the refresh: %q %q", got.body, got.head.Get("Cache-Status"))
	}
}

func TestCacheStaleIfError(t *testing.T) {
	clk := &clock{now: time.Now()}
	r := newCacheRig(t, cache.Config{Now: clk.Now}, proxy.Options{}, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "max-age=10, stale-if-error=60")
		w.Header().Set("ETag", `"good"`)
		io.WriteString(w, "good")
	})
	r.do("GET", "/e")
	r.setHandler(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(503)
		io.WriteString(w, "down for maintenance")
	})
	clk.advance(30 * time.Second)
	if got := r.do("GET", "/e"); got.status != 200 || got.body != "good" || !got.cs("stale-if-error") || !r.phaseIs("/e", proxy.CacheStaleHit) {
		t.Fatalf("stale-if-error on a 503: %d %q %v", got.status, got.body, got.head)
	}
	// The origin gone: connection refused.
	r.origin.Close()
	if got := r.do("GET", "/e"); got.status != 200 || got.body != "good" || !got.cs("stale-if-error") {
		t.Fatalf("stale-if-error on a connection failure: %d %q", got.status, got.body)
	}
	clk.advance(60 * time.Second)
	if got := r.do("GET", "/e"); got.status != 502 {
		t.Fatalf("past the window: %d", got.status)
	}
}

func TestCacheMaxObjectSize(t *testing.T) {
	big := strings.Repeat("z", 100000)
	r := newCacheRig(t, cache.Config{MaxObjectSize: 50000}, proxy.Options{}, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		if req.URL.Path == "/chunked" {
			w.(http.Flusher).Flush() // no Content-Length: the size shows while storing
		}
		io.WriteString(w, big)
	})
	for _, p := range []string{"/known", "/chunked"} {
		if got := r.do("GET", p); got.body != big {
			t.Fatalf("%s: the response must stream through whole (%d bytes)", p, len(got.body))
		}
		if got := r.do("GET", p); got.cs("hit") || got.body != big {
			t.Fatalf("%s: stored over the limit", p)
		}
	}
	if st := r.c.Stats(); st.TooLarge != 4 || st.Usage.Items != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCacheInvalidation(t *testing.T) {
	r := newCacheRig(t, cache.Config{}, proxy.Options{}, func(w http.ResponseWriter, req *http.Request) {
		if req.Method == "POST" {
			w.Header().Set("Location", "/other")
			w.WriteHeader(201)
			return
		}
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, req.URL.Path)
	})
	for _, p := range []string{"/item", "/other", "/unrelated"} {
		r.do("GET", p)
	}
	if post := r.do("POST", "/item"); post.status != 201 || !post.cs("fwd=method") || !r.phaseIs("/item", proxy.CacheBypass) {
		t.Fatalf("POST: %d %v", post.status, post.head)
	}
	for p, hit := range map[string]bool{"/item": false, "/other": false, "/unrelated": true} {
		if got := r.do("GET", p); got.cs("hit") != hit {
			t.Errorf("%s: hit=%v after POST", p, !hit)
		}
	}
	if st := r.c.Stats(); st.Invalidations != 2 {
		t.Fatalf("invalidations %d", st.Invalidations)
	}
}

func TestCachePurge(t *testing.T) {
	r := newCacheRig(t, cache.Config{}, proxy.Options{}, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Surrogate-Key", "all "+strings.TrimPrefix(req.URL.Path, "/"))
		io.WriteString(w, "x")
	})
	// Without an IsPurge phase, PURGE is an ordinary request.
	if got := r.do("PURGE", "/p1"); got.cs("hit") || r.hits.Load() != 1 {
		t.Fatalf("PURGE without IsPurge: %d", got.status)
	}
	r.app.purge = true
	for _, p := range []string{"/p1", "/p2", "/p3"} {
		r.do("GET", p)
	}
	before := r.hits.Load()
	if got := r.do("PURGE", "/p1"); got.status != 200 || got.head.Get("Cache-Control") != "private, no-store" {
		t.Fatalf("purge: %d %v", got.status, got.head)
	}
	if got := r.do("PURGE", "/p1"); got.status != 404 {
		t.Fatalf("purge again: %d", got.status)
	}
	if r.hits.Load() != before {
		t.Fatal("a purge went upstream")
	}
	if got := r.do("GET", "/p1"); got.cs("hit") {
		t.Fatal("purged entry served")
	}
	if got := r.do("PURGE", "/anything", "Surrogate-Key: p2"); got.status != 200 {
		t.Fatalf("tag purge: %d", got.status)
	}
	if got := r.do("GET", "/p2"); got.cs("hit") {
		t.Fatal("tagged entry survived")
	}
	if got := r.do("GET", "/p3"); !got.cs("hit") {
		t.Fatal("untagged entry purged")
	}
	if st := r.c.Stats(); st.Purges != 2 {
		t.Fatalf("purges %d", st.Purges)
	}
}

// purgeOnly answers PURGE with the cache off: 405.
type purgeOnly struct{ testApp }

func (*purgeOnly) IsPurge(s *proxy.Session, _ *testCtx) bool { return proxy.IsPurgeMethod(s) }

func TestCachePurgeDisabled(t *testing.T) {
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "x") }))
	app := &purgeOnly{testApp{peers: []*upstream.Peer{mustPeer(t, origin.addr)}}}
	addr, _ := startProxy(t, app, proxy.Options{})
	req, _ := http.NewRequest("PURGE", "http://"+addr+"/x", nil)
	resp, err := newClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Fatalf("purge with the cache off: %d", resp.StatusCode)
	}
}

// TestCacheHerd: 200 concurrent requests for one cold key make exactly one origin request; the
// others wait for it and are served from the entry while it is still being written.
func TestCacheHerd(t *testing.T) {
	const clients = 200
	body := bytes.Repeat([]byte("0123456789abcdef"), 8192) // 128 KiB
	start := make(chan struct{})
	r := newCacheRig(t, cache.Config{LockTimeout: 20 * time.Second}, proxy.Options{}, func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-start:
		case <-time.After(20 * time.Second):
		}
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		for i := 0; i < len(body); i += 16384 {
			w.Write(body[i : i+16384])
			w.(http.Flusher).Flush()
			time.Sleep(5 * time.Millisecond)
		}
	})
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			got, err := r.try(ctx, "GET", "/herd")
			if err != nil {
				errs <- err
				return
			}
			if got.status != 200 || got.body != string(body) {
				errs <- fmt.Errorf("status %d, body of %d bytes", got.status, len(got.body))
			}
		}()
	}
	waitFor(t, func() bool { return r.c.Stats().LockWaits >= clients-1 })
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := r.hits.Load(); n != 1 {
		t.Fatalf("origin saw %d requests for one cold key", n)
	}
	if st := r.c.Stats(); st.Hits != clients-1 || st.LockTimeouts != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCacheH2(t *testing.T) {
	r := newCacheRig(t, cache.Config{}, proxy.Options{H2C: true}, maxAge60("over h2"))
	client := h2cClient()
	get := func(lines ...string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", "http://"+r.addr+"/h2", nil)
		for _, l := range lines {
			n, v, _ := strings.Cut(l, ":")
			req.Header.Add(n, strings.TrimSpace(v))
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, b := get()
	if resp.ProtoMajor != 2 || b != "over h2" || !strings.Contains(resp.Header.Get("Cache-Status"), "stored") {
		t.Fatalf("miss over h2: %s %q %v", resp.Proto, b, resp.Header)
	}
	resp, b = get()
	if b != "over h2" || !strings.Contains(resp.Header.Get("Cache-Status"), "hit") || resp.Header.Get("Age") == "" {
		t.Fatalf("hit over h2: %q %v", b, resp.Header)
	}
	resp, b = get("Range: bytes=5-6")
	if resp.StatusCode != 206 || b != "h2" {
		t.Fatalf("range over h2: %d %q", resp.StatusCode, b)
	}
	if n := r.hits.Load(); n != 1 {
		t.Fatalf("origin saw %d requests", n)
	}
}

// TestCacheOffUntouched: without a cache the engine forwards conditionals and ranges as they
// are and adds no Cache-Status.
func TestCacheOffUntouched(t *testing.T) {
	var seen atomic.Value
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		seen.Store(req.Method + " " + req.Header.Get("Range"))
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "x")
	}))
	app := &testApp{peers: []*upstream.Peer{mustPeer(t, origin.addr)}}
	addr, _ := startProxy(t, app, proxy.Options{})
	c := dial(t, addr)
	io.WriteString(c, "HEAD /x HTTP/1.1\r\nHost: a\r\nRange: bytes=0-0\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, _ := c.Read(buf)
	if strings.Contains(string(buf[:n]), "Cache-Status") || seen.Load() != "HEAD bytes=0-0" {
		t.Fatalf("cache off: %q, upstream saw %v", buf[:n], seen.Load())
	}
	var _ net.Conn = c
}

// partCacheApp turns the cache on only for targets under /c.
type partCacheApp struct {
	cacheApp
	c *cache.Cache
}

func (a *partCacheApp) RequestCacheFilter(s *proxy.Session, _ *testCtx) error {
	if bytes.HasPrefix(s.Req().Target(), []byte("/c")) {
		s.EnableCache(a.c)
	}
	return nil
}

func (a *partCacheApp) Logging(s *proxy.Session, err error, ctx *testCtx) {
	a.cacheApp.Logging(s, err, ctx)
	stored, _ := s.Cache().Stored()
	a.phases.Store("state "+string(s.Req().Target()), fmt.Sprint(s.Cache().Enabled(), s.Cache().Key() == cache.Key{}, stored))
}

// TestCacheStateClearedBetweenRequests: on one connection, a request with the cache on, then
// one with it off, then the first again: the second finds no trace of the first's cache state
// (its session is the connection's, kept), and the third has the cache on again.
func TestCacheStateClearedBetweenRequests(t *testing.T) {
	c, err := cache.New(cache.Config{Storage: memory.New(memory.Config{MaxBytes: 1 << 20})})
	if err != nil {
		t.Fatal(err)
	}
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "body of "+r.URL.Path)
	}))
	app := &partCacheApp{cacheApp: cacheApp{peer: mustPeer(t, origin.addr)}, c: c}
	addr, _ := startProxy(t, app, proxy.Options{})
	conn := dial(t, addr)
	br := bufio.NewReader(conn)
	for _, target := range []string{"/c1", "/n", "/c1"} {
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: example\r\n\r\n", target)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "body of "+target {
			t.Fatalf("%s: %q", target, body)
		}
	}
	want := map[string]any{
		"state /n": "false true false",
		"/n":       proxy.CacheOff,
	}
	for k, w := range want {
		if got, _ := app.phases.Load(k); got != w {
			t.Errorf("%s: %v, want %v", k, got, w)
		}
	}
	// The third request had the cache on again: a hit, or a miss when the store of the first
	// was not yet visible.
	if got, _ := app.phases.Load("/c1"); got != proxy.CacheHit && got != proxy.CacheMiss {
		t.Errorf("/c1 the second time: %v", got)
	}
	if got, _ := app.phases.Load("state /c1"); !strings.HasPrefix(got.(string), "true false") {
		t.Errorf("state of /c1 the second time: %v (enabled, key empty, stored)", got)
	}
}
