package ratelimit

import (
	"context"
	_ "embed"
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// FailMode is what a Redis limiter decides while Redis cannot be reached.
type FailMode int

const (
	// FailOpen allows requests while Redis is unreachable.
	FailOpen FailMode = iota
	// FailClosed refuses requests while Redis is unreachable.
	FailClosed
)

// Defaults of RedisOptions.
const (
	DefaultRedisTimeout  = 100 * time.Millisecond
	DefaultRetryInterval = time.Second
	DefaultLeaseTTL      = time.Second
	DefaultMaxKeys       = 1 << 16
	DefaultPrefix        = "ratelimit:"
)

// RedisOptions configures a Redis limiter.
type RedisOptions struct {
	// Limit is the quota: requests per key per Window, across every instance sharing the
	// Redis server. Required. Window/Limit is counted in whole microseconds of Redis' clock
	// (at least one), so at most a million requests per second per key.
	Limit int64
	// Window is the time Limit applies to. Required.
	Window time.Duration
	// Burst is how many requests a key may make at once after a quiet spell; default Limit.
	Burst int64
	// Lease is how many tokens one round trip takes from Redis for local spending; default
	// Limit/50, at least 1. Larger leases cost fewer round trips and strand more tokens in
	// instances that do not spend them.
	Lease int64
	// LeaseTTL is how long leased tokens may be spent before they are dropped, so that
	// tokens taken long ago cannot add to a later burst; default DefaultLeaseTTL, at most
	// Window.
	LeaseTTL time.Duration
	// Prefix is put before every key in Redis; default DefaultPrefix.
	Prefix string
	// Timeout bounds every Redis call, whatever the client's own timeouts; default
	// DefaultRedisTimeout.
	Timeout time.Duration
	// FailMode decides while Redis is unreachable, unless Fallback is set.
	FailMode FailMode
	// Fallback, when set, decides while Redis is unreachable instead of FailMode: a Local
	// with a share of the global limit, for instance.
	Fallback Limiter
	// RetryInterval is how long the limiter stops asking Redis after a failed call;
	// default DefaultRetryInterval.
	RetryInterval time.Duration
	// MaxKeys caps the keys whose leases are kept locally; default DefaultMaxKeys.
	MaxKeys int
	// OnError, when set, is told about every failed Redis call, for logs and metrics. It
	// must not block.
	OnError func(error)
}

// ErrRedisUnavailable is passed to OnError for requests decided by the fail mode without a
// call because a recent call failed.
var ErrRedisUnavailable = errors.New("ratelimit: redis unavailable")

// Redis is a Limiter shared by proxy instances through a Redis server: GCRA (the generic cell
// rate algorithm: a token bucket stored as one timestamp per key) in an atomic Lua script,
// on Redis' clock. Instances take tokens in leases and spend them locally, so that a round
// trip serves Lease requests; a key over its limit is refused locally until the Retry-After
// Redis gave. Across K instances the requests of a key let through in any Window stay under
// Burst + Limit + K×Lease (GCRA's own bound plus the leases in hand), and tokens stranded in
// unspent leases make them at most K×(Lease−1) fewer than Redis granted.
//
// Redis is safe for concurrent use; a request spending a leased token costs no allocation and
// no round trip.
type Redis struct {
	opts     RedisOptions
	take     takeFunc
	seed     maphash.Seed
	shards   [leaseShards]leaseShard
	downTill atomic.Int64 // unix ns until which Redis is not asked
}

// takeFunc takes up to n tokens of key: granted, left in the bucket, retry-after when none
// were granted, and the time until the bucket is full.
type takeFunc func(ctx context.Context, key string, n int64) (grant, left int64, retry, reset time.Duration, err error)

const leaseShards = 32

type leaseShard struct {
	mu sync.Mutex // guards m
	m  map[string]*lease
}

// lease is an instance's share of one key's tokens.
type lease struct {
	mu         sync.Mutex // guards the fields below; held during a refill, so one refill per key
	tokens     int64
	left       int64 // tokens left in Redis at the last refill
	expires    time.Time
	deniedTill time.Time
	resetAt    time.Time
}

//go:embed gcra.lua
var gcraSource string

var gcraScript = redis.NewScript(gcraSource)

// NewRedis returns a Redis limiter over client (a *redis.Client, *redis.ClusterClient or
// *redis.Ring). It panics if opts.Limit or opts.Window is not positive.
func NewRedis(client redis.Scripter, opts RedisOptions) *Redis {
	r := newRedis(nil, opts)
	interval := max(r.opts.Window.Microseconds()/r.opts.Limit, 1)
	r.take = func(ctx context.Context, key string, n int64) (int64, int64, time.Duration, time.Duration, error) {
		v, err := gcraScript.Run(ctx, client, []string{key}, interval, r.opts.Burst, n).Int64Slice()
		if err != nil {
			return 0, 0, 0, 0, err
		}
		if len(v) != 4 {
			return 0, 0, 0, 0, errors.New("ratelimit: unexpected reply of the GCRA script")
		}
		return v[0], v[1], time.Duration(v[2]) * time.Microsecond, time.Duration(v[3]) * time.Microsecond, nil
	}
	return r
}

func newRedis(take takeFunc, opts RedisOptions) *Redis {
	if opts.Limit <= 0 || opts.Window <= 0 {
		panic("ratelimit: non-positive limit or window")
	}
	if opts.Burst <= 0 {
		opts.Burst = opts.Limit
	}
	if opts.Lease <= 0 {
		opts.Lease = max(opts.Limit/50, 1)
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	opts.LeaseTTL = min(opts.LeaseTTL, opts.Window)
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultRedisTimeout
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = DefaultRetryInterval
	}
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = DefaultMaxKeys
	}
	r := &Redis{opts: opts, take: take, seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].m = make(map[string]*lease)
	}
	return r
}

