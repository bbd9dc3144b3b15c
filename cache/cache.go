// Package cache is an HTTP cache for the proxy, following RFC 9111 as a shared cache: which
// responses may be stored, for how long they are fresh, when they must be revalidated, how
// Vary selects among stored responses, how a 304 refreshes a stored response, how unsafe
// requests invalidate, and how requests for the same missing response collapse into one
// upstream request.
//
// The package has three layers. The rules are plain functions and methods of Policy over
// header heads: ParseCacheControl, Policy.NewMeta (storability and freshness), Policy.Decide
// (request directives), VaryNames and Variance, ConditionalRequest and Policy.Merge304,
// EvaluatePreconditions, RangePlan, Invalidations and CacheStatus. The Storage interface keeps
// responses; packages cache/storage/memory and cache/storage/disk implement it, bounded in
// bytes by package cache/eviction. Cache ties rules, a storage and package cache/lock together
// into the calls a proxy makes for one request: Get, then either ServeHit, or Store / Revalidated
// after going upstream.
package cache

import (
	"context"
	"errors"
	"time"

	"github.com/pingora-go/pingora/cache/lock"
	"github.com/pingora-go/pingora/header"
)

// Config configures a Cache.
type Config struct {
	// Storage keeps the responses; required.
	Storage Storage
	// Policy holds the configurable caching rules.
	Policy Policy
	// Key computes primary keys; nil means DefaultKey.
	Key KeyFunc
	// MaxObjectSize bounds the body of a stored response: a larger one is not stored (it still
	// streams to the client). 0 means 64 MiB.
	MaxObjectSize int64
	// NoLock turns collapsed forwarding off: every miss goes upstream.
	NoLock bool
	// LockTimeout is how long a request waits for another request filling the same key before
	// it goes upstream by itself; 0 means 5 seconds.
	LockTimeout time.Duration
	// LockAgeTimeout is how long a request may hold a key while filling it before others stop
	// waiting for it; 0 means 30 seconds.
	LockAgeTimeout time.Duration
	// MaxRanges is how many ranges a request may ask for; 0 means DefaultMaxRanges.
	MaxRanges int
	// Name is this cache's name in Cache-Status; "" means "pingora".
	Name string
	// Now returns the current time; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Cache is an HTTP cache over a Storage. It is safe for concurrent use.
type Cache struct {
	storage     Storage
	policy      Policy
	keyFn       KeyFunc
	maxSize     int64
	locks       *lock.Table[Key]
	lockTimeout time.Duration
	maxRanges   int
	name        string
	now         func() time.Time
	stats       counters
}

// New returns a cache for c.
func New(c Config) (*Cache, error) {
	if c.Storage == nil {
		return nil, errors.New("cache: Config.Storage is required")
	}
	x := &Cache{
		storage:     c.Storage,
		policy:      c.Policy,
		keyFn:       c.Key,
		maxSize:     c.MaxObjectSize,
		lockTimeout: c.LockTimeout,
		maxRanges:   c.MaxRanges,
		name:        c.Name,
		now:         c.Now,
	}
	if x.keyFn == nil {
		x.keyFn = DefaultKey
	}
	if x.maxSize <= 0 {
		x.maxSize = 64 << 20
	}
	if x.lockTimeout <= 0 {
		x.lockTimeout = 5 * time.Second
	}
	if x.name == "" {
		x.name = "pingora"
	}
	if x.now == nil {
		x.now = time.Now
	}
	if !c.NoLock {
		age := c.LockAgeTimeout
		if age <= 0 {
			age = 30 * time.Second
		}
		x.locks = lock.New[Key](age)
	}
	return x, nil
}

// Policy returns the cache's rules.
func (c *Cache) Policy() *Policy { return &c.policy }

// Storage returns the cache's storage.
func (c *Cache) Storage() Storage { return c.storage }

// Key returns the primary key of req with the cache's key function.
func (c *Cache) Key(scheme string, req *header.RequestHeader) Key { return c.keyFn(scheme, req) }

// Stats returns a snapshot of the counters and the storage's occupancy.
func (c *Cache) Stats() Stats {
	s := c.stats.snapshot()
	s.Usage = c.storage.Usage()
	return s
}

// Entry is what Get found for one request, and the request's hold on the key while it fills
// or revalidates it. Close it when the request is done.
type Entry struct {
	// Key is the key looked up: the primary key, with the variance when the stored responses
	// vary.
	Key Key
	// Meta is the stored response, nil on a miss.
	Meta *Meta
	// Body reads the stored body, nil on a miss.
	Body BodyReader
	// Freshness is what may be done with the stored response.
	Freshness Freshness
	// Fwd is why the request must go upstream (FwdNone when the stored response is servable).
	Fwd Fwd
	// RequestCC are the request's cache directives.
	RequestCC CacheControl
	// Collapsed is true when the request waited for another one's fill.
	Collapsed bool
	// Vary computes the variance of a request for a stored response that varies, in lookups
	// and in Store; nil means Variance. GetWith sets it.
	Vary Varier

	permit     *lock.Permit[Key]
	background bool // a background revalidation is this request's to start
}

// Writer reports whether this request holds the key: it is the one to fill or revalidate it,
// in the foreground, or in the background for StaleWhileRevalidate.
func (e *Entry) Writer() bool { return e.permit != nil }

// OnlyIfCachedFails reports whether the request said only-if-cached and nothing servable is
// stored: answer 504 (RFC 9111 §5.2.1.7).
func (e *Entry) OnlyIfCachedFails() bool {
	return e.RequestCC.OnlyIfCached && !e.Freshness.Servable()
}

// Release gives up the request's hold on the key, if it has one, with status s; waiting
// requests then look the key up again (lock.Done), go upstream uncached (lock.GiveUp) or
// compete to fill it (lock.TransientError).
func (e *Entry) Release(s lock.Status) {
	if e.permit != nil {
		e.permit.Release(s)
		e.permit = nil
	}
}

// Background moves e's hold on the key into a new Entry for a background revalidation (the
// StaleWhileRevalidate case): it carries the key, the stored Meta and the request's directives,
// but no body reader, while e keeps its reader to serve the stale response. It returns nil when
// the revalidation is not e's to start (another request holds the key, or the response is not
// stale).
func (e *Entry) Background() *Entry {
	if !e.background {
		return nil
	}
	b := &Entry{Key: e.Key, Meta: e.Meta, Freshness: Revalidate, Fwd: FwdStale,
		RequestCC: e.RequestCC, Vary: e.Vary, permit: e.permit}
	e.permit, e.background = nil, false
	return b
}

// Close releases the body reader and the hold on the key (as a transient error, so that a
// waiting request takes over).
func (e *Entry) Close() {
	e.Release(lock.TransientError)
	if e.Body != nil {
		e.Body.Close()
		e.Body = nil
	}
}

// maxLockRounds bounds how many times Get waits behind other requests' fills.
const maxLockRounds = 4

// Get looks up the stored response for req under its primary key, following Vary, and decides
// how it may be used. When it is not servable and nobody else is fetching the key, the request
// becomes the key's writer (Entry.Writer); when another request is, Get waits for it (at most
// the lock timeout) and looks again, so that concurrent misses make one upstream request. For a
// servable StaleWhileRevalidate response, the request becomes the writer only if nobody is
// revalidating yet: it should then revalidate in the background.
//
// Requests with methods other than GET and HEAD get a Miss with FwdMethod.
func (c *Cache) Get(ctx context.Context, key Key, req *header.RequestHeader) (*Entry, error) {
	return c.GetWith(ctx, key, req, nil)
}

// Varier computes the variance (the secondary key) of req for the stored response m, whose
// Vary lists the request fields it varies on (m.Vary). A proxy phase implements it to replace
// the default, Variance(m.Vary, req).
type Varier interface {
	Variance(m *Meta, req *header.RequestHeader) Hash
}

// GetWith is Get with v computing the variances of req (nil means Variance); the entry keeps
// v for Store.
func (c *Cache) GetWith(ctx context.Context, key Key, req *header.RequestHeader, v Varier) (*Entry, error) {
	if !RequestCacheable(req) {
		return &Entry{Key: key, Fwd: FwdMethod, RequestCC: ParseRequestCacheControl(req), Vary: v}, nil
	}
	collapsed := false
	for round := 0; ; round++ {
		e, err := c.lookup(ctx, key, req, v)
		if err != nil {
			return nil, err
		}
		e.Collapsed = collapsed
		if e.Freshness == StaleWhileRevalidate {
			if c.locks != nil {
				e.permit, _ = c.locks.Acquire(e.Key)
			}
			// Without the lock every such request revalidates.
			e.background = e.permit != nil || c.locks == nil
		}
		if e.Freshness.Servable() || c.locks == nil || e.Fwd == FwdRequest || round >= maxLockRounds {
			c.countLookup(e)
			return e, nil
		}
		permit, l := c.locks.Acquire(e.Key)
		if permit != nil {
			e.permit = permit
			c.countLookup(e)
			return e, nil
		}
		e.Close()
		c.stats.lockWaits.Add(1)
		collapsed = true
		switch l.Wait(ctx, c.lockTimeout) {
		case lock.Done, lock.TransientError, lock.AgeTimeout:
			continue
		case lock.Canceled:
			return nil, ctx.Err()
		case lock.WaitTimeout:
			c.stats.lockTimeouts.Add(1)
		}
		// Given up or timed out: go upstream without holding the key.
		e, err = c.lookup(ctx, key, req, v)
		if err != nil {
			return nil, err
		}
		e.Collapsed = true
		c.countLookup(e)
		return e, nil
	}
}

func (c *Cache) countLookup(e *Entry) {
	if e.Freshness == Miss {
		c.stats.misses.Add(1)
	}
}

// lookup finds the stored response for req without waiting for fills.
func (c *Cache) lookup(ctx context.Context, key Key, req *header.RequestHeader, v Varier) (*Entry, error) {
	e := &Entry{Key: key.PrimaryOnly(), RequestCC: ParseRequestCacheControl(req), Fwd: FwdURIMiss, Vary: v}
	m, body, err := c.storage.Lookup(ctx, e.Key)
	if err != nil {
		return nil, err
	}
	if m != nil && m.VaryIndex {
		body.Close()
		e.Key.Variance = e.variance(m, req)
		e.Fwd = FwdVaryMiss
		if m, body, err = c.storage.Lookup(ctx, e.Key); err != nil {
			return nil, err
		}
	}
	if m == nil {
		return e, nil
	}
	e.Meta, e.Body = m, body
	e.Freshness = c.policy.Decide(m, &e.RequestCC, c.now())
	switch {
	case e.Freshness.Servable():
		e.Fwd = FwdNone
	case e.RequestCC.NoCache || e.RequestCC.MaxAge >= 0 || e.RequestCC.MinFresh >= 0:
		e.Fwd = FwdRequest
	default:
		e.Fwd = FwdStale
	}
	return e, nil
}

// ServeHit prepares dst, the head of a response from the cache for req, from e's stored
// response: HitHeader, then the client's preconditions (304 or 412) and Range (206 or 416, with
// plan set for RangePlan.CopyBody), and the Cache-Status member appended. It returns whether a
// body follows (not for HEAD, 304, 412 or 416). Call it only for a servable entry, or for a
// stale one being served because the origin failed (staleIfError).
func (c *Cache) ServeHit(dst *header.ResponseHeader, e *Entry, req *header.RequestHeader, plan *RangePlan, staleIfError bool) (body bool) {
	cs := c.HitHeader(dst, e, staleIfError)
	body = !req.IsMethod("HEAD") && e.Body != nil
	plan.Result = RangeNone
	switch EvaluatePreconditions(req, dst) {
	case NotModified:
		NotModifiedHeader(dst)
		body = false
	case PreconditionFailed:
		PreconditionFailedHeader(dst)
		body = false
	default:
		plan.Plan(req, dst, e.BodySize(), c.maxRanges)
		plan.Apply(dst)
		if plan.Result == RangeUnsatisfiable {
			body = false
		}
	}
	var buf [160]byte
	AppendCacheStatus(&dst.Fields, &cs, buf[:0])
	return body
}

// HitHeader is the first step of ServeHit, for callers that answer preconditions and ranges
// themselves: dst becomes a copy of the stored head with Age and, when the body's length is
// known, Content-Length, and the hit is counted. It returns the Cache-Status member to append
// once the head is final.
func (c *Cache) HitHeader(dst *header.ResponseHeader, e *Entry, staleIfError bool) CacheStatus {
	now := c.now()
	m := e.Meta
	dst.CopyFrom(&m.Header)
	dst.Version = header.HTTP11
	var buf [24]byte
	dst.Remove("Age")
	dst.AppendBytes([]byte("Age"), m.AppendAge(buf[:0], now))
	if size := e.BodySize(); size >= 0 {
		setContentLength(dst, size)
	}
	c.stats.hits.Add(1)
	if e.Freshness != Fresh || staleIfError {
		c.stats.staleServed.Add(1)
	}
	cs := CacheStatus{Name: c.name, Hit: true, HasTTL: true, TTL: int64(m.TTL(now) / time.Second), Collapsed: e.Collapsed}
	switch {
	case staleIfError:
		cs.Detail = "stale-if-error"
	case e.Freshness == StaleWhileRevalidate:
		cs.Detail = "stale-while-revalidate"
	case e.Freshness == StaleOK:
		cs.Detail = "max-stale"
	}
	return cs
}

// BodySize returns the length of e's stored body, or -1 when there is none or it is still being
// written.
func (e *Entry) BodySize() int64 {
	if e.Body == nil {
		return -1
	}
	return e.Body.Size()
}

func (e *Entry) variance(m *Meta, req *header.RequestHeader) Hash {
	if e.Vary != nil {
		return e.Vary.Variance(m, req)
	}
	return Variance(m.Vary, req)
}

// PreconditionFailedHeader turns dst, a copy of a stored response head, into a 412
// Precondition Failed without content.
func PreconditionFailedHeader(dst *header.ResponseHeader) {
	dst.SetStatus(412)
	for _, n := range [...]string{"Content-Type", "Content-Encoding", "Content-Range",
		"Accept-Ranges", "Content-Length"} {
		dst.Remove(n)
	}
	dst.Append("Content-Length", "0")
}

// Now returns the cache's current time (Config.Now): the clock request and response times given
// to Store and Revalidated should come from.
func (c *Cache) Now() time.Time { return c.now() }

// MaxRanges returns how many ranges a request may ask for (Config.MaxRanges).
func (c *Cache) MaxRanges() int { return c.maxRanges }

// Name returns the cache's name in Cache-Status.
func (c *Cache) Name() string { return c.name }

func setContentLength(h *header.ResponseHeader, n int64) {
	var buf [20]byte
	h.Remove("Content-Length")
	h.AppendBytes([]byte("Content-Length"), appendInt(buf[:0], n))
}

func appendInt(dst []byte, n int64) []byte {
	if n == 0 {
		return append(dst, '0')
	}
	var tmp [20]byte
	i := len(tmp)
	for n > 0 {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
	}
	return append(dst, tmp[i:]...)
}

// AppendCacheStatus adds cs as the last member of the Cache-Status field of h (RFC 9211 §2:
// the member of the cache nearest the client comes last), using scratch to build the value.
func AppendCacheStatus(h *header.Fields, cs *CacheStatus, scratch []byte) {
	if old, ok := h.Get("Cache-Status"); ok {
		scratch = append(scratch, old...)
		scratch = append(scratch, ", "...)
		h.Remove("Cache-Status")
	}
	h.AppendBytes([]byte("Cache-Status"), cs.AppendTo(scratch))
}

// MissStatus returns the Cache-Status member for a response that went upstream: fwdStatus is
// the upstream status, stored whether it is being stored.
func (c *Cache) MissStatus(e *Entry, fwdStatus int, stored bool, detail string) CacheStatus {
	cs := CacheStatus{Name: c.name, Fwd: e.Fwd, FwdStatus: fwdStatus, Stored: stored,
		Collapsed: e.Collapsed, Detail: detail}
	if cs.Fwd == FwdNone {
		cs.Fwd = FwdMiss
	}
	return cs
}

// StaleIfError reports whether e's stored response may be served because the origin failed
// (a connection error or a 5xx) (RFC 5861 §4).
func (c *Cache) StaleIfError(e *Entry) bool {
	return e.Meta != nil && c.policy.CanServeStaleIfError(e.Meta, &e.RequestCC, c.now())
}

// Writer stores one response body as it streams through the proxy, within the maximum object
// size.
type Writer struct {
	c     *Cache
	e     *Entry
	w     BodyWriter
	n     int64
	ended bool
}

// Store decides whether resp, the upstream response to upReq (the request as sent upstream,
// GET) for the client request req, may be stored, and if so starts storing it under e's key,
// with the variance its Vary selects. reqTime and respTime are when upReq was sent and resp
// arrived. It returns the Writer to feed the body to, or nil and the reason it is not stored.
//
// If e holds the key, Store releases it: Done as soon as the entry is visible to readers (at
// once for a streaming storage, else when the Writer finishes), GiveUp when the response is not
// stored.
func (c *Cache) Store(ctx context.Context, e *Entry, req, upReq *header.RequestHeader, resp *header.ResponseHeader, reqTime, respTime time.Time) (*Writer, Reason, error) {
	if e.Meta != nil && resp.Status != 304 {
		c.stats.revalidated200.Add(1)
	}
	m, reason := c.policy.NewMeta(upReq, resp, reqTime, respTime)
	if m == nil {
		e.Release(lock.GiveUp)
		return nil, reason, nil
	}
	if n := ContentLength(resp); n > c.maxSize {
		c.stats.tooLarge.Add(1)
		e.Release(lock.GiveUp)
		return nil, TooLarge, nil
	}
	key := e.Key.PrimaryOnly()
	if len(m.Vary) > 0 {
		idx := &Meta{VaryIndex: true, Vary: m.Vary, Created: m.Created, BodySize: -1,
			RequestTime: m.RequestTime, ResponseTime: m.ResponseTime, Lifetime: m.Lifetime,
			StaleWhileRevalidate: -1, StaleIfError: -1, Tags: m.Tags}
		idx.Header.Status = m.Header.Status
		iw, err := c.storage.Create(ctx, key, idx)
		if err != nil {
			e.Release(lock.TransientError)
			return nil, Storable, err
		}
		if _, err := iw.Finish(ctx); err != nil {
			e.Release(lock.TransientError)
			return nil, Storable, err
		}
		key.Variance = e.variance(m, req)
	}
	w, err := c.storage.Create(ctx, key, m)
	if err != nil {
		e.Release(lock.TransientError)
		return nil, Storable, err
	}
	e.Key = key
	if c.storage.Streaming() {
		e.Release(lock.Done)
	}
	return &Writer{c: c, e: e, w: w}, Storable, nil
}

// Write stores the next piece of body. Past the maximum object size it aborts the entry and
// returns ErrTooLarge: stop writing, the response goes on uncached.
func (w *Writer) Write(ctx context.Context, p []byte) error {
	if w.ended {
		return ErrClosed
	}
	if w.n+int64(len(p)) > w.c.maxSize {
		w.c.stats.tooLarge.Add(1)
		w.Abort()
		return ErrTooLarge
	}
	w.n += int64(len(p))
	if err := w.w.Write(ctx, p); err != nil {
		w.Abort()
		return err
	}
	return nil
}

// Finish completes the entry.
func (w *Writer) Finish(ctx context.Context) error {
	if w.ended {
		return ErrClosed
	}
	w.ended = true
	size, err := w.w.Finish(ctx)
	if err != nil {
		w.e.Release(lock.TransientError)
		return err
	}
	w.c.stats.stored.Add(1)
	w.c.stats.bytesStored.Add(uint64(size))
	w.e.Release(lock.Done)
	return nil
}

// Abort discards the entry (the upstream response failed or was cut short). Readers following
// it get ErrAborted.
func (w *Writer) Abort() {
	if w.ended {
		return
	}
	w.ended = true
	w.w.Abort()
	w.e.Release(lock.TransientError)
}

// Revalidated handles the upstream's 304 to the conditional request upReq made for e (see
// ConditionalRequest): the stored response is freshened and e becomes Fresh, ready for
// ServeHit. ok=false means the 304 does not match the stored response: fetch it again
// without conditions. When the freshened response may no longer be stored, e stays usable for
// this one request and the stored entry is removed.
func (c *Cache) Revalidated(ctx context.Context, e *Entry, upReq *header.RequestHeader, resp *header.ResponseHeader, reqTime, respTime time.Time) (ok bool, err error) {
	merged, _, ok := c.policy.Merge304(e.Meta, upReq, resp, reqTime, respTime)
	if !ok {
		return false, nil
	}
	c.stats.revalidated304.Add(1)
	if merged == nil {
		_, err = c.storage.Purge(ctx, e.Key)
		e.Release(lock.GiveUp)
		e.Freshness = Fresh
		return true, err
	}
	if _, err = c.storage.UpdateMeta(ctx, e.Key, merged); err != nil {
		e.Release(lock.TransientError)
		return true, err
	}
	merged.BodySize = e.Meta.BodySize
	e.Meta = merged
	e.Freshness = Fresh
	e.Fwd = FwdStale
	e.Release(lock.Done)
	return true, nil
}

// Invalidate removes the stored responses an unsafe request invalidates (see Invalidations),
// every variant of each, and returns how many resources had something stored.
func (c *Cache) Invalidate(ctx context.Context, scheme string, req *header.RequestHeader, resp *header.ResponseHeader) (int, error) {
	n := 0
	for _, r := range Invalidations(scheme, req, resp) {
		ok, err := c.storage.Purge(ctx, c.keyFn(scheme, r).PrimaryOnly())
		if err != nil {
			return n, err
		}
		if ok {
			n++
			c.stats.invalidations.Add(1)
		}
	}
	return n, nil
}

// Purge removes what is stored under key's primary key, every variant included, and reports
// whether there was anything.
func (c *Cache) Purge(ctx context.Context, key Key) (bool, error) {
	ok, err := c.storage.Purge(ctx, key.PrimaryOnly())
	if ok {
		c.stats.purges.Add(1)
	}
	return ok, err
}

// PurgeTag removes every stored response tagged tag (Surrogate-Key) and returns how many.
func (c *Cache) PurgeTag(ctx context.Context, tag string) (int, error) {
	n, err := c.storage.PurgeTag(ctx, tag)
	if n > 0 {
		c.stats.purges.Add(1)
	}
	return n, err
}
