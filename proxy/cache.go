package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pingora-go/pingora/cache"
	"github.com/pingora-go/pingora/cache/lock"
	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/perr"
)

// CachePhase is where a request stands with the HTTP cache.
type CachePhase uint8

// The phases.
const (
	// CacheOff: no phase enabled the cache for the request.
	CacheOff CachePhase = iota
	// CacheEnabled: enabled, not looked up yet.
	CacheEnabled
	// CacheBypass: the method is not served from the cache (an unsafe one invalidates what
	// its success changes), or the lookup failed.
	CacheBypass
	// CacheHit: served fresh from the cache.
	CacheHit
	// CacheStaleHit: served stale from the cache (stale-while-revalidate, max-stale,
	// stale-if-error).
	CacheStaleHit
	// CacheMiss: nothing usable was stored; the request went upstream.
	CacheMiss
	// CacheExpired: a stale response was stored; the request went upstream to revalidate it.
	CacheExpired
	// CacheRevalidated: the upstream answered the revalidation with 304; the stored response,
	// refreshed, was served.
	CacheRevalidated
)

// String returns the phase's name.
func (p CachePhase) String() string {
	switch p {
	case CacheOff:
		return "off"
	case CacheEnabled:
		return "enabled"
	case CacheBypass:
		return "bypass"
	case CacheHit:
		return "hit"
	case CacheStaleHit:
		return "stale-hit"
	case CacheMiss:
		return "miss"
	case CacheExpired:
		return "expired"
	case CacheRevalidated:
		return "revalidated"
	}
	return "unknown"
}

// HTTPCache is the cache state of one request, which Session.Cache returns: the reference's
// session.cache. Its zero value is a request without cache.
type HTTPCache struct {
	c    *cache.Cache // nil: off
	dflt *cache.Cache // Options.Cache, for the default RequestCacheFilter
	// used: the cache was turned on for the request (EnableCache), which every other field
	// but dflt needs before it is written; the next request finds the state cleared then.
	used bool
	key  cache.Key

	phase      CachePhase
	background bool
	stored     bool
	reason     cache.Reason

	entry  *cache.Entry  // the lookup's result while the request holds it
	writer *cache.Writer // the body being stored

	// hooks runs CacheVaryFilter for the request sess with its context ctx (a *C).
	hooks cacheHooks
	sess  *Session
	ctx   any

	reqTime, respTime time.Time
	conditional       bool // the upstream request carries the stored validators
	mutated           bool // the upstream request lost the client's conditionals and Range
	dropBody          bool // the client gets no body (HEAD, 304, 412, 416) though one is stored
	slicing           bool // the client gets ranges of the body
	plan              cache.RangePlan
	offset            int64 // of the next upstream body piece, for slicing
	part              int   // the range being sent, for multipart slicing
	partOpen, closed  bool
	scratch           []byte
}

// cacheHooks is implemented by *Proxy[C]: it runs a phase for the cache package, which knows
// nothing of the context type.
type cacheHooks interface {
	cacheVary(s *Session, m *cache.Meta, req *header.RequestHeader, ctx any) cache.Hash
}

func (p *Proxy[C]) cacheVary(s *Session, m *cache.Meta, req *header.RequestHeader, ctx any) cache.Hash {
	return p.app.CacheVaryFilter(s, m, req, ctx.(*C))
}

// varier is the cache.Varier of a request's lookups and stores: the CacheVaryFilter phase.
type varier HTTPCache

func (v *varier) Variance(m *cache.Meta, req *header.RequestHeader) cache.Hash {
	return v.hooks.cacheVary(v.sess, m, req, v.ctx)
}

// Enabled reports whether the cache is on for the request.
func (h *HTTPCache) Enabled() bool { return h.c != nil }

// Cache returns the cache enabled for the request, or nil.
func (h *HTTPCache) Cache() *cache.Cache { return h.c }

// Key returns the request's cache key (set after CacheKeyCallback).
func (h *HTTPCache) Key() cache.Key { return h.key }

