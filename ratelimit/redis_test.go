package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// bucket is a fake Redis: a fixed number of tokens per key that never refill.
type bucket struct {
	mu    sync.Mutex // guards left
	left  map[string]int64
	size  int64
	calls atomic.Int64
	err   error
	block chan struct{} // when set, take waits for it to close, ignoring its context
	retry time.Duration
}

func (b *bucket) take(_ context.Context, key string, n int64) (int64, int64, time.Duration, time.Duration, error) {
	b.calls.Add(1)
	if b.block != nil {
		<-b.block
	}
	if b.err != nil {
		return 0, 0, 0, 0, b.err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.left == nil {
		b.left = make(map[string]int64)
	}
	left, ok := b.left[key]
	if !ok {
		left = b.size
	}
	g := min(n, left)
	b.left[key] = left - g
	if g == 0 {
		return 0, 0, b.retry, time.Minute, nil
	}
	return g, left - g, 0, time.Minute, nil
}

func TestRedisLeases(t *testing.T) {
	tests := []struct {
		name      string
		size      int64
		lease     int64
		requests  int
		allowed   int
		calls     int64
		remaining []int64 // Remaining of the first decisions
	}{
		{"one lease", 10, 10, 10, 10, 1, []int64{9, 8, 7}},
		{"leases and a partial one", 25, 10, 40, 25, 4, []int64{24, 23}},
		{"lease of one", 3, 1, 6, 3, 4, []int64{2, 1, 0}},
		{"bucket empty", 0, 5, 20, 0, 1, []int64{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &bucket{size: tt.size, retry: time.Hour}
			r := newRedis(b.take, RedisOptions{Limit: 100, Window: time.Minute, Lease: tt.lease, LeaseTTL: time.Hour})
			allowed := 0
			for i := range tt.requests {
				d := r.Allow(context.Background(), []byte("k"))
				if d.Allowed {
					allowed++
				} else if d.RetryAfter <= 0 || d.RetryAfter > time.Hour || d.Remaining != 0 {
					t.Fatalf("request %d refused with %+v", i, d)
				}
				if i < len(tt.remaining) && d.Remaining != tt.remaining[i] {
					t.Errorf("request %d: Remaining %d, want %d", i, d.Remaining, tt.remaining[i])
				}
				if d.Limit != 100 || d.Window != time.Minute {
					t.Fatalf("request %d: policy %d/%v", i, d.Limit, d.Window)
				}
			}
			if allowed != tt.allowed {
				t.Errorf("allowed %d, want %d", allowed, tt.allowed)
			}
			// Refusals are remembered until Retry-After: one call says no for all of them.
			if c := b.calls.Load(); c != tt.calls {
				t.Errorf("%d calls to redis, want %d", c, tt.calls)
			}
		})
	}
}

func TestRedisKeysAreSeparate(t *testing.T) {
	b := &bucket{size: 2, retry: time.Hour}
	r := newRedis(b.take, RedisOptions{Limit: 2, Window: time.Minute, Lease: 1, Prefix: "p:"})
	for _, k := range []string{"a", "b", "a", "b"} {
		if !r.Allow(context.Background(), []byte(k)).Allowed {
			t.Fatalf("key %s refused", k)
		}
	}
	if r.Allow(context.Background(), []byte("a")).Allowed {
		t.Fatal("third request of a allowed")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.left["p:a"]; !ok || len(b.left) != 2 {
		t.Fatalf("redis keys %v, want p:a and p:b", b.left)
	}
}

func TestRedisFailModes(t *testing.T) {
	down := errors.New("connection refused")
	tests := []struct {
		name     string
		opts     RedisOptions
		allowed  bool
		retry    time.Duration
		fallback bool
	}{
		{"fail open", RedisOptions{FailMode: FailOpen}, true, 0, false},
		{"fail closed", RedisOptions{FailMode: FailClosed, RetryInterval: 5 * time.Second}, false, 5 * time.Second, false},
		{"fallback", RedisOptions{FailMode: FailOpen, Fallback: NewLocal(1, time.Hour)}, true, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &bucket{size: 100, err: down}
			var errs []error
			tt.opts.Limit, tt.opts.Window = 10, time.Minute
			tt.opts.OnError = func(err error) { errs = append(errs, err) }
			r := newRedis(b.take, tt.opts)
			d := r.Allow(context.Background(), []byte("k"))
			if d.Allowed != tt.allowed || d.RetryAfter != tt.retry {
				t.Fatalf("first decision %+v, want allowed %v retry %v", d, tt.allowed, tt.retry)
			}
			// While Redis is down, requests are decided without asking it again.
			d = r.Allow(context.Background(), []byte("k"))
			if tt.fallback && d.Allowed {
				t.Fatalf("fallback Local(1/h) allowed a second request: %+v", d)
			}
			if !tt.fallback && d.Allowed != tt.allowed {
				t.Fatalf("second decision %+v", d)
			}
			if c := b.calls.Load(); c != 1 {
				t.Fatalf("%d calls to redis, want 1", c)
			}
			if len(errs) != 2 || !errors.Is(errs[0], down) || !errors.Is(errs[1], ErrRedisUnavailable) {
				t.Fatalf("OnError got %v", errs)
			}
		})
	}
}

// TestRedisHangIsBounded: a Redis call that never returns, by a client that ignores its
// context, ends in the fail mode after Timeout instead of holding the request.
func TestRedisHangIsBounded(t *testing.T) {
	b := &bucket{size: 100, block: make(chan struct{})}
	defer close(b.block)
	r := newRedis(b.take, RedisOptions{Limit: 10, Window: time.Minute, Timeout: 20 * time.Millisecond, FailMode: FailClosed})
	var got error
	r.opts.OnError = func(err error) { got = err }
	if d := r.Allow(context.Background(), []byte("k")); d.Allowed {
		t.Fatalf("allowed with a hung redis and FailClosed: %+v", d)
	}
	if !errors.Is(got, context.DeadlineExceeded) {
		t.Fatalf("OnError got %v, want a deadline error", got)
	}
}

// TestRedisLeaseSurvivesOutage: tokens leased before Redis went down are still spent.
func TestRedisLeaseSurvivesOutage(t *testing.T) {
	b := &bucket{size: 100}
	r := newRedis(b.take, RedisOptions{Limit: 10, Window: time.Minute, Lease: 5, LeaseTTL: time.Hour, FailMode: FailClosed})
	ctx := context.Background()
	r.Allow(ctx, []byte("k"))
	b.err = errors.New("down")
	for i := range 4 {
		if !r.Allow(ctx, []byte("k")).Allowed {
			t.Fatalf("leased token %d refused", i+2)
		}
	}
	if r.Allow(ctx, []byte("k")).Allowed {
		t.Fatal("allowed past the lease with redis down and FailClosed")
	}
}

func TestRedisLeaseExpires(t *testing.T) {
	b := &bucket{size: 100}
	r := newRedis(b.take, RedisOptions{Limit: 10, Window: time.Minute, Lease: 5, LeaseTTL: time.Nanosecond})
	for range 3 {
		r.Allow(context.Background(), []byte("k"))
	}
	if c := b.calls.Load(); c != 3 {
		t.Fatalf("%d calls, want 3: an expired lease must not be spent", c)
	}
}

func TestRedisMaxKeys(t *testing.T) {
	b := &bucket{size: 100}
	r := newRedis(b.take, RedisOptions{Limit: 10, Window: time.Minute, MaxKeys: 64})
	for i := range 1000 {
		r.Allow(context.Background(), fmt.Appendf(nil, "key-%d", i))
	}
	if n := r.Keys(); n > 64 || n == 0 {
		t.Fatalf("%d keys held, want 1..64", n)
	}
}

// TestRedisConcurrent checks under the race detector that concurrent requests never spend
// more tokens than Redis granted.
func TestRedisConcurrent(t *testing.T) {
	b := &bucket{size: 200, retry: time.Hour}
	r := newRedis(b.take, RedisOptions{Limit: 200, Window: time.Minute, Lease: 7, LeaseTTL: time.Hour})
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 100 {
				if r.Allow(context.Background(), fmt.Appendf(nil, "k%d", (w+i)%3)).Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	granted := int64(0)
	for _, left := range b.left {
		granted += 200 - left
	}
	// Each key is asked more often than it has tokens, and leases are spent before the next.
	if n := allowed.Load(); n != granted || granted != 3*200 {
		t.Fatalf("allowed %d with %d tokens granted, want 600 both", n, granted)
	}
}

func TestNewRedisPanics(t *testing.T) {
	for _, o := range []RedisOptions{{Window: time.Second}, {Limit: 1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewRedis(%+v) did not panic", o)
				}
			}()
			NewRedis(nil, o)
		}()
	}
}

// BenchmarkRedisLeased measures a request spending a leased token: no round trip.
func BenchmarkRedisLeased(b *testing.B) {
	bk := &bucket{size: 1 << 62}
	r := newRedis(bk.take, RedisOptions{Limit: 1 << 40, Window: time.Second, Lease: 1 << 30, LeaseTTL: time.Second})
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "10.0.%d.%d", i/256, i%256)
	}
	ctx := context.Background()
	for _, k := range keys {
		r.Allow(ctx, k)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Allow(ctx, keys[i%len(keys)])
		i++
	}
}
