package cache_test

import (
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
)

// origin is a real HTTP server on 127.0.0.1 whose handler a test sets, counting requests.
type origin struct {
	addr    string
	count   atomic.Int64
	mu      sync.Mutex
	handler http.HandlerFunc
	last    *http.Request
}

func newOrigin(t *testing.T, h http.HandlerFunc) *origin {
	t.Helper()
	o := &origin{handler: h}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.count.Add(1)
		o.mu.Lock()
		h := o.handler
		o.last = r
		o.mu.Unlock()
		h(w, r)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return o
}

func (o *origin) set(h http.HandlerFunc) {
	o.mu.Lock()
	o.handler = h
	o.mu.Unlock()
}

func (o *origin) lastRequest() *http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.last
}

// result is what the client got.
type result struct {
	head *header.ResponseHeader
	body []byte
}

func (r *result) status() int               { return r.head.Status }
func (r *result) get(name string) string    { return r.head.Value(name) }
func (r *result) cacheStatus(s string) bool { return strings.Contains(r.get("Cache-Status"), s) }

// harness plays the proxy: it runs a request through the cache the way the proxy phases will,
// with a real origin.
type harness struct {
	t      *testing.T
	c      *cache.Cache
	o      *origin
	client *http.Client
	bg     sync.WaitGroup
	now    func() time.Time
}

func newHarness(t *testing.T, cfg cache.Config, h http.HandlerFunc) *harness {
	if cfg.Storage == nil {
		cfg.Storage = memory.New(memory.Config{MaxBytes: 64 << 20})
	}
	c, err := cache.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	hs := &harness{t: t, c: c, o: newOrigin(t, h), now: now,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 300}}}
	t.Cleanup(hs.bg.Wait)
	return hs
}

func request(method, target string, lines ...string) *header.RequestHeader {
	r := header.NewRequest(method, target)
	r.Append("Host", "example.test")
	for _, l := range lines {
		n, v, _ := strings.Cut(l, ":")
		r.Append(n, strings.TrimSpace(v))
	}
	return r
}

// do sends req through the cache.
func (h *harness) do(req *header.RequestHeader) *result {
	h.t.Helper()
	res, err := h.serve(context.Background(), req)
	if err != nil {
		h.t.Fatal(err)
	}
	return res
}

func (h *harness) serve(ctx context.Context, req *header.RequestHeader) (*result, error) {
	c := h.c
	if !cache.RequestCacheable(req) {
		up, err := h.upstream(ctx, req)
		if err != nil {
			return nil, err
		}
		res, err := h.readAll(up, nil, nil)
		if err == nil {
			_, err = c.Invalidate(ctx, "http", req, res.head)
		}
		return res, err
	}
	e, err := c.Get(ctx, c.Key("http", req), req)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	if e.OnlyIfCachedFails() {
		return &result{head: header.NewResponse(504)}, nil
	}
	if e.Freshness.Servable() {
		if bg := e.Background(); bg != nil {
			h.bg.Add(1)
			go func() {
				defer h.bg.Done()
				defer bg.Close()
				_, _ = h.fetch(context.Background(), bg, req)
			}()
		}
		return h.hit(e, req, false)
	}
	return h.fetch(ctx, e, req)
}

// fetch goes upstream for e: conditionally when something is stored.
func (h *harness) fetch(ctx context.Context, e *cache.Entry, req *header.RequestHeader) (*result, error) {
	c := h.c
	up := &header.RequestHeader{}
	up.CopyFrom(req)
	if e.Meta != nil {
		cache.ConditionalRequest(up, e.Meta)
	} else {
		cache.UpstreamRequest(up)
	}
	reqTime := h.now()
	resp, err := h.upstream(ctx, up)
	respTime := h.now()
	if err != nil || resp.StatusCode >= 500 {
		if e.Meta != nil && e.Body != nil && c.StaleIfError(e) {
			if resp != nil {
				resp.Body.Close()
			}
			return h.hit(e, req, true)
		}
		if err != nil {
			return nil, err
		}
	}
	head := toHeader(resp)
	if head.Status == 304 && e.Meta != nil {
		resp.Body.Close()
		ok, err := c.Revalidated(ctx, e, up, head, reqTime, respTime)
		if err != nil {
			return nil, err
		}
		if ok && e.Body != nil {
			return h.hit(e, req, false)
		}
		if ok {
			return &result{head: head}, nil
		}
		return nil, fmt.Errorf("304 for another representation")
	}
	w, _, err := c.Store(ctx, e, req, up, head, reqTime, respTime)
	if err != nil {
		return nil, err
	}
	cs := c.MissStatus(e, head.Status, w != nil, "")
	cache.AppendCacheStatus(&head.Fields, &cs, nil)
	return h.readAll(resp, head, w)
}