// Phase returns where the request stands with the cache.
func (h *HTTPCache) Phase() CachePhase { return h.phase }

// Background reports whether the request is a background revalidation
// (stale-while-revalidate): it has no client, and only the upstream phases run.
func (h *HTTPCache) Background() bool { return h.background }

// Stored reports whether the upstream response is being (or was) stored, and if not, why.
func (h *HTTPCache) Stored() (bool, cache.Reason) { return h.stored, h.reason }

// Disable turns the cache off for the rest of the request; it takes effect before the lookup
// (in RequestCacheFilter, CacheKeyCallback or IsPurge).
func (h *HTTPCache) Disable() {
	if h.entry == nil {
		h.c = nil
		h.phase = CacheOff
	}
}

// EnableCache turns the HTTP cache c on for the request: call it in RequestCacheFilter. A nil c
// turns it off.
func (s *Session) EnableCache(c *cache.Cache) {
	if c == nil {
		s.cache.Disable()
		return
	}
	s.cache.c, s.cache.used = c, true
	s.cache.phase = CacheEnabled
}

// Cache returns the request's cache state.
func (s *Session) Cache() *HTTPCache { return &s.cache }

// scheme returns "https" for a request that arrived over TLS, else "http".
func (s *Session) scheme() string {
	if _, ok := s.netConn.(*tls.Conn); ok {
		return "https"
	}
	return "http"
}

// reqContext is the context of the request's cache operations: an HTTP/2 stream's, which ends
// when the client resets it; HTTP/1 waits are bounded by the cache's own timeouts.
func (s *Session) reqContext() context.Context {
	if s.h2s != nil {
		return s.h2s.Context()
	}
	return context.Background()
}

// done releases what the request holds of the cache: an unfinished body being stored is
// discarded, and the entry's reader and lock are released.
func (h *HTTPCache) done() {
	if h.writer != nil {
		h.writer.Abort()
		h.writer = nil
	}
	if h.entry != nil {
		h.entry.Close()
		h.entry = nil
	}
}

// cacheRequest runs the cache phases after RequestFilter: RequestCacheFilter, CacheKeyCallback,
// IsPurge, then the lookup. It reports done when the request was answered: a hit, a purge, or
// a 504 for only-if-cached.
func (p *Proxy[C]) cacheRequest(st *conn[C], ctx *C) (done bool, err error) {
	s := &st.sess
	h := &s.cache
	h.dflt = p.opts.Cache
	if err := p.app.RequestCacheFilter(s, ctx); err != nil {
		p.log.Warn("request_cache_filter failed: the cache is off for the request", "request", p.app.RequestSummary(s, ctx), "error", err.Error())
		h.Disable()
	}
	if h.c != nil {
		h.hooks, h.sess, h.ctx = p, s, ctx
		key, err := p.app.CacheKeyCallback(s, ctx)
		if err != nil {
			p.log.Warn("cache_key_callback failed: the cache is off for the request", "request", p.app.RequestSummary(s, ctx), "error", err.Error())
			h.Disable()
		}
		h.key = key
	}
	if p.app.IsPurge(s, ctx) {
		return true, p.purge(st, ctx)
	}
	if h.c == nil {
		return false, nil
	}
	return p.cacheLookup(st, ctx)
}

