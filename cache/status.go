package cache

import (
	"strconv"
)

// Fwd is why a request was forwarded upstream, as Cache-Status reports it (RFC 9211 §2.2).
type Fwd uint8

// The forward reasons.
const (
	// FwdNone: the request was not forwarded (a hit).
	FwdNone Fwd = iota
	// FwdBypass: the cache was configured not to handle the request.
	FwdBypass
	// FwdMethod: the request method is not cacheable.
	FwdMethod
	// FwdURIMiss: nothing was stored for the URI.
	FwdURIMiss
	// FwdVaryMiss: responses were stored for the URI but none for the request's variant.
	FwdVaryMiss
	// FwdMiss: the cache did not find a usable response, for another reason.
	FwdMiss
	// FwdRequest: the request's directives (no-cache, max-age, ...) required going upstream.
	FwdRequest
	// FwdStale: the stored response was stale and was revalidated.
	FwdStale
	// FwdPartial: only part of the response was stored.
	FwdPartial
)

// String returns the token RFC 9211 defines.
func (f Fwd) String() string {
	switch f {
	case FwdBypass:
		return "bypass"
	case FwdMethod:
		return "method"
	case FwdURIMiss:
		return "uri-miss"
	case FwdVaryMiss:
		return "vary-miss"
	case FwdMiss:
		return "miss"
	case FwdRequest:
		return "request"
	case FwdStale:
		return "stale"
	case FwdPartial:
		return "partial"
	}
	return ""
}

// CacheStatus is one member of a Cache-Status field (RFC 9211): what this cache did with a
// request. Build it and call AppendTo; the zero value reports nothing but the name.
type CacheStatus struct {
	// Name identifies the cache; a token is written bare, anything else as a quoted string.
	Name string
	// Hit is true when the response came from the cache without going upstream.
	Hit bool
	// Fwd is why the request went upstream.
	Fwd Fwd
	// FwdStatus is the status of the upstream response, 0 for none.
	FwdStatus int
	// Stored is true when the upstream response was stored.
	Stored bool
	// Collapsed is true when the request waited for another one's upstream response.
	Collapsed bool
	// HasTTL includes TTL: the remaining freshness in seconds, negative when stale.
	HasTTL bool
	TTL    int64
	// Key, when not empty, is the cache key (for debugging; it may reveal the key's make-up).
	Key string
	// Detail, when not empty, is implementation-specific detail.
	Detail string
}

// AppendTo appends the member in Structured Field form to dst.
func (c *CacheStatus) AppendTo(dst []byte) []byte {
	if isToken([]byte(c.Name)) && !startsWithDigit(c.Name) {
		dst = append(dst, c.Name...)
	} else {
		dst = appendSFString(dst, c.Name)
	}
	if c.Hit {
		dst = append(dst, "; hit"...)
	}
	if c.Fwd != FwdNone {
		dst = append(dst, "; fwd="...)
		dst = append(dst, c.Fwd.String()...)
	}
	if c.FwdStatus > 0 {
		dst = append(dst, "; fwd-status="...)
		dst = strconv.AppendInt(dst, int64(c.FwdStatus), 10)
	}
	if c.Stored {
		dst = append(dst, "; stored"...)
	}
	if c.Collapsed {
		dst = append(dst, "; collapsed"...)
	}
	if c.HasTTL {
		dst = append(dst, "; ttl="...)
		dst = strconv.AppendInt(dst, c.TTL, 10)
	}
	if c.Key != "" {
		dst = append(dst, "; key="...)
		dst = appendSFString(dst, c.Key)
	}
	if c.Detail != "" {
		dst = append(dst, "; detail="...)
		dst = appendSFString(dst, c.Detail)
	}
	return dst
}

// String returns the member as AppendTo writes it.
func (c *CacheStatus) String() string { return string(c.AppendTo(nil)) }

func startsWithDigit(s string) bool { return s == "" || s[0] >= '0' && s[0] <= '9' }

// appendSFString appends s as a Structured Field string (RFC 8941 §3.3.3): quoted, with '"'
// and '\' escaped and bytes outside printable ASCII dropped.
func appendSFString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c >= 0x20 && c < 0x7f:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
