package memcache

import (
	"context"
	"errors"
	"sync"
	"time"
)

// LookupFunc fetches key's value from the source of truth, with the TTL to
// cache it for (0 or less: no expiry).
type LookupFunc[K comparable, V any] func(ctx context.Context, key K) (V, time.Duration, error)

// RTConfig tunes an RTCache's lookup lock.
type RTConfig struct {
	// LockAge is how long a lookup holds its key's lock: a caller that finds
	// an older lookup still running starts its own. 0 means no limit. It
	// also bounds background refreshes.
	LockAge time.Duration
	// LockTimeout is how long a caller waits for another's lookup before
	// looking up for itself. 0 means wait until the lookup ends or the
	// caller's context is done.
	LockTimeout time.Duration
}

// RTCache is a read-through cache: a miss calls the lookup function, and
// concurrent misses of one key share a single lookup. It is meant for DNS,
// database and other slow lookups. It is safe for concurrent use.
type RTCache[K comparable, V any] struct {
	cache  *Cache[K, V]
	lookup LookupFunc[K, V]
	cfg    RTConfig

	mu      sync.Mutex // guards flights
	flights map[K]*flight[V]
}

// flight is one lookup in progress; done closes when value and err are set.
type flight[V any] struct {
	done    chan struct{}
	started time.Time
	value   V
	err     error
}

// NewRT returns a read-through cache of up to size items over lookup.
func NewRT[K comparable, V any](size int, lookup LookupFunc[K, V], cfg RTConfig) *RTCache[K, V] {
	return &RTCache[K, V]{
		cache:   New[K, V](size),
		lookup:  lookup,
		cfg:     cfg,
		flights: make(map[K]*flight[V]),
	}
}

// Cache returns the underlying cache, to Put or Remove directly.
func (r *RTCache[K, V]) Cache() *Cache[K, V] { return r.cache }

// Get returns key's value: from the cache if fresh (Hit), else from a lookup
// of its own (Miss or Expired) or of another caller it waited for (LockHit).
// Errors from the lookup are returned and not cached.
func (r *RTCache[K, V]) Get(ctx context.Context, key K) (V, Status, error) {
	v, st := r.cache.Get(key)
	if st == Hit {
		return v, st, nil
	}
	return r.load(ctx, key, st)
}

// GetStale is Get that returns a value past its TTL rather than look it up,
// as Stale.
func (r *RTCache[K, V]) GetStale(ctx context.Context, key K) (V, Status, error) {
	v, st, _ := r.cache.GetStale(key)
	if st == Hit || st == Stale {
		return v, st, nil
	}
	return r.load(ctx, key, st)
}

// GetStaleWhileUpdate is GetStale that, on returning a stale value, starts
// one background lookup to refresh it (unless one is running). The refresh
// does not inherit ctx's cancellation; LockAge, if set, bounds it.
func (r *RTCache[K, V]) GetStaleWhileUpdate(ctx context.Context, key K) (V, Status, error) {
	v, st, _ := r.cache.GetStale(key)
	switch st {
	case Hit:
		return v, st, nil
	case Stale:
		if f, leader := r.claim(key); leader {
			rctx, cancel := context.WithoutCancel(ctx), context.CancelFunc(func() {})
			if r.cfg.LockAge > 0 {
				rctx, cancel = context.WithTimeout(rctx, r.cfg.LockAge)
			}
			go func() {
				defer cancel()
				r.run(rctx, key, f)
			}()
		}
		return v, st, nil
	}
	return r.load(ctx, key, st)
}

// load answers a miss: it runs the lookup, or waits for the one running.
func (r *RTCache[K, V]) load(ctx context.Context, key K, st Status) (V, Status, error) {
	f, leader := r.claim(key)
	if leader {
		r.run(ctx, key, f)
		return f.value, st, f.err
	}
	var timeout <-chan time.Time
	if r.cfg.LockTimeout > 0 {
		t := time.NewTimer(r.cfg.LockTimeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-f.done:
		if f.err != nil {
			var zero V
			return zero, st, f.err
		}
		return f.value, LockHit, nil
	case <-ctx.Done():
		var zero V
		return zero, st, ctx.Err()
	case <-timeout:
		// Waited long enough: look up without the lock.
		v, ttl, err := r.lookup(ctx, key)
		if err == nil {
			r.cache.Put(key, v, ttl)
		}
		return v, st, err
	}
}

// claim returns key's running flight, or starts one (leader true) if there
// is none or the running one is older than LockAge.
func (r *RTCache[K, V]) claim(key K) (*flight[V], bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.flights[key]; ok && (r.cfg.LockAge <= 0 || time.Since(f.started) < r.cfg.LockAge) {
		return f, false
	}
	f := &flight[V]{done: make(chan struct{}), started: time.Now()}
	r.flights[key] = f
	return f, true
}

// run does f's lookup, caches a success and releases the waiters, even if
// the lookup panics.
func (r *RTCache[K, V]) run(ctx context.Context, key K, f *flight[V]) {
	defer func() {
		r.mu.Lock()
		if r.flights[key] == f {
			delete(r.flights, key)
		}
		r.mu.Unlock()
		close(f.done)
	}()
	var ttl time.Duration
	f.err = errPanicked
	f.value, ttl, f.err = r.lookup(ctx, key)
	if f.err == nil {
		r.cache.Put(key, f.value, ttl)
	}
}

// errPanicked is what waiters get when the lookup they waited for panicked.
var errPanicked = errors.New("memcache: lookup panicked")