// cacheLookup looks the request up, applies CacheHitFilter and ShouldServeStale, and serves a
// servable response (starting a background revalidation for stale-while-revalidate).
func (p *Proxy[C]) cacheLookup(st *conn[C], ctx *C) (bool, error) {
	s := &st.sess
	h := &s.cache
	e, err := h.c.GetWith(s.reqContext(), h.key, s.req, (*varier)(h))
	if err != nil {
		p.log.Warn("cache lookup failed: going upstream without the cache", "request", p.app.RequestSummary(s, ctx), "error", err.Error())
		h.phase = CacheBypass
		h.c = nil
		return false, nil
	}
	h.entry = e
	if e.Fwd == cache.FwdMethod {
		h.phase = CacheBypass
		return false, nil
	}
	if e.Meta != nil {
		force, err := p.app.CacheHitFilter(s, e.Meta, e.Freshness == cache.Fresh, ctx)
		if err != nil {
			p.log.Warn("cache_hit_filter failed: treating the lookup as a miss", "request", p.app.RequestSummary(s, ctx), "error", err.Error())
			force = ForceMiss
		}
		switch force {
		case ForceFresh:
			e.Freshness, e.Fwd = cache.Fresh, cache.FwdNone
		case ForceExpired:
			if e.Freshness.Servable() {
				e.Freshness, e.Fwd = cache.Revalidate, cache.FwdStale
			}
		case ForceMiss:
			if e.Body != nil {
				e.Body.Close()
			}
			e.Meta, e.Body = nil, nil
			e.Freshness, e.Fwd = cache.Miss, cache.FwdMiss
		}
	}
	if e.OnlyIfCachedFails() {
		cs := cache.CacheStatus{Name: h.c.Name(), Fwd: e.Fwd, Detail: "only-if-cached"}
		var f header.Fields
		f.AppendBytes([]byte("Cache-Status"), cs.AppendTo(nil))
		return true, s.respondErrorWith(504, &f)
	}
	if e.Freshness == cache.StaleWhileRevalidate && !p.app.ShouldServeStale(s, ctx, nil) {
		e.Freshness, e.Fwd = cache.Revalidate, cache.FwdStale
	}
	if e.Freshness.Servable() {
		if bg := e.Background(); bg != nil {
			p.revalidateInBackground(s, bg)
		}
		h.phase = CacheHit
		if e.Freshness != cache.Fresh {
			h.phase = CacheStaleHit
		}
		return true, p.serveFromCache(st, ctx, e, false, false, false)
	}
	if e.Meta == nil {
		h.phase = CacheMiss
		p.app.CacheMiss(s, ctx)
	} else {
		h.phase = CacheExpired
	}
	return false, nil
}

// upstreamRequest turns req, the copy of the request going upstream, into the cache's: HEAD
// becomes GET, the client's conditionals and Range go (the proxy answers them from the whole
// response), and a stored response's validators are added when it is being revalidated.
func (h *HTTPCache) upstreamRequest(req *header.RequestHeader) {
	if h.writer != nil {
		// An earlier attempt stored a head before failing.
		h.writer.Abort()
		h.writer = nil
	}
	h.reqTime = h.c.Now()
	h.conditional, h.mutated, h.dropBody, h.slicing = false, false, false, false
	h.offset, h.part, h.partOpen, h.closed = 0, 0, false, false
	e := h.entry
	if e.Fwd == cache.FwdMethod {
		return
	}
	h.mutated = true
	if e.Meta != nil && e.Body != nil {
		cache.ConditionalRequest(req, e.Meta)
		h.conditional = true
	} else {
		cache.UpstreamRequest(req)
	}
}

// cacheUpstreamHead handles the upstream answers that are served from the cache: a 304 to a
// revalidation (the stored response is refreshed and served) and, within stale-if-error, a 5xx
// (the stale response is served). It reports done when it answered the client.
func (p *Proxy[C]) cacheUpstreamHead(st *conn[C], up upstreamSession, resp *header.ResponseHeader, pumping bool, ctx *C) (bool, error) {
	s := &st.sess
	h := &s.cache
	h.respTime = h.c.Now()
	e := h.entry
	if e.Meta == nil || e.Body == nil {
		return false, nil
	}
	if resp.Status == 304 && h.conditional {
		if err := st.phases(pumping, func() error { return p.app.UpstreamResponseFilter(s, resp, ctx) }); err != nil {
			return true, err
		}
		ok, err := h.c.Revalidated(s.reqContext(), e, &st.upReq, resp, h.reqTime, h.respTime)
		if err != nil {
			p.log.Warn("cache: refreshing a revalidated response failed", "request", p.app.RequestSummary(s, ctx), "error", err.Error())
		}
		if !ok {
			_, _ = h.c.Purge(s.reqContext(), h.key)
			return true, perr.Explain(perr.InvalidHTTPHeader, "upstream answered 304 with validators of another response").AsUp()
		}
		h.phase = CacheRevalidated
		return true, p.serveFromCache(st, ctx, e, false, true, pumping)
	}
	if resp.Status >= 500 && h.c.StaleIfError(e) {
		failure := perr.Explain(perr.HTTPStatus(uint16(min(resp.Status, 599))), "upstream answered "+strconv.Itoa(resp.Status)).AsUp()
		if p.app.ShouldServeStale(s, ctx, failure) {
			up.markBroken() // its body is not read
			h.phase = CacheStaleHit
			return true, p.serveFromCache(st, ctx, e, true, false, pumping)
		}
	}
	return false, nil
}

