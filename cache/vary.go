package cache

import (
	"crypto/sha256"
	"slices"
	"strings"

	"github.com/pingora-go/pingora/header"
)

// maxVaryNames bounds the field names a Vary may list; a response naming more is not stored.
const maxVaryNames = 32

// VaryNames returns the field names the Vary fields of resp list, lower-cased, sorted and
// without duplicates, and whether one of them is "*" (RFC 9110 §12.5.5: the response varies on
// something outside the request, so a cache can never select it). ok is false when the list
// is malformed or longer than the cache accepts; such a response is not stored.
func VaryNames(resp *header.ResponseHeader) (names []string, star, ok bool) {
	ok = true
	resp.Values("Vary", func(v []byte) bool {
		for len(v) > 0 {
			var item []byte
			item, v = cutComma(v)
			item = header.TrimOWS(item)
			switch {
			case len(item) == 0:
			case len(item) == 1 && item[0] == '*':
				star = true
			case !isToken(item) || len(names) >= maxVaryNames:
				ok = false
				return false
			default:
				n := strings.ToLower(string(item))
				if !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
		}
		return true
	})
	slices.Sort(names)
	return names, star, ok
}

// Variance returns the secondary key of req for a response that varies on names (as VaryNames
// returns them): a hash over each name and the request's value for it, normalised so that
// requests a server cannot tell apart share a variant. Field lines with the same name are
// combined, list members are trimmed and joined with ",", runs of spaces and tabs inside a
// member become one space; names are compared case-insensitively; an absent field differs from
// an empty one. Values keep their case. It returns the zero Hash when names is empty.
func Variance(names []string, req *header.RequestHeader) Hash {
	if len(names) == 0 {
		return Hash{}
	}
	bp := keyBufPool.Get().(*[]byte)
	b := append((*bp)[:0], "vary\x00"...)
	for _, n := range names {
		b = append(b, n...)
		b = append(b, 0)
		present := false
		first := true
		req.Values(n, func(v []byte) bool {
			present = true
			for len(v) > 0 {
				var item []byte
				item, v = cutComma(v)
				item = header.TrimOWS(item)
				if len(item) == 0 {
					continue
				}
				if !first {
					b = append(b, ',')
				}
				first = false
				b = appendCollapsed(b, item)
			}
			return true
		})
		if present {
			b = append(b, 1)
		} else {
			b = append(b, 2)
		}
	}
	sum := sha256.Sum256(b)
	*bp = b
	keyBufPool.Put(bp)
	var h Hash
	copy(h[:], sum[:16])
	if h.IsZero() {
		h[0] = 1 // zero means "no variance"
	}
	return h
}

// cutComma splits v at its first comma.
func cutComma(v []byte) (item, rest []byte) {
	for i, c := range v {
		if c == ',' {
			return v[:i], v[i+1:]
		}
	}
	return v, nil
}

// appendCollapsed appends s with every run of spaces and tabs replaced by one space.
func appendCollapsed(dst, s []byte) []byte {
	space := false
	for _, c := range s {
		if c == ' ' || c == '\t' {
			space = true
			continue
		}
		if space {
			dst = append(dst, ' ')
			space = false
		}
		dst = append(dst, c)
	}
	return dst
}
