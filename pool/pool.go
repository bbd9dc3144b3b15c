// Package pool is a keyed pool of idle connections with idle timeouts, a
// total LRU capacity and a liveness check.
//
// A proxy releases an upstream connection into the pool under the reuse hash
// of its peer after a clean exchange, and asks the pool for a connection of
// the same hash before dialing. Connections of one key are handed out most
// recently released first, which keeps a small warm set busy and lets the
// rest time out.
//
// Unlike Cloudflare Pingora, whose LRU capacity (upstream_keepalive_pool_size)
// is per worker thread, the capacity of a Pool is one process-wide limit on
// the idle connections it holds, whichever goroutine released them.
package pool

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCapacity is the total idle capacity used when Options.Capacity is
// not positive; it matches the reference's upstream_keepalive_pool_size.
const DefaultCapacity = 128

// DefaultSweepInterval is the sweeper period used when
// Options.SweepInterval is not positive.
const DefaultSweepInterval = time.Second

// DoNotKeep is an idle timeout that makes Put close the connection instead of
// keeping it (the reference's idle_timeout of 0 s). Any negative duration has
// the same meaning; a zero duration means no idle timeout.
const DoNotKeep time.Duration = -1

// Options configures a Pool. The zero value is usable.
type Options[C any] struct {
	// Capacity is the total number of idle connections kept across all
	// keys. Releasing one more evicts (closes) the least recently released
	// connection. Values below 1 mean DefaultCapacity.
	Capacity int

	// MaxPerKey caps the idle connections kept for one key; releasing one
	// more evicts the least recently released connection of that key.
	// Values below 1 mean no per-key cap (Capacity still applies).
	MaxPerKey int

	// Alive reports whether an idle connection can still be used. Get runs
	// it before handing a connection out (without the pool's lock held) and
	// the sweeper runs it on every idle connection (with the lock held, so
	// it must not block and must not call the Pool). For network
	// connections use ConnAlive. Nil means every connection is alive.
	Alive func(C) bool

	// SweepInterval is how often the sweeper closes expired and dead idle
	// connections. Values below 1 mean DefaultSweepInterval.
	SweepInterval time.Duration

	// AliveAfter spares Get the Alive check of a connection released less
	// than this long ago: a check costs a system call on every reuse, and a
	// connection that was fine a moment ago is all but always fine now (the
	// caller must cope with the rare one that is not, as with any reused
	// connection). The sweeper still checks every idle connection. Zero
	// checks every connection Get hands out.
	AliveAfter time.Duration
}

// Stats is a snapshot of a Pool's counters.
type Stats struct {
	Hits           uint64 // Get returned a connection
	Misses         uint64 // Get found no usable connection
	Evictions      uint64 // closed to respect Capacity or MaxPerKey
	Expired        uint64 // closed because their idle timeout passed
	DeadOnCheckout uint64 // closed by Get because Alive reported false
	DeadIdle       uint64 // closed by the sweeper because Alive reported false
	Idle           int    // idle connections held now
}

// entry is one idle connection. It sits on two intrusive lists: the pool's
// LRU list and its key's list. Entries are recycled through a free list so
// that Put and Get do not allocate in the steady state.
type entry[C any] struct {
	conn     C
	key      uint64
	deadline time.Time // zero: no idle timeout
	released time.Time // when Put took it; set only when AliveAfter or an idle timeout needs it

	lruPrev, lruNext *entry[C] // LRU list, head is the most recently released
	keyPrev, keyNext *entry[C] // key list, head is the most recently released
}

// bucket is the list of idle connections of one key.
type bucket[C any] struct {
	head, tail *entry[C]
	n          int
}

// Pool is a keyed pool of idle connections. It is safe for concurrent use.
// Create it with New and stop it with Close.
type Pool[C io.Closer] struct {
	capacity   int
	maxPerKey  int
	alive      func(C) bool
	interval   time.Duration
	aliveAfter time.Duration

	mu       sync.Mutex // guards following fields
	keys     map[uint64]bucket[C]
	lruHead  *entry[C]
	lruTail  *entry[C]
	idle     int
	free     *entry[C] // recycled entries, linked through lruNext
	sweeping bool      // the sweeper goroutine has been started
	closed   bool

	stop      chan struct{} // closed by Close to stop the sweeper
	sweepDone chan struct{} // closed by the sweeper when it returns

	hits, misses, evictions, expired, deadOnCheckout, deadIdle atomic.Uint64
}