// cacheAdmit runs on the upstream response head after UpstreamResponseFilter: an unsafe
// request's success invalidates; a cacheable response starts being stored (ResponseCacheFilter,
// then the RFC 9111 rules); the Cache-Status member is added; and the client's conditionals and
// Range, which did not go upstream, are answered from the response head
// (CacheNotModifiedFilter, RangeHeaderFilter).
func (p *Proxy[C]) cacheAdmit(st *conn[C], resp *header.ResponseHeader, ctx *C) error {
	s := &st.sess
	h := &s.cache
	c, e := h.c, h.entry
	rctx := s.reqContext()
	var scratch [160]byte
	if e.Fwd == cache.FwdMethod {
		if _, err := c.Invalidate(rctx, s.scheme(), s.req, resp); err != nil {
			p.log.Warn("cache invalidation failed", "request", p.app.RequestSummary(s, ctx), "error", err.Error())
		}
		cs := c.MissStatus(e, resp.Status, false, "")
		cache.AppendCacheStatus(&resp.Fields, &cs, scratch[:0])
		return nil
	}
	decision, err := p.app.ResponseCacheFilter(s, resp, ctx)
	if err != nil {
		return err
	}
	var w *cache.Writer
	detail := ""
	if decision == StoreByRules {
		var serr error
		w, h.reason, serr = c.Store(rctx, e, s.req, &st.upReq, resp, h.reqTime, h.respTime)
		switch {
		case serr != nil:
			p.log.Warn("cache: storing the response failed", "request", p.app.RequestSummary(s, ctx), "error", serr.Error())
			detail = "storage-error"
		case w == nil:
			detail = h.reason.String()
		}
	} else {
		e.Release(lock.GiveUp)
		detail = "response_cache_filter"
	}
	h.writer, h.stored = w, w != nil
	cs := c.MissStatus(e, resp.Status, w != nil, detail)
	if h.mutated {
		pre, err := p.app.CacheNotModifiedFilter(s, resp, ctx)
		if err != nil {
			return err
		}
		switch pre {
		case cache.NotModified:
			cache.NotModifiedHeader(resp)
			h.dropBody = true
		case cache.PreconditionFailed:
			cache.PreconditionFailedHeader(resp)
			h.dropBody = true
		default:
			if size := cache.ContentLength(resp); resp.Status == 200 && size >= 0 {
				p.app.RangeHeaderFilter(s, resp, size, &h.plan, ctx)
				h.plan.Apply(resp)
				switch h.plan.Result {
				case cache.RangeUnsatisfiable:
					h.dropBody = true
				case cache.RangeSingle, cache.RangeMulti:
					h.slicing = true
				}
			}
		}
	}
	if s.req.IsMethod("HEAD") {
		h.dropBody = true
	}
	cache.AppendCacheStatus(&resp.Fields, &cs, scratch[:0])
	return nil
}

