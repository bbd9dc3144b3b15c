package ratelimit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/limits"
)

func TestDecide(t *testing.T) {
	const w = 10 * time.Second
	tests := []struct {
		name         string
		limit        int64
		prev, curr   int64
		frac         float64
		allowed      bool
		remaining    int64
		retry, reset time.Duration
	}{
		{"first request", 5, 0, 1, 0, true, 4, 0, 20 * time.Second},
		{"at the limit", 5, 0, 5, 0.5, true, 0, 0, 15 * time.Second},
		// 5 requests must fade to 4: at 1.2 windows.
		{"over in the current window", 5, 0, 6, 0.5, false, 0, 7 * time.Second, 15 * time.Second},
		// 10×(1−0.2) + 2 = 10 > 5: the previous window must fade to 2/10, at 0.8.
		{"previous window weighs", 5, 10, 3, 0.2, false, 0, 6 * time.Second, 18 * time.Second},
		{"previous window faded enough", 5, 10, 1, 0.7, true, 1, 0, 13 * time.Second},
		{"limit one, refused", 1, 0, 2, 0.25, false, 0, 17500 * time.Millisecond, 17500 * time.Millisecond},
		{"turned over between observe and read", 5, 1, 0, 0, true, 4, 0, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decide(tt.limit, limits.RateComponents{PrevSamples: tt.prev, CurrSamples: tt.curr,
				Interval: w, CurrentIntervalFraction: tt.frac})
			want := Decision{Allowed: tt.allowed, Limit: tt.limit, Window: w, Remaining: tt.remaining,
				Reset: tt.reset, RetryAfter: tt.retry}
			if d != want {
				t.Errorf("decide = %+v, want %+v", d, want)
			}
		})
	}
}

// TestRetryAfterIsEnough checks that after the returned wait the sliding estimate admits
// one more request, and a little earlier it does not.
func TestRetryAfterIsEnough(t *testing.T) {
	const w = time.Second
	for _, limit := range []int64{1, 2, 7, 100} {
		for _, prev := range []int64{0, 1, limit / 2, limit, 3 * limit} {
			for _, curr := range []int64{0, 1, limit - 1, limit, 2 * limit} {
				for _, frac := range []float64{0, 0.3, 0.9} {
					est := func(at float64) float64 { // at: windows since the current one started
						if at < 1 {
							return float64(prev)*(1-at) + float64(curr)
						}
						return float64(curr) * (2 - at)
					}
					if est(frac)+1 <= float64(limit) {
						continue
					}
					r := retryAfter(limit, prev, curr, frac, w)
					at := frac + float64(r)/float64(w)
					if est(at+1e-9)+1 > float64(limit)+1e-6 {
						t.Errorf("limit %d prev %d curr %d frac %v: after %v estimate %v still over", limit, prev, curr, frac, r, est(at))
					}
					if r > time.Millisecond && est(at-1e-3)+1 <= float64(limit) {
						t.Errorf("limit %d prev %d curr %d frac %v: %v is longer than needed", limit, prev, curr, frac, r)
					}
				}
			}
		}
	}
}

func TestAppendHeaders(t *testing.T) {
	tests := []struct {
		name string
		d    Decision
		want string
	}{
		{"allowed", Decision{Allowed: true, Limit: 100, Window: time.Minute, Remaining: 42, Reset: 1500 * time.Millisecond},
			"RateLimit-Limit: 100\r\nRateLimit-Remaining: 42\r\nRateLimit-Reset: 2\r\nRateLimit-Policy: 100;w=60\r\n"},
		{"refused", Decision{Limit: 5, Window: time.Second, Reset: time.Second, RetryAfter: 300 * time.Millisecond},
			"RateLimit-Limit: 5\r\nRateLimit-Remaining: 0\r\nRateLimit-Reset: 1\r\nRateLimit-Policy: 5;w=1\r\nRetry-After: 1\r\n"},
		{"refused for long", Decision{Limit: 5, Window: time.Hour, Remaining: -3, RetryAfter: 61 * time.Second},
			"RateLimit-Limit: 5\r\nRateLimit-Remaining: 0\r\nRateLimit-Reset: 0\r\nRateLimit-Policy: 5;w=3600\r\nRetry-After: 61\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f header.Fields
			tt.d.AppendHeaders(&f)
			if got := string(f.AppendH1(nil)); got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestLocal(t *testing.T) {
	// An hour-long window: the test runs within its first interval.
	l := NewLocal(3, time.Hour)
	ctx := context.Background()
	steps := []struct {
		key       string
		allowed   bool
		remaining int64
	}{
		{"a", true, 2}, {"a", true, 1}, {"b", true, 2}, {"a", true, 0},
		{"a", false, 0}, {"a", false, 0}, {"b", true, 1}, {"b", true, 0}, {"b", false, 0},
	}
	for i, s := range steps {
		d := l.Allow(ctx, []byte(s.key))
		if d.Allowed != s.allowed || d.Remaining != s.remaining || d.Limit != 3 || d.Window != time.Hour {
			t.Fatalf("step %d (%s): %+v, want allowed %v remaining %d", i, s.key, d, s.allowed, s.remaining)
		}
		if !d.Allowed && (d.RetryAfter <= time.Hour || d.RetryAfter > 2*time.Hour) {
			// A full current window must become the previous one and fade by a third.
			t.Fatalf("step %d: RetryAfter %v outside (1h, 2h]", i, d.RetryAfter)
		}
	}
}

// TestLocalConcurrent checks under the race detector that concurrent requests of one key
// never get more than the limit through.
func TestLocalConcurrent(t *testing.T) {
	const limit, workers, each = 50, 8, 40
	l := NewLocal(limit, time.Hour)
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			n := 0
			for range each {
				if l.Allow(context.Background(), []byte("k")).Allowed {
					n++
				}
			}
			mu.Lock()
			allowed += n
			mu.Unlock()
		})
	}
	wg.Wait()
	// Refused requests are taken back, so racing ones can refuse each other: never more than
	// the limit, and not many fewer.
	if allowed > limit || allowed < limit-workers {
		t.Fatalf("allowed %d of %d with limit %d", allowed, workers*each, limit)
	}
}

func TestNewLocalPanics(t *testing.T) {
	for _, limit := range []int64{0, -1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewLocal(%d, …) did not panic", limit)
				}
			}()
			NewLocal(limit, time.Second)
		}()
	}
}

func BenchmarkLocalAllow(b *testing.B) {
	l := NewLocal(1<<40, time.Second)
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "10.0.%d.%d", i/256, i%256)
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if !l.Allow(ctx, keys[i%len(keys)]).Allowed {
			b.Fatal("refused")
		}
		i++
	}
}

func BenchmarkLocalAllowParallel(b *testing.B) {
	l := NewLocal(1<<40, time.Second)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		key := []byte(strings.Repeat("k", 12))
		for pb.Next() {
			l.Allow(ctx, key)
		}
	})
}
