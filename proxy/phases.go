// Package proxy is the proxy engine: users implement ProxyHTTP, whose phases the engine runs
// for every request, from reading the downstream request to logging, with retries and
// failover between upstream peers.
//
// The phases and their order follow Cloudflare Pingora's ProxyHttp (see
// docs/user_guide/phase.md). A program embeds Defaults in its proxy type and implements
// NewCtx and UpstreamPeer; every other phase has the default behaviour until it is overridden.
// C is the type of the per-request context each phase receives a pointer to.
package proxy

import (
	"errors"
	"time"

	"github.com/pingora-go/pingora/cache"
	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/upstream"
)

// ProxyHTTP is the set of phases a proxy program implements. Embed Defaults[C] to get the
// default of every phase and override the ones you need; NewCtx and UpstreamPeer have no
// default.
//
// Body filters receive *body, a slice that is only valid during the call (it points into a
// connection buffer): replace *body to change the bytes sent on, set it to nil to drop them,
// and copy what must outlive the call. A returned time.Duration greater than zero makes the
// engine wait that long before going on (rate shaping).
type ProxyHTTP[C any] interface {
	// NewCtx returns the context of a new request. It runs once per request, after the
	// request head was read.
	NewCtx() C
	// UpstreamPeer chooses where to send the request. It runs before every connection
	// attempt, again on each retry.
	UpstreamPeer(s *Session, ctx *C) (*upstream.Peer, error)

	// EarlyRequestFilter is the first phase, before any module. Returning an error ends the
	// request through FailToProxy.
	EarlyRequestFilter(s *Session, ctx *C) error
	// RequestFilter inspects or changes the request, or answers it: return true once a
	// response was written (s.Respond, s.RespondError) to end the request there.
	RequestFilter(s *Session, ctx *C) (handled bool, err error)
	// RequestBodyFilter sees each piece of the request body before it goes upstream;
	// endOfStream is true on the last call.
	RequestBodyFilter(s *Session, body *[]byte, endOfStream bool, ctx *C) error

	// The cache phases (see cache_phases.go and docs/user_guide/cache.md) run after
	// RequestFilter, and on the upstream response, when a phase enabled the HTTP cache for the
	// request.

	// RequestCacheFilter enables the cache for the request: s.EnableCache(c). The default
	// enables Options.Cache, if set. An error is logged and leaves the cache off.
	RequestCacheFilter(s *Session, ctx *C) error
	// CacheKeyCallback returns the request's primary cache key; an error turns the cache off
	// for the request.
	CacheKeyCallback(s *Session, ctx *C) (cache.Key, error)
	// CacheMiss runs when the lookup found nothing stored and the request goes upstream to
	// fill the cache.
	CacheMiss(s *Session, ctx *C)
	// CacheHitFilter runs when the lookup found a stored response, fresh or not, and may force
	// how it is used; an error treats the lookup as a miss.
	CacheHitFilter(s *Session, meta *cache.Meta, fresh bool, ctx *C) (ForcedFreshness, error)
	// ResponseCacheFilter decides whether the upstream response may be stored, after
	// UpstreamResponseFilter.
	ResponseCacheFilter(s *Session, resp *header.ResponseHeader, ctx *C) (ResponseCacheable, error)
	// CacheVaryFilter computes the variance (secondary key) of req for a stored response that
	// varies, in lookups and when storing.
	CacheVaryFilter(s *Session, meta *cache.Meta, req *header.RequestHeader, ctx *C) cache.Hash
	// CacheNotModifiedFilter answers the client's conditional request from a cached or
	// cache-filtered response head: 304, 412 or the response.
	CacheNotModifiedFilter(s *Session, resp *header.ResponseHeader, ctx *C) (cache.Precondition, error)
	// RangeHeaderFilter plans the answer to the client's Range from a cached or cache-filtered
	// response head whose body has size bytes (-1: unknown).
	RangeHeaderFilter(s *Session, resp *header.ResponseHeader, size int64, plan *cache.RangePlan, ctx *C)
	// ShouldServeStale decides whether a stale stored response may be served: err is the
	// upstream failure (stale-if-error), nil for stale-while-revalidate.
	ShouldServeStale(s *Session, ctx *C, err error) bool
	// IsPurge reports whether the request is a purge of its cache key; asked even when the
	// cache is off (a purge then answers 405).
	IsPurge(s *Session, ctx *C) bool
	// PurgeResponseFilter changes the response to a purge; an error answers 500.
	PurgeResponseFilter(s *Session, ctx *C, status PurgeStatus, resp *header.ResponseHeader) error

	// ProxyUpstreamFilter decides whether to go upstream at all; false without a response
	// written answers 502.
	ProxyUpstreamFilter(s *Session, ctx *C) (bool, error)
	// ConnectedToUpstream runs once a connection to the peer is ready, new or reused.
	ConnectedToUpstream(s *Session, reused bool, peer *upstream.Peer, ctx *C) error
	// UpstreamRequestFilter changes the copy of the request head about to be sent upstream.
	UpstreamRequestFilter(s *Session, req *header.RequestHeader, ctx *C) error
	// UpstreamResponseFilter sees the upstream response head first (before any cache).
	UpstreamResponseFilter(s *Session, resp *header.ResponseHeader, ctx *C) error
	// ResponseFilter changes every response head sent downstream.
	ResponseFilter(s *Session, resp *header.ResponseHeader, ctx *C) error
	// UpstreamResponseBodyFilter sees each piece of the upstream response body first.
	UpstreamResponseBodyFilter(s *Session, body *[]byte, endOfStream bool, ctx *C) (time.Duration, error)
	// ResponseBodyFilter sees each piece of the response body sent downstream.
	ResponseBodyFilter(s *Session, body *[]byte, endOfStream bool, ctx *C) (time.Duration, error)
	// UpstreamResponseTrailerFilter sees the upstream response's trailers.
	UpstreamResponseTrailerFilter(s *Session, trailers *header.Fields, ctx *C) error
	// ResponseTrailerFilter sees the trailers sent downstream; returned bytes are sent as a
	// last piece of body instead of the trailers.
	ResponseTrailerFilter(s *Session, trailers *header.Fields, ctx *C) ([]byte, error)
	// Logging runs last for every request, success or failure; err is the error that ended
	// it, if any.
	Logging(s *Session, err error, ctx *C)
	// SuppressErrorLog returns true to skip the engine's error log line for err.
	SuppressErrorLog(s *Session, ctx *C, err error) bool
	// FailToConnect runs when connecting to peer failed. Mark the error retryable
	// (SetRetry(true)) to go back to UpstreamPeer; the default returns it unchanged, not
	// retryable.
	FailToConnect(s *Session, peer *upstream.Peer, ctx *C, err *perr.Error) *perr.Error
	// ErrorWhileProxy runs when an error happened after the connection was made. The default
	// adds the peer to the context and decides a ReusedOnly retry: retry when the connection
	// was a reused one and the buffered request body can be replayed.
	ErrorWhileProxy(peer *upstream.Peer, s *Session, err *perr.Error, ctx *C, clientReused bool) *perr.Error
	// FailToProxy answers a request that failed for good. The default responds with
	// perr.StatusFor(err) when a response can still be sent.
	FailToProxy(s *Session, err error, ctx *C) FailToProxy
	// RequestSummary describes the request in error log lines.
	RequestSummary(s *Session, ctx *C) string
	// PersistConnectionContext returns a value to hand to the next request on the same
	// downstream connection (HTTP/1 keep-alive), or nil.
	PersistConnectionContext(s *Session, ctx *C) any
	// OnConnectionReuse receives that value at the start of the next request, before
	// EarlyRequestFilter.
	OnConnectionReuse(s *Session, ctx *C, prev any)
}