func (h *harness) upstream(ctx context.Context, r *header.RequestHeader) (*http.Response, error) {
	hr, err := http.NewRequestWithContext(ctx, string(r.Method()), "http://"+h.o.addr+string(r.Target()), nil)
	if err != nil {
		return nil, err
	}
	for _, f := range r.All() {
		if header.EqualFold(f.Name, "Host") {
			hr.Host = string(f.Value)
			continue
		}
		hr.Header.Add(string(f.Name), string(f.Value))
	}
	return h.client.Do(hr)
}

func toHeader(resp *http.Response) *header.ResponseHeader {
	head := header.NewResponse(resp.StatusCode)
	for n, vs := range resp.Header {
		for _, v := range vs {
			head.Append(n, v)
		}
	}
	if resp.ContentLength >= 0 && !head.Has("Content-Length") && resp.StatusCode != 304 {
		head.Append("Content-Length", fmt.Sprint(resp.ContentLength))
	}
	return head
}

// readAll streams the upstream body to the "client" and into the cache writer, if any.
func (h *harness) readAll(resp *http.Response, head *header.ResponseHeader, w *cache.Writer) (*result, error) {
	defer resp.Body.Close()
	if head == nil {
		head = toHeader(resp)
	}
	var out bytes.Buffer
	buf := make([]byte, 4096)
	ctx := context.Background()
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			out.Write(buf[:n])
			if w != nil {
				if werr := w.Write(ctx, buf[:n]); werr != nil {
					w = nil // too large or storage failure: the response goes on uncached
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			if w != nil {
				w.Abort()
			}
			return nil, err
		}
	}
	if w != nil {
		if err := w.Finish(ctx); err != nil {
			return nil, err
		}
	}
	return &result{head: head, body: out.Bytes()}, nil
}

func (h *harness) hit(e *cache.Entry, req *header.RequestHeader, staleIfError bool) (*result, error) {
	var head header.ResponseHeader
	var plan cache.RangePlan
	body := h.c.ServeHit(&head, e, req, &plan, staleIfError)
	res := &result{head: &head}
	if !body {
		return res, nil
	}
	var out bytes.Buffer
	err := plan.CopyBody(context.Background(), e.Body, make([]byte, 1000), func(b []byte) error {
		out.Write(b)
		return nil
	})
	res.body = out.Bytes()
	return res, err
}