// cacheBody runs on each upstream body piece after UpstreamResponseBodyFilter: the piece is
// stored, then cut to what the client gets. A piece the storage refuses (past the maximum
// object size, or a storage error) ends the storing; the response goes on.
func (p *Proxy[C]) cacheBody(st *conn[C], body *[]byte, eos bool) {
	h := &st.sess.cache
	if w := h.writer; w != nil {
		ctx := st.sess.reqContext()
		if len(*body) > 0 {
			if err := w.Write(ctx, *body); err != nil {
				h.writer, h.stored = nil, false
				if errors.Is(err, cache.ErrTooLarge) {
					h.reason = cache.TooLarge
				} else {
					p.log.Warn("cache: storing the response body failed", "error", err.Error())
				}
			}
		}
		if eos && h.writer != nil {
			h.writer = nil
			if err := w.Finish(ctx); err != nil {
				h.stored = false
				p.log.Warn("cache: finishing a stored response failed", "error", err.Error())
			}
		}
	}
	switch {
	case h.dropBody:
		*body = nil
	case h.slicing:
		*body = h.slice(*body, eos)
	}
}

// slice returns what the client's ranges select of the upstream body piece b, with the
// multipart framing when there are several ranges.
func (h *HTTPCache) slice(b []byte, eos bool) []byte {
	off := h.offset
	h.offset += int64(len(b))
	plan := &h.plan
	if plan.Result == cache.RangeSingle {
		return clip(b, off, plan.Ranges[0])
	}
	out := h.scratch[:0]
	for h.part < len(plan.Ranges) {
		r := plan.Ranges[h.part]
		if r.Start >= h.offset {
			break
		}
		if !h.partOpen {
			out = plan.AppendPartHeader(out, h.part)
			h.partOpen = true
		}
		out = append(out, clip(b, off, r)...)
		if r.End >= h.offset {
			break
		}
		h.part++
		h.partOpen = false
	}
	if !h.closed && (h.part == len(plan.Ranges) || eos) {
		out = plan.AppendClose(out)
		h.closed = true
	}
	h.scratch = out
	return out
}

// clip returns the bytes of b, which starts at offset off of the body, inside r.
func clip(b []byte, off int64, r cache.ByteRange) []byte {
	lo := max(r.Start-off, 0)
	hi := min(r.End+1-off, int64(len(b)))
	if lo >= hi {
		return nil
	}
	return b[lo:hi]
}

// cacheUpstreamFailed serves the stale stored response when going upstream failed, within
// stale-if-error and when ShouldServeStale agrees; otherwise it returns err.
func (p *Proxy[C]) cacheUpstreamFailed(st *conn[C], ctx *C, err error) error {
	if err == nil {
		return nil
	}
	s := &st.sess
	h := &s.cache
	e := h.entry
	if e == nil || s.respStarted || e.Meta == nil || e.Body == nil || !h.c.StaleIfError(e) || !p.app.ShouldServeStale(s, ctx, err) {
		return err
	}
	p.log.Warn("serving a stale response: the upstream failed", "request", p.app.RequestSummary(s, ctx), "error", err.Error())
	h.phase = CacheStaleHit
	return p.serveFromCache(st, ctx, e, true, false, false)
}

