package cache

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strconv"

	"github.com/pingora-go/pingora/header"
)

// DefaultMaxRanges is how many ranges a Range field may ask for before it is ignored (and the
// whole response served), against requests made of many small ranges (RFC 9110 §14.2).
const DefaultMaxRanges = 100

// ByteRange is a satisfiable byte range of a representation: bytes Start to End inclusive.
type ByteRange struct {
	Start, End int64
}

// Len returns the number of bytes in r.
func (r ByteRange) Len() int64 { return r.End - r.Start + 1 }

// RangeResult is what a Range field asks of a representation.
type RangeResult uint8

// The results.
const (
	// RangeNone: no Range, another unit, a malformed or excessive one, or an If-Range that does
	// not match: serve the whole representation with 200.
	RangeNone RangeResult = iota
	// RangeSingle: serve one range with 206 and Content-Range.
	RangeSingle
	// RangeMulti: serve several ranges with 206 as multipart/byteranges.
	RangeMulti
	// RangeUnsatisfiable: no range overlaps the representation: answer 416.
	RangeUnsatisfiable
)

// ParseRange parses the value of a Range field (RFC 9110 §14.1.2, §14.2) against a
// representation of size bytes, appending the satisfiable ranges to dst. Forms "a-b", "a-"
// and "-n" are accepted; ends beyond the representation are clamped. The field is ignored
// (RangeNone) when its unit is not bytes, when any range-spec is malformed (including a last
// position before the first), or when it has more than maxRanges specs (maxRanges <= 0 means
// DefaultMaxRanges). Overlapping, adjacent or unordered ranges are coalesced into ascending
// disjoint ones, so a response never carries more bytes than the representation.
func ParseRange(dst []ByteRange, v []byte, size int64, maxRanges int) ([]ByteRange, RangeResult) {
	if maxRanges <= 0 {
		maxRanges = DefaultMaxRanges
	}
	v = header.TrimOWS(v)
	if len(v) < 6 || !header.EqualFold(v[:6], "bytes=") {
		return dst, RangeNone
	}
	v = v[6:]
	base := len(dst)
	specs := 0
	for len(v) > 0 {
		var spec []byte
		spec, v = cutComma(v)
		spec = header.TrimOWS(spec)
		if len(spec) == 0 {
			continue
		}
		specs++
		if specs > maxRanges {
			return dst[:base], RangeNone
		}
		r, satisfiable, ok := parseRangeSpec(spec, size)
		if !ok {
			return dst[:base], RangeNone
		}
		if satisfiable {
			dst = append(dst, r)
		}
	}
	if specs == 0 {
		return dst[:base], RangeNone
	}
	got := dst[base:]
	switch len(got) {
	case 0:
		return dst, RangeUnsatisfiable
	case 1:
		return dst, RangeSingle
	}
	got = coalesce(got)
	dst = dst[:base+len(got)]
	if len(got) == 1 {
		return dst, RangeSingle
	}
	return dst, RangeMulti
}

// parseRangeSpec parses one int-range or suffix-range.
func parseRangeSpec(spec []byte, size int64) (r ByteRange, satisfiable, ok bool) {
	dash := -1
	for i, c := range spec {
		if c == '-' {
			dash = i
			break
		}
	}
	if dash < 0 {
		return r, false, false
	}
	first, last := spec[:dash], spec[dash+1:]
	if len(first) == 0 {
		n, ok := parsePos(last)
		if !ok {
			return r, false, false
		}
		if n == 0 || size == 0 {
			return r, false, true
		}
		return ByteRange{Start: max(size-n, 0), End: size - 1}, true, true
	}
	a, ok := parsePos(first)
	if !ok {
		return r, false, false
	}
	b := int64(-1)
	if len(last) > 0 {
		if b, ok = parsePos(last); !ok || b < a {
			return r, false, false
		}
	}
	if a >= size {
		return r, false, true
	}
	if b < 0 || b >= size {
		b = size - 1
	}
	return ByteRange{Start: a, End: b}, true, true
}

// parsePos parses 1*DIGIT, saturating at 2^62, far beyond any representation size.
func parsePos(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	const limit = 1 << 62
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n >= limit/10 {
			n = limit
		} else {
			n = n*10 + int64(c-'0')
		}
	}
	return n, true
}

// coalesce sorts rs and merges overlapping and adjacent ranges, in place.
func coalesce(rs []ByteRange) []ByteRange {
	sorted := slices.IsSortedFunc(rs, func(a, b ByteRange) int { return cmpInt64(a.Start, b.Start) })
	if !sorted {
		slices.SortFunc(rs, func(a, b ByteRange) int { return cmpInt64(a.Start, b.Start) })
	}
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if r.Start <= last.End+1 {
			last.End = max(last.End, r.End)
			continue
		}
		out = append(out, r)
	}
	return out
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// IfRangeMatches reports whether the request's If-Range, if any, lets its Range apply to the
// stored response head resp (RFC 9110 §13.1.5): an entity-tag must equal the stored ETag under
// the strong comparison, a date must equal the stored Last-Modified exactly. A request without
// If-Range matches.
func IfRangeMatches(req *header.RequestHeader, resp *header.ResponseHeader) bool {
	v, ok := req.Get("If-Range")
	if !ok {
		return true
	}
	v = header.TrimOWS(v)
	if len(v) > 0 && (v[len(v)-1] == '"' || isWeak(v)) {
		etag, ok := resp.Get("ETag")
		return ok && strongMatch(v, header.TrimOWS(etag))
	}
	t, ok := ParseHTTPDate(v)
	if !ok {
		return false
	}
	lm, ok := lastModified(resp)
	return ok && lm.Equal(t)
}

