package cache

import (
	"time"

	"github.com/pingora-go/pingora/header"
)

// conditionalFields are the request fields that make a request conditional or partial
// (RFC 9110 §13.1, §14.2).
var conditionalFields = []string{"If-Match", "If-None-Match", "If-Modified-Since",
	"If-Unmodified-Since", "If-Range", "Range"}

// UpstreamRequest turns a copy of a cacheable request into the request to send upstream on a
// miss: HEAD becomes GET (so the response can be stored and serve both) and the client's own
// conditional and range fields are removed, since the cache answers them itself from the full
// response.
func UpstreamRequest(req *header.RequestHeader) {
	if req.IsMethod("HEAD") {
		req.SetMethod("GET")
	}
	for _, n := range conditionalFields {
		req.Remove(n)
	}
}

// ConditionalRequest turns a copy of a cacheable request into a validation request for the
// stored response m (RFC 9111 §4.3.1): as UpstreamRequest, plus If-None-Match with the stored
// ETag and If-Modified-Since with the stored Last-Modified, when there are.
func ConditionalRequest(req *header.RequestHeader, m *Meta) {
	UpstreamRequest(req)
	if v, ok := m.Header.Get("ETag"); ok {
		req.AppendBytes([]byte("If-None-Match"), v)
	}
	if v, ok := m.Header.Get("Last-Modified"); ok {
		if _, ok := ParseHTTPDate(v); ok {
			req.AppendBytes([]byte("If-Modified-Since"), v)
		}
	}
}

// notUpdated lists the stored fields a 304 must not replace (RFC 9111 §3.2): Content-Length
// and the fields describing the stored content, which a 304 cannot change, plus Vary, whose
// change a 304 cannot carry (the variant was selected with the stored one).
var notUpdated = []string{"Content-Length", "Content-Encoding", "Content-Type", "Content-Range",
	"Vary"}

// Merge304 freshens a stored response with a 304 Not Modified received for it (RFC 9111
// §4.3.4, §3.2). Each field of the 304 replaces the stored fields of that name, except
// hop-by-hop ones and those in notUpdated; freshness, age and directives are then recomputed
// from the merged head, with reqTime and respTime the times the validation request was sent
// and the 304 received.
//
// ok is false when the 304 does not apply (its validators do not match the stored ones: fetch
// the response unconditionally). Otherwise merged is the Meta to store, or nil with the reason
// when the merged response may no longer be stored (say the 304 added no-store): the stored
// body may then be served this once, but not kept.
func (p *Policy) Merge304(m *Meta, req *header.RequestHeader, resp *header.ResponseHeader, reqTime, respTime time.Time) (merged *Meta, reason Reason, ok bool) {
	if !validatorsMatch(m, resp) {
		return nil, Storable, false
	}
	var h header.ResponseHeader
	h.CopyFrom(&m.Header)
	cc := ParseCacheControl(&resp.Fields)
	skip := func(name []byte) bool {
		for _, lists := range [...][]string{hopByHop, notUpdated, {"Age"}} {
			for _, n := range lists {
				if header.EqualFold(name, n) {
					return true
				}
			}
		}
		return false
	}
	// Each field the 304 carries replaces all stored lines of that name.
	for _, f := range resp.All() {
		if skip(f.Name) {
			continue
		}
		h.Remove(string(f.Name))
	}
	for _, f := range resp.All() {
		if !skip(f.Name) {
			h.AppendBytes(f.Name, f.Value)
		}
	}
	stripStored(&h.Fields, &cc)
	// The merged head is evaluated as the response it now is, with the 304's Date and Age.
	h.Remove("Age")
	if v, ok := resp.Get("Age"); ok {
		h.AppendBytes([]byte("Age"), v)
	}
	fresh, reason := p.NewMeta(req, &h, reqTime, respTime)
	if fresh == nil {
		return nil, reason, true
	}
	fresh.Created = m.Created
	fresh.BodySize = m.BodySize
	// The variant was selected with the stored Vary; keep it.
	fresh.Vary = m.Vary
	return fresh, Storable, true
}

// validatorsMatch reports whether a 304 may update m (RFC 9111 §4.3.4): an ETag in the 304
// must match the stored one (strongly when it is strong), else a Last-Modified in it must equal
// the stored one. A 304 without validators applies: it answers a request that was conditional
// on this very response.
func validatorsMatch(m *Meta, resp *header.ResponseHeader) bool {
	stored, hasStored := m.Header.Get("ETag")
	if got, ok := resp.Get("ETag"); ok {
		if !hasStored {
			return false
		}
		got, stored = header.TrimOWS(got), header.TrimOWS(stored)
		if isWeak(got) {
			return weakMatch(got, stored)
		}
		return strongMatch(got, stored)
	}
	if lm, ok := resp.Get("Last-Modified"); ok {
		slm, sok := m.Header.Get("Last-Modified")
		return sok && string(header.TrimOWS(lm)) == string(header.TrimOWS(slm))
	}
	return true
}

// Precondition is the outcome of a client's conditional request against a stored response.
type Precondition uint8

// The outcomes.
const (
	// Proceed: serve the stored response as usual.
	Proceed Precondition = iota
	// NotModified: answer 304 (see NotModifiedHeader).
	NotModified
	// PreconditionFailed: answer 412.
	PreconditionFailed
)