// hitBufs are the buffers stored bodies are read into.
var hitBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// serveFromCache answers the request from the stored response of e: the head from the stored
// one (cache.HitHeader), the client's preconditions (CacheNotModifiedFilter) and Range
// (RangeHeaderFilter), Cache-Status, then ResponseFilter, the modules and ResponseBodyFilter as
// for a response from upstream. staleIfError serves it because the upstream failed;
// revalidated because the upstream answered 304. locked runs the phases under the request's
// phase lock (a request body is being sent upstream).
func (p *Proxy[C]) serveFromCache(st *conn[C], ctx *C, e *cache.Entry, staleIfError, revalidated, locked bool) error {
	s := &st.sess
	h := &s.cache
	dst := &s.resp
	dst.Reset()
	cs := h.c.HitHeader(dst, e, staleIfError)
	if revalidated {
		cs.Hit, cs.Fwd, cs.FwdStatus, cs.Detail = false, cache.FwdStale, 304, ""
	}
	body := !s.req.IsMethod("HEAD") && e.Body != nil
	h.plan.Result = cache.RangeNone
	err := st.phases(locked, func() error {
		pre, err := p.app.CacheNotModifiedFilter(s, dst, ctx)
		if err != nil {
			return err
		}
		switch pre {
		case cache.NotModified:
			cache.NotModifiedHeader(dst)
			body = false
		case cache.PreconditionFailed:
			cache.PreconditionFailedHeader(dst)
			body = false
		default:
			p.app.RangeHeaderFilter(s, dst, e.BodySize(), &h.plan, ctx)
			h.plan.Apply(dst)
			if h.plan.Result == cache.RangeUnsatisfiable {
				body = false
			}
		}
		var scratch [160]byte
		cache.AppendCacheStatus(&dst.Fields, &cs, scratch[:0])
		if err := p.app.ResponseFilter(s, dst, ctx); err != nil {
			return err
		}
		return s.modulesResponseHeader(dst, !body)
	})
	if err != nil {
		return err
	}
	if err := s.writeHeader(dst, !body); err != nil {
		return err
	}
	if !body {
		return nil
	}
	buf := hitBufs.Get().(*[]byte)
	defer hitBufs.Put(buf)
	piece := &st.respPiece
	err = h.plan.CopyBody(s.reqContext(), e.Body, *buf, func(b []byte) error {
		*piece = b
		return p.hitBody(st, piece, false, locked, ctx)
	})
	if err != nil {
		*piece = nil
		if _, ok := perr.As(err); ok {
			return err
		}
		return perr.Because(perr.FileReadError, "reading the stored body", err).AsIn()
	}
	*piece = nil
	return p.hitBody(st, piece, true, locked, ctx)
}

// hitBody sends one piece of a stored body through ResponseBodyFilter and the modules.
func (p *Proxy[C]) hitBody(st *conn[C], body *[]byte, eos, locked bool, ctx *C) error {
	s := &st.sess
	var d time.Duration
	err := st.phases(locked, func() (err error) {
		if d, err = p.app.ResponseBodyFilter(s, body, eos, ctx); err != nil {
			return err
		}
		return s.modulesResponseBody(body, eos)
	})
	if err != nil {
		return err
	}
	if d > 0 {
		time.Sleep(d)
	}
	return s.writeDown(*body, eos, nil)
}

// purge answers a purge request (IsPurge): the request's key with all its variants, or, when
// the request has a Surrogate-Key field, every response tagged with one of its keys.
func (p *Proxy[C]) purge(st *conn[C], ctx *C) error {
	s := &st.sess
	h := &s.cache
	status := PurgeDisabled
	if h.c != nil {
		rctx := s.reqContext()
		var found bool
		var err error
		if tags := purgeTags(s.req); len(tags) > 0 {
			for _, t := range tags {
				n, terr := h.c.PurgeTag(rctx, t)
				found = found || n > 0
				err = errors.Join(err, terr)
			}
		} else {
			found, err = h.c.Purge(rctx, h.key)
		}
		switch {
		case err != nil:
			p.log.Error("cache purge failed", "request", p.app.RequestSummary(s, ctx), "error", err.Error())
			status = PurgeError
		case found:
			status = PurgeFound
		default:
			status = PurgeNotFound
		}
	}
	r := &s.resp
	cannedPurge(r, status.StatusCode())
	if err := p.app.PurgeResponseFilter(s, ctx, status, r); err != nil {
		p.log.Error("purge_response_filter failed", "request", p.app.RequestSummary(s, ctx), "error", err.Error())
		cannedPurge(r, 500)
	}
	return s.WriteResponseHeader(r, true)
}

// maxPurgeTags bounds the tags one purge request may list.
const maxPurgeTags = 64

func purgeTags(req *header.RequestHeader) []string {
	var tags []string
	req.Values("Surrogate-Key", func(v []byte) bool {
		for _, t := range strings.Fields(string(v)) {
			if len(tags) == maxPurgeTags {
				return false
			}
			tags = append(tags, t)
		}
		return true
	})
	return tags
}

func cannedPurge(r *header.ResponseHeader, status int) {
	r.Reset()
	r.Status, r.Version = status, header.HTTP11
	r.Append("Server", "pingora-go")
	r.Append("Content-Length", "0")
	r.Append("Cache-Control", "private, no-store")
}