// RangePlan is how a response from the cache answers a request's Range: which ranges, and the
// multipart framing when there are several. The zero value is RangeNone.
type RangePlan struct {
	// Result is the outcome.
	Result RangeResult
	// Ranges are the ranges to send, ascending and disjoint.
	Ranges []ByteRange
	// Size is the whole representation's length.
	Size int64

	boundary    [16]byte // hex digits
	contentType []byte
}

// Plan decides how to answer req's Range from a stored response head resp whose complete body
// has size bytes (RFC 9110 §14): only GET and HEAD requests on a 200 are ranged, and an
// If-Range that does not match means the whole response. The plan reuses its own storage.
func (p *RangePlan) Plan(req *header.RequestHeader, resp *header.ResponseHeader, size int64, maxRanges int) {
	p.Result, p.Ranges, p.Size = RangeNone, p.Ranges[:0], size
	p.contentType = p.contentType[:0]
	if resp.Status != 200 || !(req.IsMethod("GET") || req.IsMethod("HEAD")) || size < 0 {
		return
	}
	v, ok := req.Get("Range")
	if !ok || !IfRangeMatches(req, resp) {
		return
	}
	p.Ranges, p.Result = ParseRange(p.Ranges, v, size, maxRanges)
	if p.Result == RangeMulti {
		ct, _ := resp.Get("Content-Type")
		p.contentType = append(p.contentType, ct...)
		var raw [8]byte
		_, _ = rand.Read(raw[:])
		hex.Encode(p.boundary[:], raw[:])
	}
}

// Apply rewrites h, a copy of the stored response head, for the plan: 206 with Content-Range
// or a multipart/byteranges Content-Type, 416 with "Content-Range: bytes */size" and no content
// fields, or for RangeNone "Accept-Ranges: bytes". Content-Length is set to what the body will
// be.
func (p *RangePlan) Apply(h *header.ResponseHeader) {
	var num [64]byte
	switch p.Result {
	case RangeNone:
		if !h.Has("Accept-Ranges") {
			h.Append("Accept-Ranges", "bytes")
		}
	case RangeSingle:
		r := p.Ranges[0]
		h.SetStatus(206)
		h.Remove("Content-Range")
		h.AppendBytes([]byte("Content-Range"), appendContentRange(num[:0], r, p.Size))
		h.Remove("Content-Length")
		h.AppendBytes([]byte("Content-Length"), strconv.AppendInt(num[:0], r.Len(), 10))
	case RangeMulti:
		h.SetStatus(206)
		h.Remove("Content-Range")
		h.Remove("Content-Type")
		h.Append("Content-Type", "multipart/byteranges; boundary="+string(p.boundary[:]))
		h.Remove("Content-Length")
		h.AppendBytes([]byte("Content-Length"), strconv.AppendInt(num[:0], p.BodyLen(), 10))
	case RangeUnsatisfiable:
		h.SetStatus(416)
		for _, n := range [...]string{"Content-Type", "Content-Encoding", "Transfer-Encoding",
			"Accept-Ranges", "Content-Range", "Content-Length"} {
			h.Remove(n)
		}
		b := append(num[:0], "bytes */"...)
		h.AppendBytes([]byte("Content-Range"), strconv.AppendInt(b, p.Size, 10))
		h.Append("Content-Length", "0")
	}
}

func appendContentRange(dst []byte, r ByteRange, size int64) []byte {
	dst = append(dst, "bytes "...)
	dst = strconv.AppendInt(dst, r.Start, 10)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, r.End, 10)
	dst = append(dst, '/')
	return strconv.AppendInt(dst, size, 10)
}

// AppendPartHeader appends the delimiter and header of the i-th part of a multipart plan.
func (p *RangePlan) AppendPartHeader(dst []byte, i int) []byte {
	dst = append(dst, "\r\n--"...)
	dst = append(dst, p.boundary[:]...)
	dst = append(dst, "\r\n"...)
	if len(p.contentType) > 0 {
		dst = append(dst, "Content-Type: "...)
		dst = append(dst, p.contentType...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "Content-Range: "...)
	dst = appendContentRange(dst, p.Ranges[i], p.Size)
	return append(dst, "\r\n\r\n"...)
}

// AppendClose appends the closing delimiter of a multipart plan.
func (p *RangePlan) AppendClose(dst []byte) []byte {
	dst = append(dst, "\r\n--"...)
	dst = append(dst, p.boundary[:]...)
	return append(dst, "--\r\n"...)
}

// BodyLen returns the length of the body the plan produces: the whole size, the one range, the
// multipart body with its framing, or 0 for 416.
func (p *RangePlan) BodyLen() int64 {
	switch p.Result {
	case RangeSingle:
		return p.Ranges[0].Len()
	case RangeMulti:
		var scratch [256]byte
		var n int64
		for i, r := range p.Ranges {
			n += int64(len(p.AppendPartHeader(scratch[:0], i))) + r.Len()
		}
		return n + int64(len(p.AppendClose(scratch[:0])))
	case RangeUnsatisfiable:
		return 0
	}
	return p.Size
}
