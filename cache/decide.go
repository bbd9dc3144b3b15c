package cache

import (
	"time"
)

// Freshness is what a cache may do with a stored response for a request.
type Freshness uint8

// The decisions.
const (
	// Miss: nothing usable is stored; go upstream.
	Miss Freshness = iota
	// Fresh: serve the stored response.
	Fresh
	// StaleOK: the response is stale but the client accepts it (max-stale); serve it.
	StaleOK
	// StaleWhileRevalidate: serve the stale response now and revalidate it in the background
	// (RFC 5861 §3).
	StaleWhileRevalidate
	// Revalidate: the stored response may only be used after the origin validates it: send a
	// conditional request (see ConditionalRequest). On an upstream error it may still be served
	// if CanServeStaleIfError allows.
	Revalidate
)

// String returns the decision's name.
func (f Freshness) String() string {
	switch f {
	case Miss:
		return "miss"
	case Fresh:
		return "fresh"
	case StaleOK:
		return "stale-ok"
	case StaleWhileRevalidate:
		return "stale-while-revalidate"
	case Revalidate:
		return "revalidate"
	}
	return "unknown"
}

// Servable reports whether the stored response may be sent without waiting for the origin.
func (f Freshness) Servable() bool {
	return f == Fresh || f == StaleOK || f == StaleWhileRevalidate
}

// Decide applies the request's directives (cc, from ParseRequestCacheControl) and the stored
// response's to decide how a stored response may be used at now (RFC 9111 §4, §4.2.4, §5.2.1,
// RFC 5861). A nil meta is a Miss.
//
// Validation is required when the request says no-cache (or Pragma: no-cache), when the
// response says no-cache, when the response is older than the request's max-age, or when it
// will not stay fresh for the request's min-fresh. A stale response is served when the request's
// max-stale accepts it, unless the response forbids serving stale; otherwise within the
// stale-while-revalidate window (the response's, else the policy's) it is served while a
// background revalidation runs.
func (p *Policy) Decide(m *Meta, cc *CacheControl, now time.Time) Freshness {
	if m == nil {
		return Miss
	}
	if cc.NoCache || m.NoCache {
		return Revalidate
	}
	age := m.Age(now)
	if cc.MaxAge >= 0 && age > time.Duration(cc.MaxAge)*time.Second {
		return Revalidate
	}
	if cc.MinFresh >= 0 && m.Lifetime-age < time.Duration(cc.MinFresh)*time.Second {
		return Revalidate
	}
	if age < m.Lifetime {
		return Fresh
	}
	if m.MustRevalidate {
		return Revalidate
	}
	staleness := age - m.Lifetime
	if cc.MaxStaleAny || (cc.MaxStale >= 0 && staleness <= time.Duration(cc.MaxStale)*time.Second) {
		return StaleOK
	}
	if cc.MaxAge < 0 && cc.MinFresh < 0 && staleness < p.swr(m) {
		return StaleWhileRevalidate
	}
	return Revalidate
}

// CanServeStaleIfError reports whether the stale response m may be served at now because the
// origin failed (an error, or a 5xx) (RFC 5861 §4): within the response's stale-if-error window
// (else the policy's), extended by the request's own stale-if-error, and never when the
// response forbids serving stale.
func (p *Policy) CanServeStaleIfError(m *Meta, cc *CacheControl, now time.Time) bool {
	if m == nil || m.MustRevalidate || m.VaryIndex {
		return false
	}
	window := m.StaleIfError
	if window < 0 {
		window = p.StaleIfError
	}
	if cc != nil && cc.StaleIfError >= 0 {
		window = max(window, time.Duration(cc.StaleIfError)*time.Second)
	}
	return m.Age(now)-m.Lifetime < window
}

func (p *Policy) swr(m *Meta) time.Duration {
	if m.StaleWhileRevalidate >= 0 {
		return m.StaleWhileRevalidate
	}
	return p.StaleWhileRevalidate
}
