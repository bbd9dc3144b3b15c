package memcache

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// clock is a settable time for Cache.now.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() int64              { return c.ns.Load() }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func newTestCache(size int) (*Cache[string, int], *clock) {
	c := New[string, int](size)
	clk := &clock{}
	clk.ns.Store(1_000_000)
	c.now = clk.now
	return c, clk
}

func TestCacheTTL(t *testing.T) {
	c, clk := newTestCache(10)
	c.Put("forever", 1, 0)
	c.Put("short", 2, time.Second)
	steps := []struct {
		after     time.Duration
		key       string
		want      int
		status    Status
		staleSt   Status
		staleFor  time.Duration
		staleWant int
	}{
		{0, "forever", 1, Hit, Hit, 0, 1},
		{0, "short", 2, Hit, Hit, 0, 2},
		{0, "absent", 0, Miss, Miss, 0, 0},
		{999 * time.Millisecond, "short", 2, Hit, Hit, 0, 2},
		{time.Millisecond, "short", 0, Expired, Stale, 0, 2},
		{5 * time.Second, "short", 0, Expired, Stale, 5 * time.Second, 2},
		{time.Hour, "forever", 1, Hit, Hit, 0, 1},
	}
	for _, s := range steps {
		clk.advance(s.after)
		if v, st := c.Get(s.key); v != s.want || st != s.status {
			t.Fatalf("Get(%q) = %d, %v; want %d, %v", s.key, v, st, s.want, s.status)
		}
		if v, st, d := c.GetStale(s.key); v != s.staleWant || st != s.staleSt || d != s.staleFor {
			t.Fatalf("GetStale(%q) = %d, %v, %v; want %d, %v, %v", s.key, v, st, d, s.staleWant, s.staleSt, s.staleFor)
		}
	}
	c.Remove("forever")
	if _, st := c.Get("forever"); st != Miss {
		t.Fatalf("after Remove: %v, want miss", st)
	}
}

func TestStatusString(t *testing.T) {
	for st, want := range map[Status]string{Hit: "hit", Miss: "miss", Expired: "expired", LockHit: "lock_hit", Stale: "stale", 99: "unknown"} {
		if got := st.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", st, got, want)
		}
	}
}

// blockingLookup counts calls and holds each until release is closed.
type blockingLookup struct {
	calls   atomic.Int32
	started chan struct{}
	release chan struct{}
	err     error
	panics  bool
}

func newBlockingLookup() *blockingLookup {
	return &blockingLookup{started: make(chan struct{}, 100), release: make(chan struct{})}
}

func (b *blockingLookup) lookup(ctx context.Context, key string) (int, time.Duration, error) {
	b.calls.Add(1)
	b.started <- struct{}{}
	<-b.release
	if b.panics {
		panic("lookup failed hard")
	}
	return len(key), time.Minute, b.err
}

func TestRTCacheCoalesces(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		panics     bool
		wantStatus Status // of the waiters
		wantErr    error
	}{
		{"value", nil, false, LockHit, nil},
		{"error", errors.New("backend down"), false, Miss, errors.New("backend down")},
		{"panic", nil, true, Miss, errPanicked},
	}
	for _, tt := range tests {
		synctest.Test(t, func(t *testing.T) {
			bl := newBlockingLookup()
			bl.err, bl.panics = tt.err, tt.panics
			r := NewRT[string, int](10, bl.lookup, RTConfig{})
			leaderErr := make(chan error, 1)
			go func() {
				defer func() {
					if p := recover(); p != nil {
						leaderErr <- errPanicked
					}
				}()
				_, st, err := r.Get(context.Background(), "abc")
				if st != Miss {
					err = errors.New("leader status " + st.String())
				}
				leaderErr <- err
			}()
			<-bl.started
			type result struct {
				v   int
				st  Status
				err error
			}
			const waiters = 5
			results := make(chan result, waiters)
			for range waiters {
				go func() {
					v, st, err := r.Get(context.Background(), "abc")
					results <- result{v, st, err}
				}()
			}
			synctest.Wait() // every waiter is blocked on the leader's lookup
			close(bl.release)
			if err := <-leaderErr; (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("%s: leader err = %v, want %v", tt.name, err, tt.wantErr)
			}
			for range waiters {
				res := <-results
				if res.st != tt.wantStatus {
					t.Errorf("%s: waiter status = %v, want %v", tt.name, res.st, tt.wantStatus)
				}
				if (res.err == nil) != (tt.wantErr == nil) || tt.wantErr == nil && res.v != 3 {
					t.Errorf("%s: waiter got %d, %v; want 3, %v", tt.name, res.v, res.err, tt.wantErr)
				}
			}
			if n := bl.calls.Load(); n != 1 {
				t.Fatalf("%s: lookup ran %d times, want 1", tt.name, n)
			}
			_, st := r.Cache().Get("abc")
			if cached := st == Hit; cached != (tt.wantErr == nil) {
				t.Fatalf("%s: cached after lookup: %v, want %v", tt.name, cached, tt.wantErr == nil)
			}
		})
	}
}

func TestRTCacheLockTimeout(t *testing.T) { synctest.Test(t, testLockTimeout) }

func testLockTimeout(t *testing.T) {
	bl := newBlockingLookup()
	r := NewRT[string, int](10, bl.lookup, RTConfig{LockTimeout: time.Millisecond})
	go r.Get(context.Background(), "k")
	<-bl.started
	done := make(chan Status)
	go func() {
		_, st, _ := r.Get(context.Background(), "k")
		done <- st
	}()
	// The waiter gives up on the stuck lookup and runs its own.
	<-bl.started
	close(bl.release)
	if st := <-done; st != Miss {
		t.Fatalf("status after lock timeout = %v, want miss", st)
	}
	if n := bl.calls.Load(); n != 2 {
		t.Fatalf("lookups = %d, want 2", n)
	}
}

func TestRTCacheContextCancel(t *testing.T) {
	bl := newBlockingLookup()
	r := NewRT[string, int](10, bl.lookup, RTConfig{})
	go r.Get(context.Background(), "k")
	<-bl.started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := r.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	close(bl.release)
}

func TestRTCacheStaleWhileUpdate(t *testing.T) { synctest.Test(t, testStaleWhileUpdate) }

func testStaleWhileUpdate(t *testing.T) {
	var calls atomic.Int32
	refreshed := make(chan struct{}, 1)
	lookup := func(ctx context.Context, key string) (int, time.Duration, error) {
		n := calls.Add(1)
		if n > 1 {
			defer func() { refreshed <- struct{}{} }()
		}
		return int(n), time.Second, nil
	}
	r := NewRT[string, int](10, lookup, RTConfig{LockAge: time.Minute})
	clk := &clock{}
	r.cache.now = clk.now
	ctx := context.Background()
	if v, st, err := r.GetStaleWhileUpdate(ctx, "k"); v != 1 || st != Miss || err != nil {
		t.Fatalf("first = %d, %v, %v", v, st, err)
	}
	if v, st, _ := r.GetStale(ctx, "k"); v != 1 || st != Hit {
		t.Fatalf("fresh = %d, %v", v, st)
	}
	clk.advance(2 * time.Second)
	if v, st, _ := r.GetStaleWhileUpdate(ctx, "k"); v != 1 || st != Stale {
		t.Fatalf("stale = %d, %v; want 1, stale", v, st)
	}
	<-refreshed
	synctest.Wait() // the refresh has cached its value and returned
	if v, st, _ := r.Get(ctx, "k"); v != 2 || st != Hit {
		t.Fatalf("after refresh = %d, %v; want 2, hit", v, st)
	}
}
