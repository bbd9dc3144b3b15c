package cache

import (
	"strings"
	"time"

	"github.com/pingora-go/pingora/header"
)

// Policy holds the configurable parts of the caching rules. The zero value is the RFC 9111
// behaviour with the defaults documented on each field.
type Policy struct {
	// HeuristicFraction is the share of the time since Last-Modified that a response without
	// explicit freshness stays fresh (RFC 9111 §4.2.2); 0 means the customary 0.1.
	HeuristicFraction float64
	// HeuristicMax caps heuristic freshness; 0 means 24 hours.
	HeuristicMax time.Duration
	// NoHeuristic turns heuristic freshness off.
	NoHeuristic bool
	// DefaultTTL, when set, gives the freshness lifetime of a response of the status that has
	// no explicit freshness and no heuristic one; 0 leaves it without. It is also how a status
	// that is not heuristically cacheable can be stored without explicit freshness.
	DefaultTTL func(status int) time.Duration
	// StaleWhileRevalidate and StaleIfError are the windows used for responses that do not set
	// stale-while-revalidate or stale-if-error themselves (0: none).
	StaleWhileRevalidate time.Duration
	StaleIfError         time.Duration
	// StoreSetCookie allows storing responses that carry Set-Cookie. RFC 9111 allows it, but
	// like nginx and Varnish the default is not to, since such responses are usually personal.
	StoreSetCookie bool
}

// Reason says why a response was not stored, or why the cache was bypassed.
type Reason uint8

// The reasons. Their String forms appear in Cache-Status detail.
const (
	// Storable means the response may be stored.
	Storable Reason = iota
	// MethodNotCacheable: the request method is not GET (HEAD is fetched as GET).
	MethodNotCacheable
	// StatusNotCacheable: the status is not final, is 206 or 304, or has no freshness.
	StatusNotCacheable
	// RequestNoStore: the request has Cache-Control: no-store.
	RequestNoStore
	// ResponseNoStore: the response has no-store (or must-understand with an unknown status).
	ResponseNoStore
	// ResponsePrivate: the response has an unqualified private.
	ResponsePrivate
	// Authorized: the request has Authorization and the response does not allow sharing it.
	Authorized
	// VaryStar: the response has Vary: * or a Vary the cache does not accept.
	VaryStar
	// SetCookie: the response has Set-Cookie and Policy.StoreSetCookie is off.
	SetCookie
	// NoFreshness: no explicit or heuristic freshness and no validator to revalidate with.
	NoFreshness
	// TooLarge: the response is larger than the maximum object size.
	TooLarge
)

// String returns a short token for the reason.
func (r Reason) String() string {
	switch r {
	case Storable:
		return "storable"
	case MethodNotCacheable:
		return "method"
	case StatusNotCacheable:
		return "status"
	case RequestNoStore:
		return "request-no-store"
	case ResponseNoStore:
		return "no-store"
	case ResponsePrivate:
		return "private"
	case Authorized:
		return "authorization"
	case VaryStar:
		return "vary"
	case SetCookie:
		return "set-cookie"
	case NoFreshness:
		return "no-freshness"
	case TooLarge:
		return "too-large"
	}
	return "unknown"
}

// RequestCacheable reports whether a stored response may be used for req at all: GET and HEAD
// (RFC 9111 §4). Other methods go upstream, and unsafe ones invalidate (see Invalidations).
func RequestCacheable(req *header.RequestHeader) bool {
	return req.IsMethod("GET") || req.IsMethod("HEAD")
}