func TestMissThenHit(t *testing.T) {
	h := newHarness(t, cache.Config{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "hello")
	})
	r1 := h.do(request("GET", "/a"))
	if r1.status() != 200 || string(r1.body) != "hello" || !r1.cacheStatus("fwd=uri-miss") || !r1.cacheStatus("stored") {
		t.Fatalf("miss: %d %q %q", r1.status(), r1.body, r1.get("Cache-Status"))
	}
	r2 := h.do(request("GET", "/a"))
	if r2.status() != 200 || string(r2.body) != "hello" || !r2.cacheStatus("hit") || r2.get("Age") == "" || r2.get("Content-Length") != "5" {
		t.Fatalf("hit:\n%s", r2.head)
	}
	if n := h.o.count.Load(); n != 1 {
		t.Fatalf("origin saw %d requests", n)
	}
	// HEAD is served from the stored GET, without a body.
	r3 := h.do(request("HEAD", "/a"))
	if r3.status() != 200 || len(r3.body) != 0 || r3.get("Content-Length") != "5" || h.o.count.Load() != 1 {
		t.Fatalf("HEAD from a stored GET: %d %q", r3.status(), r3.body)
	}
	// A HEAD miss is fetched as GET and stores the response for both.
	r4 := h.do(request("HEAD", "/b"))
	if r4.status() != 200 || h.o.lastRequest().Method != "GET" {
		t.Fatal("HEAD miss not fetched as GET")
	}
	if r5 := h.do(request("GET", "/b")); string(r5.body) != "hello" || !r5.cacheStatus("hit") {
		t.Fatal("GET after a HEAD miss")
	}
	st := h.c.Stats()
	if st.Hits != 3 || st.Misses != 2 || st.Stored != 2 || st.BytesStored == 0 || st.Usage.Items != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestNotStored(t *testing.T) {
	h := newHarness(t, cache.Config{}, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/private":
			w.Header().Set("Cache-Control", "private, max-age=60")
		case "/nostore":
			w.Header().Set("Cache-Control", "no-store")
		case "/vary-star":
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Vary", "*")
		}
		fmt.Fprint(w, "x")
	})
	for _, p := range []string{"/private", "/nostore", "/vary-star"} {
		h.do(request("GET", p))
		if r := h.do(request("GET", p)); r.cacheStatus("hit") {
			t.Fatalf("%s served from cache", p)
		}
	}
	if n := h.o.count.Load(); n != 6 {
		t.Fatalf("origin saw %d requests", n)
	}
	// Authorization (RFC 9111 §3.5).
	h.o.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, "secret")
	})
	h.do(request("GET", "/auth", "Authorization: Bearer x"))
	if r := h.do(request("GET", "/auth")); r.cacheStatus("hit") {
		t.Fatal("an authorized response was shared")
	}
}

func TestVaryVariants(t *testing.T) {
	h := newHarness(t, cache.Config{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language")
		fmt.Fprint(w, "lang="+r.Header.Get("Accept-Language"))
	})
	h.do(request("GET", "/v", "Accept-Language: en"))
	h.do(request("GET", "/v", "Accept-Language: fr"))
	for _, tc := range []struct{ lang, want string }{{"en", "lang=en"}, {"fr", "lang=fr"}, {"  en ", "lang=en"}} {
		r := h.do(request("GET", "/v", "Accept-Language: "+tc.lang))
		if string(r.body) != tc.want || !r.cacheStatus("hit") {
			t.Fatalf("%q: %q %q", tc.lang, r.body, r.get("Cache-Status"))
		}
	}
	r := h.do(request("GET", "/v", "Accept-Language: de"))
	if string(r.body) != "lang=de" || !r.cacheStatus("fwd=vary-miss") {
		t.Fatalf("new variant: %q %q", r.body, r.get("Cache-Status"))
	}
	if n := h.o.count.Load(); n != 3 {
		t.Fatalf("origin saw %d requests", n)
	}
	// Purging the URI removes every variant.
	if ok, _ := h.c.Purge(context.Background(), h.c.Key("http", request("GET", "/v"))); !ok {
		t.Fatal("purge")
	}
	if r := h.do(request("GET", "/v", "Accept-Language: en")); r.cacheStatus("hit") {
		t.Fatal("variant survived the purge")
	}
}

func TestRevalidation304(t *testing.T) {
	var conditional atomic.Int64
	h := newHarness(t, cache.Config{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=0")
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("X-Gen", fmt.Sprint(r.Header.Get("If-None-Match") != ""))
		if r.Header.Get("If-None-Match") == `"v1"` {
			conditional.Add(1)
			w.WriteHeader(304)
			return
		}
		fmt.Fprint(w, "body-v1")
	})
	h.do(request("GET", "/r"))
	r := h.do(request("GET", "/r"))
	if r.status() != 200 || string(r.body) != "body-v1" || conditional.Load() != 1 || r.get("X-Gen") != "true" {
		t.Fatalf("after a 304: %d %q conditional=%d X-Gen=%q", r.status(), r.body, conditional.Load(), r.get("X-Gen"))
	}
	// The origin changes the representation: a 200 to the conditional request replaces it.
	h.o.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("ETag", `"v2"`)
		fmt.Fprint(w, "body-v2")
	})
	if r := h.do(request("GET", "/r")); string(r.body) != "body-v2" {
		t.Fatalf("replacement: %q", r.body)
	}
	if r := h.do(request("GET", "/r")); string(r.body) != "body-v2" || !r.cacheStatus("hit") {
		t.Fatalf("after the replacement: %q", r.body)
	}
	st := h.c.Stats()
	if st.Revalidated304 != 1 || st.Revalidated200 != 1 {
		t.Fatalf("stats %+v", st)
	}
	// The client's no-cache forces a validation even of a fresh response.
	before := h.o.count.Load()
	if r := h.do(request("GET", "/r", "Cache-Control: no-cache")); !r.cacheStatus("fwd=request") || h.o.count.Load() != before+1 {
		t.Fatalf("no-cache request: %q", r.get("Cache-Status"))
	}
}