// EvaluatePreconditions evaluates req's conditional fields against the stored response head
// resp, in the order of RFC 9110 §13.2.2: If-Match (strong comparison), else
// If-Unmodified-Since; then If-None-Match (weak comparison), else If-Modified-Since for GET and
// HEAD. Preconditions are ignored unless the stored status is 2xx (§13.2.1), and a 304 is only
// produced from a 200. Invalid dates are ignored.
func EvaluatePreconditions(req *header.RequestHeader, resp *header.ResponseHeader) Precondition {
	if resp.Status < 200 || resp.Status > 299 || !conditional(req) {
		return Proceed
	}
	etag, hasETag := resp.Get("ETag")
	etag = header.TrimOWS(etag)
	lm, lmOK := lastModified(resp)
	getOrHead := req.IsMethod("GET") || req.IsMethod("HEAD")

	if req.Has("If-Match") {
		if !listMatches(&req.Fields, "If-Match", etag, hasETag, true) {
			return PreconditionFailed
		}
	} else if v, ok := req.Get("If-Unmodified-Since"); ok {
		if t, ok := ParseHTTPDate(v); ok && lmOK && lm.After(t) {
			return PreconditionFailed
		}
	}
	if req.Has("If-None-Match") {
		if listMatches(&req.Fields, "If-None-Match", etag, hasETag, false) {
			if getOrHead {
				return notModifiedFrom(resp)
			}
			return PreconditionFailed
		}
		return Proceed
	}
	if v, ok := req.Get("If-Modified-Since"); ok && getOrHead && lmOK {
		if t, ok := ParseHTTPDate(v); ok && !lm.After(t) {
			return notModifiedFrom(resp)
		}
	}
	return Proceed
}

// conditional reports whether req has any precondition field.
func conditional(req *header.RequestHeader) bool {
	for _, f := range req.All() {
		if len(f.Name) > 3 && (f.Name[0] == 'I' || f.Name[0] == 'i') && (f.Name[1] == 'F' || f.Name[1] == 'f') && f.Name[2] == '-' {
			return true
		}
	}
	return false
}

func notModifiedFrom(resp *header.ResponseHeader) Precondition {
	if resp.Status == 200 {
		return NotModified
	}
	return Proceed
}

func lastModified(resp *header.ResponseHeader) (time.Time, bool) {
	v, ok := resp.Get("Last-Modified")
	if !ok {
		return time.Time{}, false
	}
	return ParseHTTPDate(v)
}

// listMatches reports whether the entity-tag lists of the fields named name match etag: "*"
// matches any stored representation; otherwise strong or weak comparison (RFC 9110 §8.8.3.2).
func listMatches(f *header.Fields, name string, etag []byte, hasETag, strong bool) bool {
	matched := false
	f.Values(name, func(v []byte) bool {
		for len(v) > 0 {
			var tag []byte
			var ok bool
			tag, v, ok = nextETag(v)
			if !ok {
				return false
			}
			if len(tag) == 1 && tag[0] == '*' {
				matched = true
			} else if hasETag {
				if strong {
					matched = strongMatch(tag, etag)
				} else {
					matched = weakMatch(tag, etag)
				}
			}
			if matched {
				return false
			}
		}
		return true
	})
	return matched
}

// nextETag splits the first member off an entity-tag list ("*", "\"x\"" or "W/\"x\"").
func nextETag(v []byte) (tag, rest []byte, ok bool) {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t' || v[0] == ',') {
		v = v[1:]
	}
	if len(v) == 0 {
		return nil, nil, true
	}
	if v[0] == '*' {
		return v[:1], v[1:], true
	}
	start := 0
	if len(v) >= 2 && v[0] == 'W' && v[1] == '/' {
		start = 2
	}
	if start >= len(v) || v[start] != '"' {
		return nil, nil, false
	}
	for i := start + 1; i < len(v); i++ {
		if v[i] == '"' {
			return v[:i+1], v[i+1:], true
		}
	}
	return nil, nil, false
}

func isWeak(t []byte) bool { return len(t) >= 2 && t[0] == 'W' && t[1] == '/' }

func opaque(t []byte) []byte {
	if isWeak(t) {
		return t[2:]
	}
	return t
}

// weakMatch compares two entity-tags ignoring weakness.
func weakMatch(a, b []byte) bool {
	return len(a) > 0 && string(opaque(a)) == string(opaque(b))
}

// strongMatch compares two entity-tags that must both be strong.
func strongMatch(a, b []byte) bool {
	return len(a) > 0 && !isWeak(a) && !isWeak(b) && string(a) == string(b)
}

// NotModifiedHeader turns dst, a copy of the stored response head, into a 304 Not Modified
// (RFC 9110 §15.4.5): the status changes and the representation's content fields go, while
// Cache-Control, Content-Location, Date, ETag, Expires, Vary and the others stay.
func NotModifiedHeader(dst *header.ResponseHeader) {
	dst.SetStatus(304)
	for _, n := range [...]string{"Content-Length", "Content-Type", "Content-Encoding",
		"Transfer-Encoding", "Content-Range", "Accept-Ranges"} {
		dst.Remove(n)
	}
}
