package cache

import (
	"bytes"
	"strings"

	"github.com/pingora-go/pingora/header"
)

// MaxDeltaSeconds is the value a delta-seconds too large to represent takes (RFC 9111 §1.2.2:
// 2^31).
const MaxDeltaSeconds = 1 << 31

// maxFieldList bounds how many field names a qualified no-cache or private directive may list;
// the rest are ignored, which for a shared cache errs on the side of not storing (see
// CacheControl.Private).
const maxFieldList = 64

// CacheControl is a parsed Cache-Control field (RFC 9111 §5.2): the directives of a request or
// of a response. Delta-seconds directives are -1 when absent. Unknown extension directives are
// ignored. The zero value is not meaningful; use ParseCacheControl or ParseRequestCacheControl.
type CacheControl struct {
	// MaxAge is max-age in seconds (request and response), -1 when absent.
	MaxAge int64
	// SMaxAge is s-maxage in seconds (response), -1 when absent.
	SMaxAge int64
	// MaxStale is max-stale in seconds (request), -1 when absent or given without a value.
	MaxStale int64
	// MaxStaleAny is true for a max-stale without a value: any staleness is accepted.
	MaxStaleAny bool
	// MinFresh is min-fresh in seconds (request), -1 when absent.
	MinFresh int64
	// StaleWhileRevalidate is stale-while-revalidate in seconds (RFC 5861), -1 when absent.
	StaleWhileRevalidate int64
	// StaleIfError is stale-if-error in seconds (RFC 5861, request and response), -1 when absent.
	StaleIfError int64

	// NoCache is an unqualified no-cache: a stored response must be validated before each use.
	NoCache bool
	// NoCacheFields lists, lower-cased, the field names of a qualified no-cache="..." (response):
	// the response may be reused without validation once these fields are removed.
	NoCacheFields []string
	// NoStore is no-store.
	NoStore bool
	// NoTransform is no-transform.
	NoTransform bool
	// OnlyIfCached is only-if-cached (request).
	OnlyIfCached bool
	// MustRevalidate is must-revalidate (response).
	MustRevalidate bool
	// ProxyRevalidate is proxy-revalidate (response).
	ProxyRevalidate bool
	// MustUnderstand is must-understand (response).
	MustUnderstand bool
	// Public is public (response).
	Public bool
	// Private is an unqualified private (response), or a qualified one whose list was too long
	// or malformed to honour field by field: a shared cache must not store the response.
	Private bool
	// PrivateFields lists, lower-cased, the field names of a qualified private="..." (response):
	// a shared cache may store the response without these fields.
	PrivateFields []string
	// Immutable is immutable (RFC 8246).
	Immutable bool

	// Present is true when at least one Cache-Control field line was seen.
	Present bool
	// conflict marks delta-seconds directives that appeared twice with different values.
	conflict uint8
}

const (
	conflictMaxAge uint8 = 1 << iota
	conflictSMaxAge
)

// ParseCacheControl parses every Cache-Control field line of f into one set of directives.
//
// Lists from several field lines combine (RFC 9110 §5.3). Directive names are matched
// case-insensitively and values may be tokens or quoted strings. A delta-seconds directive with
// a malformed value, or given twice with different values, is taken as 0, which makes the
// response stale (RFC 9111 §4.2.1 allows either the first value or stale; stale is the safer
// choice for a shared cache). Values beyond MaxDeltaSeconds are clamped to it.
func ParseCacheControl(f *header.Fields) CacheControl {
	cc := CacheControl{MaxAge: -1, SMaxAge: -1, MaxStale: -1, MinFresh: -1,
		StaleWhileRevalidate: -1, StaleIfError: -1}
	f.Values("Cache-Control", func(v []byte) bool {
		cc.Present = true
		cc.parse(v)
		return true
	})
	return cc
}

// ParseRequestCacheControl is ParseCacheControl for a request, with the HTTP/1.0 fallback of
// RFC 9111 §5.4: without any Cache-Control field, Pragma: no-cache means no-cache.
func ParseRequestCacheControl(r *header.RequestHeader) CacheControl {
	cc := ParseCacheControl(&r.Fields)
	if !cc.Present && r.HasToken("Pragma", "no-cache") {
		cc.NoCache = true
	}
	return cc
}

// parse adds the directives of one field value.
func (cc *CacheControl) parse(v []byte) {
	for len(v) > 0 {
		var name, val []byte
		var quoted, ok bool
		name, val, quoted, v, ok = nextDirective(v)
		if !ok {
			// Unbalanced quotes: nothing after this point can be trusted to be a directive.
			return
		}
		if len(name) == 0 {
			continue
		}
		cc.set(name, val, quoted)
	}
}