// Allow spends a leased token of key, or takes a new lease from Redis, and decides.
func (r *Redis) Allow(ctx context.Context, key []byte) Decision {
	now := time.Now()
	l := r.lease(key, now)
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.deniedTill) {
		return r.decision(l, now, false)
	}
	if l.tokens > 0 && now.Before(l.expires) {
		l.tokens--
		return r.decision(l, now, true)
	}
	if now.UnixNano() < r.downTill.Load() {
		return r.fail(ctx, key, ErrRedisUnavailable)
	}
	grant, left, retry, reset, err := r.call(ctx, r.opts.Prefix+string(key))
	now = time.Now()
	if err != nil {
		r.downTill.Store(now.Add(r.opts.RetryInterval).UnixNano())
		return r.fail(ctx, key, err)
	}
	l.left, l.resetAt = left, now.Add(reset)
	if grant <= 0 {
		l.tokens, l.deniedTill = 0, now.Add(retry)
		return r.decision(l, now, false)
	}
	l.tokens, l.expires = grant-1, now.Add(r.opts.LeaseTTL)
	return r.decision(l, now, true)
}

// call runs take bounded by Timeout even when the client ignores its context.
func (r *Redis) call(ctx context.Context, key string) (grant, left int64, retry, reset time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	type result struct {
		grant, left  int64
		retry, reset time.Duration
		err          error
	}
	done := make(chan result, 1)
	go func() {
		var res result
		res.grant, res.left, res.retry, res.reset, res.err = r.take(ctx, key, r.opts.Lease)
		done <- res
	}()
	select {
	case res := <-done:
		return res.grant, res.left, res.retry, res.reset, res.err
	case <-ctx.Done():
		return 0, 0, 0, 0, ctx.Err()
	}
}

func (r *Redis) decision(l *lease, now time.Time, allowed bool) Decision {
	d := Decision{Allowed: allowed, Limit: r.opts.Limit, Window: r.opts.Window,
		Remaining: l.tokens + l.left, Reset: max(l.resetAt.Sub(now), 0)}
	if !allowed {
		d.Remaining = 0
		d.RetryAfter = max(l.deniedTill.Sub(now), 0)
	}
	return d
}

// fail decides while Redis is unreachable.
func (r *Redis) fail(ctx context.Context, key []byte, err error) Decision {
	if r.opts.OnError != nil {
		r.opts.OnError(err)
	}
	if r.opts.Fallback != nil {
		return r.opts.Fallback.Allow(ctx, key)
	}
	d := Decision{Allowed: r.opts.FailMode == FailOpen, Limit: r.opts.Limit, Window: r.opts.Window}
	if !d.Allowed {
		d.RetryAfter = r.opts.RetryInterval
	}
	return d
}

// lease returns key's lease, making one when there is none. A full shard first drops its
// spent leases, then arbitrary ones down to 7/8 of its share, so that a flood of new keys
// sweeps a shard once per share/8 of them: dropping a lease only loses its tokens.
func (r *Redis) lease(key []byte, now time.Time) *lease {
	sh := &r.shards[maphash.Bytes(r.seed, key)%leaseShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if l, ok := sh.m[string(key)]; ok {
		return l
	}
	if limit := max(r.opts.MaxKeys/leaseShards, 1); len(sh.m) >= limit {
		for k, l := range sh.m {
			if l.mu.TryLock() {
				spent := !now.Before(l.expires) && !now.Before(l.deniedTill)
				l.mu.Unlock()
				if spent {
					delete(sh.m, k)
				}
			}
		}
		if len(sh.m) >= limit {
			for k := range sh.m {
				if len(sh.m) <= limit*7/8 {
					break
				}
				delete(sh.m, k)
			}
		}
	}
	l := &lease{}
	sh.m[string(key)] = l
	return l
}

// Keys returns how many keys have a lease held locally.
func (r *Redis) Keys() int {
	n := 0
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
