package proxy

import (
	"github.com/pingora-go/pingora/cache"
	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/perr"
)

// The cache phases are methods of ProxyHTTP, with their defaults in Defaults, rather than an
// optional interface checked by a type assertion: every proxy program embeds Defaults, so new
// methods cost its authors nothing, and a phase is overridden the same way whether it is about
// the cache or not (the reference's ProxyHttp trait holds them all too). The engine calls
// only RequestCacheFilter and IsPurge for a request whose cache stays off.

// ForcedFreshness is how CacheHitFilter overrides the freshness of a stored response.
type ForcedFreshness uint8

// The overrides.
const (
	// NoForce uses the stored response as RFC 9111 decides.
	NoForce ForcedFreshness = iota
	// ForceFresh serves the stored response as if it were fresh.
	ForceFresh
	// ForceExpired revalidates the stored response upstream as if it were stale.
	ForceExpired
	// ForceMiss ignores the stored response: the request goes upstream unconditionally and
	// its response replaces the stored one.
	ForceMiss
)

// ResponseCacheable is ResponseCacheFilter's decision on an upstream response.
type ResponseCacheable uint8

// The decisions.
const (
	// StoreByRules stores the response when RFC 9111 and the cache's Policy allow it.
	StoreByRules ResponseCacheable = iota
	// DoNotStore passes the response on without storing it.
	DoNotStore
)

// PurgeStatus is the outcome of a purge request.
type PurgeStatus uint8

// The outcomes and the status each answers with.
const (
	// PurgeFound: something was stored and is gone (200).
	PurgeFound PurgeStatus = iota
	// PurgeNotFound: nothing was stored (404).
	PurgeNotFound
	// PurgeDisabled: the cache is off for the request (405).
	PurgeDisabled
	// PurgeError: the storage failed (500).
	PurgeError
)

// StatusCode returns the HTTP status a purge with this outcome answers with.
func (p PurgeStatus) StatusCode() int {
	switch p {
	case PurgeFound:
		return 200
	case PurgeNotFound:
		return 404
	case PurgeDisabled:
		return 405
	}
	return 500
}

// IsPurgeMethod reports whether the request's method is PURGE: an IsPurge phase can return it
// (after checking that the client may purge). A PURGE request carrying a Surrogate-Key field
// purges every response tagged with one of the keys it lists instead of its own URI.
func IsPurgeMethod(s *Session) bool { return s.Req().IsMethod("PURGE") }

// RequestCacheFilter enables Options.Cache for the request, if the proxy has one.
func (Defaults[C]) RequestCacheFilter(s *Session, _ *C) error {
	if c := s.cache.dflt; c != nil {
		s.EnableCache(c)
	}
	return nil
}

// CacheKeyCallback returns the key of the cache's key function (cache.DefaultKey unless
// cache.Config.Key says otherwise): scheme, host, path and query.
func (Defaults[C]) CacheKeyCallback(s *Session, _ *C) (cache.Key, error) {
	c := s.cache.c
	if c == nil {
		return cache.Key{}, perr.Explain(perr.InternalError, "cache key asked with the cache off").AsIn()
	}
	return c.Key(s.scheme(), s.Req()), nil
}

// CacheMiss does nothing.
func (Defaults[C]) CacheMiss(*Session, *C) {}

// CacheHitFilter keeps the freshness RFC 9111 decides.
func (Defaults[C]) CacheHitFilter(*Session, *cache.Meta, bool, *C) (ForcedFreshness, error) {
	return NoForce, nil
}

// ResponseCacheFilter leaves the decision to RFC 9111 and the cache's Policy.
func (Defaults[C]) ResponseCacheFilter(*Session, *header.ResponseHeader, *C) (ResponseCacheable, error) {
	return StoreByRules, nil
}

// CacheVaryFilter returns cache.Variance: the request fields the response's Vary names,
// normalised.
func (Defaults[C]) CacheVaryFilter(_ *Session, meta *cache.Meta, req *header.RequestHeader, _ *C) cache.Hash {
	return cache.Variance(meta.Vary, req)
}

// CacheNotModifiedFilter evaluates the request's preconditions against resp in RFC 9110
// §13.2.2 order (cache.EvaluatePreconditions).
func (Defaults[C]) CacheNotModifiedFilter(s *Session, resp *header.ResponseHeader, _ *C) (cache.Precondition, error) {
	return cache.EvaluatePreconditions(s.Req(), resp), nil
}

// RangeHeaderFilter plans single and multiple ranges for GET and HEAD on a 200 of known size,
// with If-Range, up to the cache's MaxRanges (RangePlan.Plan).
func (Defaults[C]) RangeHeaderFilter(s *Session, resp *header.ResponseHeader, size int64, plan *cache.RangePlan, _ *C) {
	maxRanges := 0
	if c := s.cache.c; c != nil {
		maxRanges = c.MaxRanges()
	}
	plan.Plan(s.Req(), resp, size, maxRanges)
}

// ShouldServeStale serves stale on an upstream failure (an error whose source is upstream:
// connection failures and 5xx answers), within the stale-if-error window the cache allows, and
// within the stale-while-revalidate window (err nil) as RFC 5861 says; the reference's default
// answers false to the latter.
func (Defaults[C]) ShouldServeStale(_ *Session, _ *C, err error) bool {
	if err == nil {
		return true
	}
	e, ok := perr.As(err)
	return ok && e.Source == perr.Upstream
}

// IsPurge returns false: there is no purge unless a program defines one (see IsPurgeMethod).
func (Defaults[C]) IsPurge(*Session, *C) bool { return false }

// PurgeResponseFilter leaves the purge response as it is.
func (Defaults[C]) PurgeResponseFilter(*Session, *C, PurgeStatus, *header.ResponseHeader) error {
	return nil
}