// New returns an empty Pool. Its sweeper goroutine starts with the first Put
// and stops with Close.
func New[C io.Closer](opts Options[C]) *Pool[C] {
	p := &Pool[C]{
		capacity:   opts.Capacity,
		maxPerKey:  opts.MaxPerKey,
		alive:      opts.Alive,
		interval:   opts.SweepInterval,
		aliveAfter: opts.AliveAfter,
		keys:       make(map[uint64]bucket[C]),
		stop:       make(chan struct{}),
		sweepDone:  make(chan struct{}),
	}
	if p.capacity < 1 {
		p.capacity = DefaultCapacity
	}
	if p.interval <= 0 {
		p.interval = DefaultSweepInterval
	}
	return p
}

// Put releases c into the pool under key. With a positive idleTimeout the
// connection is closed once it has been idle that long; with zero it is kept
// until it is evicted, found dead or the pool is closed; with a negative one
// (DoNotKeep) c is closed at once. Put closes c as well when the pool is
// closed. Releasing beyond Capacity or MaxPerKey closes the least recently
// released connection (of the pool, or of the key).
func (p *Pool[C]) Put(key uint64, c C, idleTimeout time.Duration) {
	if idleTimeout < 0 {
		c.Close()
		return
	}
	var now, deadline time.Time
	if idleTimeout > 0 || p.aliveAfter > 0 {
		now = time.Now()
	}
	if idleTimeout > 0 {
		deadline = now.Add(idleTimeout)
	}

	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.Close()
		return
	}
	if !p.sweeping {
		p.sweeping = true
		go p.sweep()
	}
	var victim *entry[C]
	if b := p.keys[key]; p.maxPerKey > 0 && b.n >= p.maxPerKey {
		victim = b.tail
	} else if p.idle >= p.capacity {
		victim = p.lruTail
	}
	var evicted C
	if victim != nil {
		evicted = victim.conn
		p.remove(victim)
	}
	e := p.newEntry()
	e.conn, e.key, e.deadline, e.released = c, key, deadline, now
	p.pushFront(e)
	p.mu.Unlock()

	if victim != nil {
		p.evictions.Add(1)
		evicted.Close()
	}
}

// Get takes the most recently released idle connection of key out of the
// pool. Connections whose idle timeout has passed, and those for which Alive
// reports false, are closed and skipped. ok is false when no usable
// connection is left.
func (p *Pool[C]) Get(key uint64) (c C, ok bool) { return p.GetChecked(key, true) }

// GetChecked is Get, calling Alive only when check is set: a caller that checks the
// connection itself as it uses it (and reports a dead one with NoteDead) passes false.
func (p *Pool[C]) GetChecked(key uint64, check bool) (c C, ok bool) {
	for {
		p.mu.Lock()
		e := p.keys[key].head
		if e == nil {
			p.mu.Unlock()
			p.misses.Add(1)
			return c, false
		}
		conn, deadline, released := e.conn, e.deadline, e.released
		p.remove(e)
		p.mu.Unlock()

		var now time.Time
		if !deadline.IsZero() || p.aliveAfter > 0 {
			now = time.Now()
		}
		switch {
		case !deadline.IsZero() && !now.Before(deadline):
			p.expired.Add(1)
			conn.Close()
		case check && p.alive != nil && (p.aliveAfter == 0 || now.Sub(released) >= p.aliveAfter) && !p.alive(conn):
			p.deadOnCheckout.Add(1)
			conn.Close()
		default:
			p.hits.Add(1)
			return conn, true
		}
	}
}

// NoteDead counts a connection Get handed out that its caller found dead on checkout, as
// Get counts those Alive rejects (Stats.DeadOnCheckout).
func (p *Pool[C]) NoteDead() { p.deadOnCheckout.Add(1) }

