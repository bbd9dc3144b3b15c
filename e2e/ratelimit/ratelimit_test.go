package ratelimit

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pingora-go/pingora/ratelimit"
)

// TestLocalThroughProxy: requests under the limit get 200 from the origin, requests over it
// 429 with Retry-After and the RateLimit fields, and the connection closes after a 429.
func TestLocalThroughProxy(t *testing.T) {
	origin := startOrigin(t)
	type step struct {
		appid  string
		status int
	}
	tests := []struct {
		name  string
		key   ratelimit.KeyFunc
		steps []step
	}{
		{"by header", ratelimit.Header("appid"), []step{{"a", 200}, {"a", 200}, {"b", 200}, {"a", 200}, {"a", 429}, {"", 200}, {"b", 200}, {"a", 429}, {"", 200}, {"", 200}, {"", 200}, {"b", 200}, {"b", 429}}},
		{"by client IP", ratelimit.ClientIP, []step{{"a", 200}, {"b", 200}, {"", 200}, {"a", 429}, {"b", 429}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startProxy(t, origin, &ratelimit.Filter{Limiter: ratelimit.NewLocal(3, time.Hour), Key: tt.key})
			c := client(t)
			for i, s := range tt.steps {
				resp := get(t, c, addr, s.appid)
				if resp.StatusCode != s.status {
					t.Fatalf("step %d (appid %q): status %d, want %d", i, s.appid, resp.StatusCode, s.status)
				}
				if s.status != 429 {
					continue
				}
				h := resp.Header
				if ra, err := strconv.Atoi(h.Get("Retry-After")); err != nil || ra < 3600 || ra > 7200 {
					t.Errorf("step %d: Retry-After %q, want 3600..7200 s", i, h.Get("Retry-After"))
				}
				for name, want := range map[string]string{"RateLimit-Limit": "3", "RateLimit-Remaining": "0",
					"RateLimit-Policy": "3;w=3600", "Cache-Control": "private, no-store"} {
					if got := h.Get(name); got != want {
						t.Errorf("step %d: %s: %q, want %q", i, name, got, want)
					}
				}
				if !resp.Close {
					t.Errorf("step %d: connection kept open after 429", i)
				}
			}
		})
	}
}

// TestLocalConcurrentThroughProxy runs many clients at once (race detector): exactly the
// limit gets through, because refused requests are taken back and nothing else counts.
func TestLocalConcurrentThroughProxy(t *testing.T) {
	const limit = 40
	addr := startProxy(t, startOrigin(t), &ratelimit.Filter{Limiter: ratelimit.NewLocal(limit, time.Hour),
		Key: ratelimit.Header("appid")})
	ok := countOK(t, []string{addr}, "one", 4, 100)
	// Racing requests may refuse each other near the limit: at most one per client.
	if ok > limit || ok < limit-4 {
		t.Fatalf("%d requests got through, want %d-%d", ok, limit-4, limit)
	}
}

// countOK sends n requests with appid from each of clients goroutines, spread over addrs in
// turn, and returns how many got 200. Any status but 200 and 429 fails the test.
func countOK(t *testing.T, addrs []string, appid string, clients, n int) int {
	t.Helper()
	var ok atomic.Int64
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			c := client(t)
			for i := range n {
				req, _ := http.NewRequest(http.MethodGet, "http://"+addrs[(w+i)%len(addrs)]+"/", nil)
				req.Header.Set("appid", appid)
				resp, err := c.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					ok.Add(1)
				case 429:
				default:
					t.Errorf("status %d", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	return int(ok.Load())
}

// TestRedisGlobalLimit: two proxy instances, each with its own Redis client and leases, share
// one limit. With Limit = Burst = L per hour the GCRA bucket grants L tokens and then one per
// 90 s, and this test lasts far less; each instance may strand up to Lease−1 leased tokens.
// Stated tolerance: L − 2×(Lease−1) ≤ requests let through ≤ L, for any mix of clients.
func TestRedisGlobalLimit(t *testing.T) {
	r := startRedis(t)
	origin := startOrigin(t)
	const limit, lease = 40, 4
	tests := []struct {
		name    string
		clients int
		each    int
	}{
		{"one client in turn", 1, 120},
		{"four clients at once", 4, 30},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var addrs []string
			for range 2 {
				lim := ratelimit.NewRedis(newClient(t, r), ratelimit.RedisOptions{Limit: limit, Window: time.Hour,
					Lease: lease, LeaseTTL: time.Hour, Timeout: 2 * time.Second, FailMode: ratelimit.FailClosed})
				addrs = append(addrs, startProxy(t, origin, &ratelimit.Filter{Limiter: lim, Key: ratelimit.Header("appid")}))
			}
			ok := countOK(t, addrs, fmt.Sprintf("global-%d", i), tt.clients, tt.each)
			if ok > limit || ok < limit-2*(lease-1) {
				t.Fatalf("%d requests got through two proxies, want %d-%d", ok, limit-2*(lease-1), limit)
			}
			// A key is limited separately from the others.
			if n := countOK(t, addrs, fmt.Sprintf("other-%d", i), 1, 2); n != 2 {
				t.Fatalf("another key got %d of 2 requests through", n)
			}
		})
	}
}