// HeuristicallyCacheable reports whether status is cacheable by default (RFC 9110 §15.1).
func HeuristicallyCacheable(status int) bool {
	switch status {
	case 200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// understood reports whether the cache implements the caching semantics of status, for
// must-understand (RFC 9111 §5.2.2.3).
func understood(status int) bool {
	return status >= 200 && status != 206 && header.StatusText(status) != ""
}

// NewMeta decides whether resp, the answer to req, may be stored by a shared cache (RFC 9111
// §3) and if so returns the Meta to store it with. reqTime and respTime are when the request
// was sent upstream and when the response head arrived. The request is the one sent upstream:
// its method must be GET. The stored header is a copy of resp.
func (p *Policy) NewMeta(req *header.RequestHeader, resp *header.ResponseHeader, reqTime, respTime time.Time) (*Meta, Reason) {
	if !req.IsMethod("GET") {
		return nil, MethodNotCacheable
	}
	reqCC := ParseCacheControl(&req.Fields)
	if reqCC.NoStore {
		return nil, RequestNoStore
	}
	status := resp.Status
	if status < 200 || status == 206 || status == 304 {
		return nil, StatusNotCacheable
	}
	cc := ParseCacheControl(&resp.Fields)
	if cc.MustUnderstand {
		if !understood(status) {
			return nil, ResponseNoStore
		}
	} else if cc.NoStore {
		return nil, ResponseNoStore
	}
	if cc.Private {
		return nil, ResponsePrivate
	}
	// §3.5: a response to an authenticated request is personal unless the origin says otherwise.
	if req.Has("Authorization") && !cc.Public && !cc.MustRevalidate && cc.SMaxAge < 0 {
		return nil, Authorized
	}
	if !p.StoreSetCookie && resp.Has("Set-Cookie") {
		return nil, SetCookie
	}
	vary, star, ok := VaryNames(resp)
	if star || !ok {
		return nil, VaryStar
	}

	m := &Meta{Vary: vary, BodySize: -1, StaleWhileRevalidate: -1, StaleIfError: -1}
	m.ageTimes(resp, reqTime, respTime)
	m.Created = respTime
	lifetime, heuristic, explicit := p.lifetime(resp, &cc, m.ResponseTime)
	if !explicit && !heuristic && !cc.Public && !HeuristicallyCacheable(status) {
		return nil, StatusNotCacheable
	}
	m.Lifetime, m.Heuristic = lifetime, heuristic
	m.NoCache = cc.NoCache
	m.MustRevalidate = cc.MustRevalidate || cc.ProxyRevalidate || cc.SMaxAge >= 0
	if cc.StaleWhileRevalidate >= 0 {
		m.StaleWhileRevalidate = time.Duration(cc.StaleWhileRevalidate) * time.Second
	}
	if cc.StaleIfError >= 0 {
		m.StaleIfError = time.Duration(cc.StaleIfError) * time.Second
	}
	if lifetime <= 0 && !resp.Has("ETag") && !resp.Has("Last-Modified") {
		// Stale from the start and impossible to revalidate: storing it would only cost space.
		return nil, NoFreshness
	}
	m.Header.CopyFrom(resp)
	stripStored(&m.Header.Fields, &cc)
	m.Tags = SurrogateKeys(resp)
	return m, Storable
}

// lifetime computes the freshness lifetime (RFC 9111 §4.2.1, then §4.2.2), whether it is a
// heuristic or default one, and whether the response had explicit freshness at all.
func (p *Policy) lifetime(resp *header.ResponseHeader, cc *CacheControl, respTime time.Time) (d time.Duration, heuristic, explicit bool) {
	switch {
	case cc.SMaxAge >= 0:
		return time.Duration(cc.SMaxAge) * time.Second, false, true
	case cc.MaxAge >= 0:
		return time.Duration(cc.MaxAge) * time.Second, false, true
	}
	date := respTime
	if v, ok := resp.Get("Date"); ok {
		if t, ok := ParseHTTPDate(v); ok {
			date = t
		}
	}
	if n := resp.Count("Expires"); n > 0 {
		v, _ := resp.Get("Expires")
		exp, ok := ParseHTTPDate(v)
		if !ok || (n > 1 && !sameValues(resp, "Expires")) {
			// An invalid Expires means "already expired" (§5.3); conflicting ones, stale.
			return 0, false, true
		}
		return max(exp.Sub(date), 0), false, true
	}
	if !p.NoHeuristic && (HeuristicallyCacheable(resp.Status) || cc.Public) {
		if v, ok := resp.Get("Last-Modified"); ok {
			if lm, ok := ParseHTTPDate(v); ok && lm.Before(date) {
				frac := p.HeuristicFraction
				if frac <= 0 {
					frac = 0.1
				}
				limit := p.HeuristicMax
				if limit <= 0 {
					limit = 24 * time.Hour
				}
				h := min(time.Duration(float64(date.Sub(lm))*frac), limit)
				return h.Truncate(time.Second), true, false
			}
		}
	}
	if p.DefaultTTL != nil {
		if d := p.DefaultTTL(resp.Status); d > 0 {
			return d, true, false
		}
	}
	return 0, false, false
}

// sameValues reports whether every line of the field name has the same value.
func sameValues(f *header.ResponseHeader, name string) bool {
	first, _ := f.Get(name)
	same := true
	f.Values(name, func(v []byte) bool {
		same = string(v) == string(first)
		return same
	})
	return same
}

// hopByHop lists the fields that describe one connection, not the response (RFC 9110 §7.6.1).
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer",
	"Transfer-Encoding", "Upgrade", "Proxy-Authenticate", "Proxy-Authentication-Info"}

// stripStored removes from a header about to be stored what must not be stored (RFC 9111
// §3.1): hop-by-hop fields and those Connection lists, Age (the age is kept in the Meta and
// computed when serving), and the fields a qualified private or no-cache names.
func stripStored(f *header.Fields, cc *CacheControl) {
	var listed []string
	f.Values("Connection", func(v []byte) bool {
		for len(v) > 0 {
			var item []byte
			item, v = cutComma(v)
			if item = header.TrimOWS(item); len(item) > 0 && len(listed) < maxFieldList {
				listed = append(listed, string(item))
			}
		}
		return true
	})
	f.RemoveFunc(func(fl header.Field) bool {
		if header.EqualFold(fl.Name, "Age") {
			return true
		}
		for _, lists := range [...][]string{hopByHop, listed, cc.PrivateFields, cc.NoCacheFields} {
			for _, n := range lists {
				if header.EqualFold(fl.Name, n) {
					return true
				}
			}
		}
		return false
	})
}

// SurrogateKeys returns the space-separated tags of the response's Surrogate-Key fields.
func SurrogateKeys(resp *header.ResponseHeader) []string {
	var tags []string
	resp.Values("Surrogate-Key", func(v []byte) bool {
		for _, t := range strings.Fields(string(v)) {
			if len(tags) >= maxFieldList {
				return false
			}
			tags = append(tags, t)
		}
		return true
	})
	return tags
}