// FailToProxy is what FailToProxy did: the status it answered (0 for none) and whether the
// downstream connection may serve another request.
type FailToProxy struct {
	ErrorCode          int
	CanReuseDownstream bool
}

// Defaults implements every phase of ProxyHTTP but NewCtx and UpstreamPeer with the
// reference's default behaviour. Embed it in a proxy type.
type Defaults[C any] struct{}

// EarlyRequestFilter does nothing.
func (Defaults[C]) EarlyRequestFilter(*Session, *C) error { return nil }

// RequestFilter lets the request go on.
func (Defaults[C]) RequestFilter(*Session, *C) (bool, error) { return false, nil }

// RequestBodyFilter passes the body on unchanged.
func (Defaults[C]) RequestBodyFilter(*Session, *[]byte, bool, *C) error { return nil }

// ProxyUpstreamFilter goes upstream.
func (Defaults[C]) ProxyUpstreamFilter(*Session, *C) (bool, error) { return true, nil }

// ConnectedToUpstream does nothing.
func (Defaults[C]) ConnectedToUpstream(*Session, bool, *upstream.Peer, *C) error { return nil }

// UpstreamRequestFilter sends the request head unchanged.
func (Defaults[C]) UpstreamRequestFilter(*Session, *header.RequestHeader, *C) error { return nil }