// TestRedisDown: when Redis dies (SIGKILL) or hangs (SIGSTOP) mid-test, every request still
// gets an answer, by the configured fail mode, within the limiter's timeout; nothing hangs.
func TestRedisDown(t *testing.T) {
	origin := startOrigin(t)
	tests := []struct {
		name   string
		mode   ratelimit.FailMode
		hang   bool
		status int
	}{
		{"killed, fail open", ratelimit.FailOpen, false, 200},
		{"killed, fail closed", ratelimit.FailClosed, false, 429},
		{"hung, fail open", ratelimit.FailOpen, true, 200},
		{"hung, fail closed", ratelimit.FailClosed, true, 429},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := startRedis(t)
			var errs atomic.Int64
			// Lease 1 and a short lease life: every request asks Redis.
			lim := ratelimit.NewRedis(newClient(t, r), ratelimit.RedisOptions{Limit: 100, Window: time.Minute,
				Lease: 1, Timeout: 300 * time.Millisecond, RetryInterval: 50 * time.Millisecond,
				FailMode: tt.mode, OnError: func(error) { errs.Add(1) }})
			addr := startProxy(t, origin, &ratelimit.Filter{Limiter: lim, Key: ratelimit.Header("appid"), KeepAlive: true})
			c := client(t)
			for i := range 3 {
				if s := get(t, c, addr, "k").StatusCode; s != 200 {
					t.Fatalf("request %d with redis up: %d", i, s)
				}
			}
			if errs.Load() != 0 {
				t.Fatalf("%d redis errors with redis up", errs.Load())
			}
			if tt.hang {
				r.stop()
			} else {
				r.kill()
			}
			for i := range 10 {
				if s := get(t, c, addr, "k").StatusCode; s != tt.status {
					t.Fatalf("request %d with redis down: %d, want %d", i, s, tt.status)
				}
				if i%3 == 0 {
					// Past RetryInterval: the next request asks Redis again.
					time.Sleep(60 * time.Millisecond)
				}
			}
			if errs.Load() == 0 {
				t.Fatal("no redis error reported")
			}
		})
	}
}

// TestRedisRecovers: after Redis comes back (a new, empty server on the same address), the
// limiter asks it again once RetryInterval has passed, and limits again.
func TestRedisRecovers(t *testing.T) {
	r := startRedis(t)
	lim := ratelimit.NewRedis(newClient(t, r), ratelimit.RedisOptions{Limit: 3, Window: time.Hour,
		Lease: 1, Timeout: 300 * time.Millisecond, RetryInterval: 50 * time.Millisecond, FailMode: ratelimit.FailOpen})
	addr := startProxy(t, startOrigin(t), &ratelimit.Filter{Limiter: lim, Key: ratelimit.Header("appid")})
	c := client(t)
	want := func(phase, key string, statuses ...int) {
		t.Helper()
		for i, s := range statuses {
			if got := get(t, c, addr, key).StatusCode; got != s {
				t.Fatalf("%s, request %d of %s: %d, want %d", phase, i, key, got, s)
			}
		}
	}
	want("redis up", "a", 200, 200, 200, 429)
	r.kill()
	// A refusal is remembered until its Retry-After, Redis or not.
	want("redis down", "a", 429)
	want("redis down, fail open", "b", 200, 200, 200, 200, 200)
	r.restart(t)
	time.Sleep(60 * time.Millisecond) // past RetryInterval
	want("redis back, empty", "b", 200, 200, 200, 429, 429)
}

// TestRedisGCRA checks the script's answers against the GCRA arithmetic, one token per round
// trip: with emission interval T = Window/Limit, a full bucket lets Burst requests through,
// the next one must wait T, and the bucket is full again Burst×T after it was last full.
func TestRedisGCRA(t *testing.T) {
	r := startRedis(t)
	c := newClient(t, r)
	tests := []struct {
		name         string
		limit, burst int64
		window       time.Duration
	}{
		{"burst is the limit", 5, 0, time.Hour},
		{"small burst", 10, 2, time.Hour},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := ratelimit.NewRedis(c, ratelimit.RedisOptions{Limit: tt.limit, Burst: tt.burst, Window: tt.window,
				Lease: 1, LeaseTTL: time.Nanosecond, Timeout: 2 * time.Second, Prefix: fmt.Sprintf("gcra-%d:", i)})
			burst := tt.burst
			if burst == 0 {
				burst = tt.limit
			}
			interval := tt.window / time.Duration(tt.limit)
			key := []byte("k")
			for j := range burst {
				d := lim.Allow(context.Background(), key)
				if !d.Allowed || d.Remaining != burst-1-j {
					t.Fatalf("request %d: %+v, want allowed with %d remaining", j, d, burst-1-j)
				}
				if d.Reset > time.Duration(j+1)*interval || d.Reset < time.Duration(j)*interval {
					t.Fatalf("request %d: Reset %v, want about %v", j, d.Reset, time.Duration(j+1)*interval)
				}
			}
			d := lim.Allow(context.Background(), key)
			if d.Allowed || d.RetryAfter > interval || d.RetryAfter < interval-time.Minute {
				t.Fatalf("request over the burst: %+v, want refused for about %v", d, interval)
			}
		})
	}
}