func TestClientConditionalAndRange(t *testing.T) {
	h := newHarness(t, cache.Config{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("ETag", `"abc"`)
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "0123456789")
	})
	h.do(request("GET", "/c"))
	if r := h.do(request("GET", "/c", `If-None-Match: "abc"`)); r.status() != 304 || len(r.body) != 0 {
		t.Fatalf("conditional: %d", r.status())
	}
	if r := h.do(request("GET", "/c", `If-Match: "zzz"`)); r.status() != 412 {
		t.Fatalf("If-Match: %d", r.status())
	}
	r := h.do(request("GET", "/c", "Range: bytes=2-4"))
	if r.status() != 206 || string(r.body) != "234" || r.get("Content-Range") != "bytes 2-4/10" {
		t.Fatalf("range: %d %q", r.status(), r.body)
	}
	if r := h.do(request("GET", "/c", "Range: bytes=20-")); r.status() != 416 || r.get("Content-Range") != "bytes */10" {
		t.Fatalf("416: %d", r.status())
	}
	if n := h.o.count.Load(); n != 1 {
		t.Fatalf("origin saw %d requests", n)
	}
}

func TestOnlyIfCached(t *testing.T) {
	h := newHarness(t, cache.Config{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, "x")
	})
	if r := h.do(request("GET", "/o", "Cache-Control: only-if-cached")); r.status() != 504 {
		t.Fatalf("only-if-cached miss: %d", r.status())
	}
	h.do(request("GET", "/o"))
	if r := h.do(request("GET", "/o", "Cache-Control: only-if-cached")); r.status() != 200 {
		t.Fatalf("only-if-cached hit: %d", r.status())
	}
	if n := h.o.count.Load(); n != 1 {
		t.Fatalf("origin saw %d requests", n)
	}
}

// clock is a settable time source.
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

func TestStaleWhileRevalidate(t *testing.T) {
	clk := &clock{now: time.Now()}
	var gen atomic.Int64
	release := make(chan struct{})
	h := newHarness(t, cache.Config{Now: clk.Now}, func(w http.ResponseWriter, r *http.Request) {
		g := gen.Add(1)
		if g > 1 {
			<-release // the background refresh is slow
		}
		w.Header().Set("Date", string(cache.AppendHTTPDate(nil, clk.Now())))
		w.Header().Set("Cache-Control", "max-age=10, stale-while-revalidate=60")
		fmt.Fprint(w, "gen", g)
	})
	h.do(request("GET", "/s"))
	clk.advance(20 * time.Second)
	for i := 0; i < 5; i++ {
		r := h.do(request("GET", "/s"))
		if string(r.body) != "gen1" || !r.cacheStatus("stale-while-revalidate") {
			t.Fatalf("stale not served at once: %q %q", r.body, r.get("Cache-Status"))
		}
	}
	close(release)
	h.bg.Wait()
	if n := h.o.count.Load(); n != 2 {
		t.Fatalf("one background refresh expected, origin saw %d requests", n)
	}
	if r := h.do(request("GET", "/s")); string(r.body) != "gen2" || !r.cacheStatus("hit") || r.cacheStatus("stale") {
		t.Fatalf("after the refresh: %q", r.body)
	}
	if st := h.c.Stats(); st.StaleServed != 5 {
		t.Fatalf("stale served %d", st.StaleServed)
	}
}