// Stats returns the pool's counters.
func (p *Pool[C]) Stats() Stats {
	p.mu.Lock()
	idle := p.idle
	p.mu.Unlock()
	return Stats{
		Hits:           p.hits.Load(),
		Misses:         p.misses.Load(),
		Evictions:      p.evictions.Load(),
		Expired:        p.expired.Load(),
		DeadOnCheckout: p.deadOnCheckout.Load(),
		DeadIdle:       p.deadIdle.Load(),
		Idle:           idle,
	}
}

// Close closes every idle connection and stops the sweeper. Later Puts close
// their connection and later Gets miss. Close always returns nil; calling it
// again does nothing.
func (p *Pool[C]) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	sweeping := p.sweeping
	var conns []C
	for e := p.lruHead; e != nil; e = e.lruNext {
		conns = append(conns, e.conn)
	}
	p.keys = nil
	p.lruHead, p.lruTail, p.idle, p.free = nil, nil, 0, nil
	p.mu.Unlock()

	close(p.stop)
	if sweeping {
		<-p.sweepDone
	}
	for _, c := range conns {
		c.Close()
	}
	return nil
}

// sweep closes expired and dead idle connections every interval until Close.
func (p *Pool[C]) sweep() {
	defer close(p.sweepDone)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	var doomed []C // reused between sweeps; owned by this goroutine
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			doomed = p.collect(now, doomed[:0])
			for i, c := range doomed {
				c.Close()
				var zero C
				doomed[i] = zero
			}
		}
	}
}

// collect removes the idle connections that expired at now or that Alive
// reports dead, appends them to doomed and returns it. It also forgets keys
// left without connections, which Get and Put keep to stay allocation-free.
func (p *Pool[C]) collect(now time.Time, doomed []C) []C {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return doomed
	}
	for e := p.lruHead; e != nil; {
		next := e.lruNext
		switch {
		case !e.deadline.IsZero() && !now.Before(e.deadline):
			p.expired.Add(1)
		case p.alive != nil && !p.alive(e.conn):
			p.deadIdle.Add(1)
		default:
			e = next
			continue
		}
		doomed = append(doomed, e.conn)
		p.remove(e)
		e = next
	}
	for k, b := range p.keys {
		if b.n == 0 {
			delete(p.keys, k)
		}
	}
	return doomed
}

// newEntry returns a recycled entry or a new one. p.mu must be held.
func (p *Pool[C]) newEntry() *entry[C] {
	e := p.free
	if e == nil {
		return new(entry[C])
	}
	p.free = e.lruNext
	e.lruNext = nil
	return e
}

// pushFront makes e the most recently released entry of the pool and of its
// key. p.mu must be held.
func (p *Pool[C]) pushFront(e *entry[C]) {
	e.lruNext = p.lruHead
	if p.lruHead != nil {
		p.lruHead.lruPrev = e
	} else {
		p.lruTail = e
	}
	p.lruHead = e

	b := p.keys[e.key]
	e.keyNext = b.head
	if b.head != nil {
		b.head.keyPrev = e
	} else {
		b.tail = e
	}
	b.head = e
	b.n++
	p.keys[e.key] = b
	p.idle++
}

// remove unlinks e from both lists and recycles it. p.mu must be held.
func (p *Pool[C]) remove(e *entry[C]) {
	if e.lruPrev != nil {
		e.lruPrev.lruNext = e.lruNext
	} else {
		p.lruHead = e.lruNext
	}
	if e.lruNext != nil {
		e.lruNext.lruPrev = e.lruPrev
	} else {
		p.lruTail = e.lruPrev
	}

	b := p.keys[e.key]
	if e.keyPrev != nil {
		e.keyPrev.keyNext = e.keyNext
	} else {
		b.head = e.keyNext
	}
	if e.keyNext != nil {
		e.keyNext.keyPrev = e.keyPrev
	} else {
		b.tail = e.keyPrev
	}
	b.n--
	p.keys[e.key] = b
	p.idle--

	*e = entry[C]{lruNext: p.free}
	p.free = e
}