// UpstreamResponseFilter does nothing.
func (Defaults[C]) UpstreamResponseFilter(*Session, *header.ResponseHeader, *C) error { return nil }

// ResponseFilter does nothing.
func (Defaults[C]) ResponseFilter(*Session, *header.ResponseHeader, *C) error { return nil }

// UpstreamResponseBodyFilter passes the body on unchanged.
func (Defaults[C]) UpstreamResponseBodyFilter(*Session, *[]byte, bool, *C) (time.Duration, error) {
	return 0, nil
}

// ResponseBodyFilter passes the body on unchanged.
func (Defaults[C]) ResponseBodyFilter(*Session, *[]byte, bool, *C) (time.Duration, error) {
	return 0, nil
}

// UpstreamResponseTrailerFilter does nothing.
func (Defaults[C]) UpstreamResponseTrailerFilter(*Session, *header.Fields, *C) error { return nil }

// ResponseTrailerFilter passes the trailers on.
func (Defaults[C]) ResponseTrailerFilter(*Session, *header.Fields, *C) ([]byte, error) {
	return nil, nil
}

// Logging does nothing.
func (Defaults[C]) Logging(*Session, error, *C) {}

// SuppressErrorLog logs every error.
func (Defaults[C]) SuppressErrorLog(*Session, *C, error) bool { return false }

// FailToConnect returns the error unchanged.
func (Defaults[C]) FailToConnect(_ *Session, _ *upstream.Peer, _ *C, err *perr.Error) *perr.Error {
	return err
}

// ErrorWhileProxy adds the peer to the error's context and resolves a ReusedOnly retry (a
// connection that failed before any byte of the response arrived): the request is retried
// when the request body seen so far is still buffered and either the connection was a reused
// one (the reference's rule: the server may have closed it while it sat in the pool) or the
// method is idempotent (RFC 9110 §9.2.2; a new connection reset by a server that is shutting
// down, which nginx's proxy_next_upstream retries too).
func (Defaults[C]) ErrorWhileProxy(peer *upstream.Peer, s *Session, err *perr.Error, _ *C, clientReused bool) *perr.Error {
	err = err.MoreContext("Peer: " + peer.String())
	err.Retry = err.Retry.DecideReuse((clientReused || idempotent(s.Req())) && !s.RetryBufferTruncated())
	return err
}

// idempotent reports whether the request's method is idempotent (RFC 9110 §9.2.2).
func idempotent(r *header.RequestHeader) bool {
	switch string(r.Method()) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// FailToProxy answers with perr.StatusFor(err), unless nothing can be sent any more, and
// closes an HTTP/1 downstream connection afterwards (the response says Connection: close);
// an HTTP/2 connection keeps serving its other streams.
func (Defaults[C]) FailToProxy(s *Session, err error, _ *C) FailToProxy {
	code := perr.StatusFor(err)
	if !s.IsHTTP2() {
		// An HTTP/1 connection closes after a failed request, as the reference does; an
		// HTTP/2 one goes on serving its other streams (the failed one ends alone).
		s.SetKeepAlive(false)
	}
	if code > 0 && !s.ResponseStarted() {
		if errors.Is(err, ErrPeerBusy) {
			var f header.Fields
			f.Append("Retry-After", RetryAfterBusy)
			s.respondErrorWith(code, &f)
		} else {
			s.RespondError(code)
		}
	}
	return FailToProxy{ErrorCode: code}
}

// RequestSummary returns "METHOD TARGET, Host: HOST".
func (Defaults[C]) RequestSummary(s *Session, _ *C) string {
	r := s.Req()
	return string(r.Method()) + " " + string(r.Target()) + ", Host: " + string(r.Host())
}

// PersistConnectionContext keeps nothing.
func (Defaults[C]) PersistConnectionContext(*Session, *C) any { return nil }

// OnConnectionReuse does nothing.
func (Defaults[C]) OnConnectionReuse(*Session, *C, any) {}