func TestStaleIfError(t *testing.T) {
	clk := &clock{now: time.Now()}
	h := newHarness(t, cache.Config{Now: clk.Now}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=10, stale-if-error=60")
		fmt.Fprint(w, "good")
	})
	h.do(request("GET", "/e"))
	h.o.set(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	clk.advance(30 * time.Second)
	if r := h.do(request("GET", "/e")); r.status() != 200 || string(r.body) != "good" || !r.cacheStatus("stale-if-error") {
		t.Fatalf("stale-if-error: %d %q", r.status(), r.body)
	}
	clk.advance(60 * time.Second)
	if r := h.do(request("GET", "/e")); r.status() != 503 {
		t.Fatalf("past the window: %d", r.status())
	}
}

func TestMaxObjectSize(t *testing.T) {
	big := bytes.Repeat([]byte("z"), 100000)
	h := newHarness(t, cache.Config{MaxObjectSize: 50000}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush() // no Content-Length: the size is only known while writing
		}
		w.Write(big)
	})
	for _, p := range []string{"/known", "/chunked"} {
		if r := h.do(request("GET", p)); !bytes.Equal(r.body, big) {
			t.Fatalf("%s: the response must stream through whole", p)
		}
		if r := h.do(request("GET", p)); r.cacheStatus("hit") {
			t.Fatalf("%s: stored over the limit", p)
		}
	}
	if st := h.c.Stats(); st.TooLarge != 4 || st.Usage.Items != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestInvalidation(t *testing.T) {
	h := newHarness(t, cache.Config{}, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			w.Header().Set("Location", "/other")
			w.WriteHeader(201)
			return
		}
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, r.URL.Path)
	})
	h.do(request("GET", "/item"))
	h.do(request("GET", "/other"))
	h.do(request("GET", "/unrelated"))
	h.do(request("POST", "/item"))
	for p, hit := range map[string]bool{"/item": false, "/other": false, "/unrelated": true} {
		if r := h.do(request("GET", p)); r.cacheStatus("hit") != hit {
			t.Errorf("%s: hit=%v after POST", p, !hit)
		}
	}
	if st := h.c.Stats(); st.Invalidations != 2 {
		t.Fatalf("invalidations %d", st.Invalidations)
	}
}

func TestPurgeTag(t *testing.T) {
	h := newHarness(t, cache.Config{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Surrogate-Key", "all "+strings.TrimPrefix(r.URL.Path, "/"))
		fmt.Fprint(w, "x")
	})
	for _, p := range []string{"/p1", "/p2", "/p3"} {
		h.do(request("GET", p))
	}
	if n, _ := h.c.PurgeTag(context.Background(), "p2"); n != 1 {
		t.Fatalf("purged %d", n)
	}
	if r := h.do(request("GET", "/p2")); r.cacheStatus("hit") {
		t.Fatal("tagged entry survived")
	}
	if n, _ := h.c.PurgeTag(context.Background(), "all"); n != 3 {
		t.Fatalf("purged %d", n)
	}
}

// TestHerd: 200 concurrent requests for one cold key make exactly one origin request; the
// others wait for the fill and are served from the entry while it is still being written.
func TestHerd(t *testing.T) {
	const clients = 200
	body := bytes.Repeat([]byte("0123456789abcdef"), 8192) // 128 KiB
	start := make(chan struct{})
	h := newHarness(t, cache.Config{LockTimeout: 20 * time.Second}, func(w http.ResponseWriter, r *http.Request) {
		<-start
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
			r, err := h.serve(ctx, request("GET", "/herd"))
			if err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(r.body, body) {
				errs <- fmt.Errorf("body of %d bytes", len(r.body))
			}
		}()
	}
	// Let every client reach the cache before the origin answers.
	for h.c.Stats().LockWaits < clients-1 {
		time.Sleep(time.Millisecond)
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := h.o.count.Load(); n != 1 {
		t.Fatalf("origin saw %d requests for one cold key", n)
	}
	if st := h.c.Stats(); st.Hits != clients-1 || st.LockTimeouts != 0 {
		t.Fatalf("stats %+v", st)
	}
}