// nextDirective splits the first directive off a Cache-Control list: its name, its value
// (unquoted, still escaped when quoted), and the rest after the next top-level comma.
func nextDirective(v []byte) (name, val []byte, quoted bool, rest []byte, ok bool) {
	v = header.TrimOWS(v)
	i := 0
	for i < len(v) && v[i] != ',' && v[i] != '=' {
		i++
	}
	name = header.TrimOWS(v[:i])
	if i == len(v) {
		return name, nil, false, nil, true
	}
	if v[i] == ',' {
		return name, nil, false, v[i+1:], true
	}
	v = header.TrimOWS(v[i+1:])
	if len(v) > 0 && v[0] == '"' {
		j := 1
		for ; j < len(v); j++ {
			if v[j] == '\\' {
				j++
				continue
			}
			if v[j] == '"' {
				break
			}
		}
		if j >= len(v) {
			return nil, nil, false, nil, false
		}
		val = v[1:j]
		rest = v[j+1:]
		// Whatever follows the closing quote up to the comma is junk; skip it.
		if k := bytes.IndexByte(rest, ','); k >= 0 {
			rest = rest[k+1:]
		} else {
			rest = nil
		}
		return name, val, true, rest, true
	}
	if k := bytes.IndexByte(v, ','); k >= 0 {
		return name, header.TrimOWS(v[:k]), false, v[k+1:], true
	}
	return name, header.TrimOWS(v), false, nil, true
}

func (cc *CacheControl) set(name, val []byte, quoted bool) {
	switch {
	case header.EqualFold(name, "max-age"):
		setDelta(&cc.MaxAge, val, &cc.conflict, conflictMaxAge)
	case header.EqualFold(name, "s-maxage"):
		setDelta(&cc.SMaxAge, val, &cc.conflict, conflictSMaxAge)
	case header.EqualFold(name, "max-stale"):
		if val == nil && !quoted {
			cc.MaxStaleAny = true
			return
		}
		// A malformed max-stale is ignored: the client did not validly relax freshness.
		if d, ok := parseDelta(val); ok && d > cc.MaxStale {
			cc.MaxStale = d
		}
	case header.EqualFold(name, "min-fresh"):
		// A malformed min-fresh is ignored; of two, the stricter wins.
		if d, ok := parseDelta(val); ok && d > cc.MinFresh {
			cc.MinFresh = d
		}
	case header.EqualFold(name, "stale-while-revalidate"):
		if d, ok := parseDelta(val); ok && (cc.StaleWhileRevalidate < 0 || d < cc.StaleWhileRevalidate) {
			cc.StaleWhileRevalidate = d
		}
	case header.EqualFold(name, "stale-if-error"):
		if d, ok := parseDelta(val); ok && (cc.StaleIfError < 0 || d < cc.StaleIfError) {
			cc.StaleIfError = d
		}
	case header.EqualFold(name, "no-cache"):
		if val == nil && !quoted {
			cc.NoCache = true
			return
		}
		var ok bool
		if cc.NoCacheFields, ok = appendFieldNames(cc.NoCacheFields, val); !ok {
			cc.NoCache = true
		}
	case header.EqualFold(name, "private"):
		if val == nil && !quoted {
			cc.Private = true
			return
		}
		var ok bool
		if cc.PrivateFields, ok = appendFieldNames(cc.PrivateFields, val); !ok {
			cc.Private = true
		}
	case header.EqualFold(name, "no-store"):
		cc.NoStore = true
	case header.EqualFold(name, "no-transform"):
		cc.NoTransform = true
	case header.EqualFold(name, "only-if-cached"):
		cc.OnlyIfCached = true
	case header.EqualFold(name, "must-revalidate"):
		cc.MustRevalidate = true
	case header.EqualFold(name, "proxy-revalidate"):
		cc.ProxyRevalidate = true
	case header.EqualFold(name, "must-understand"):
		cc.MustUnderstand = true
	case header.EqualFold(name, "public"):
		cc.Public = true
	case header.EqualFold(name, "immutable"):
		cc.Immutable = true
	}
}

// setDelta records a max-age-like directive: malformed or conflicting values become 0.
func setDelta(dst *int64, val []byte, conflict *uint8, bit uint8) {
	d, ok := parseDelta(val)
	if !ok {
		d = 0
	}
	if *conflict&bit != 0 {
		return
	}
	if *dst >= 0 && *dst != d {
		*conflict |= bit
		*dst = 0
		return
	}
	*dst = d
}

// parseDelta parses delta-seconds (1*DIGIT), clamping to MaxDeltaSeconds.
func parseDelta(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < MaxDeltaSeconds {
			n = n*10 + int64(c-'0')
		}
	}
	return min(n, MaxDeltaSeconds), true
}

// appendFieldNames adds the lower-cased field names of a comma-separated list to dst. It
// reports false when the list is empty, too long or holds something that is not a token.
func appendFieldNames(dst []string, list []byte) ([]string, bool) {
	found := false
	for len(list) > 0 {
		var item []byte
		if i := bytes.IndexByte(list, ','); i >= 0 {
			item, list = list[:i], list[i+1:]
		} else {
			item, list = list, nil
		}
		item = header.TrimOWS(item)
		if len(item) == 0 {
			continue
		}
		if !isToken(item) || len(dst) >= maxFieldList {
			return dst, false
		}
		dst = append(dst, strings.ToLower(string(item)))
		found = true
	}
	return dst, found
}

// isToken reports whether b is an RFC 9110 token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenChar(c) {
			return false
		}
	}
	return true
}

func tokenChar(c byte) bool {
	if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
