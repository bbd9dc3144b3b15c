package h2

import (
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/pingora-go/pingora/header"
)

// connectionSpecific reports whether a field must not travel in HTTP/2 (RFC 9113 section
// 8.2.2): the hop-by-hop fields of HTTP/1, TE other than "trailers", and any field the
// message's Connection field names.
func connectionSpecific(f *header.Fields, name, value []byte) bool {
	switch {
	case header.EqualFold(name, "connection"), header.EqualFold(name, "keep-alive"),
		header.EqualFold(name, "proxy-connection"), header.EqualFold(name, "transfer-encoding"),
		header.EqualFold(name, "upgrade"):
		return true
	case header.EqualFold(name, "te"):
		return !header.EqualFold(header.TrimOWS(value), "trailers")
	}
	return f.HasToken("Connection", string(name))
}

// NormalizeAuthority turns a Host field value into an HTTP/2 :authority as the reference
// does: a duplicated trailing port ("a:1:2") is cut after the first port, and IPv6 literals
// (bracketed, or bare with empty or non-numeric groups) are left untouched.
func NormalizeAuthority(host string) string {
	if strings.HasPrefix(host, "[") {
		return host
	}
	first := strings.IndexByte(host, ':')
	if first <= 0 {
		return host
	}
	second := strings.IndexByte(host[first+1:], ':')
	if second < 0 {
		return host
	}
	for _, port := range strings.Split(host[first+1:], ":") {
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return host
		}
	}
	return host[:first+1+second]
}

// requestFromFrame fills dst from a request's header block: the pseudo-headers become method,
// target and a host field (from :authority), the other fields follow in order, cookie fields
// joined into one (RFC 9113 section 8.2.3). It returns the declared content-length (-1 for
// none), or ok false for a malformed request (RFC 9113 section 8.1.1): a missing or repeated
// pseudo-header, a connection-specific field, TE other than "trailers", or an invalid
// content-length. With extended CONNECT on (RFC 8441), a CONNECT with :protocol must also have
// :scheme and :path, and its target is the path; the protocol goes to *protocol.
func requestFromFrame(f *http2.MetaHeadersFrame, dst *header.RequestHeader, extConnect bool, protocol *string) (declLen int64, ok bool) {
	dst.Reset()
	dst.Version = header.HTTP2
	var method, scheme, authority, path, proto string
	var hasAuthority, hasPath, hasProto bool
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":scheme":
			scheme = hf.Value
		case ":authority":
			authority, hasAuthority = hf.Value, true
		case ":path":
			path, hasPath = hf.Value, true
		case ":protocol":
			if !extConnect {
				return -1, false
			}
			proto, hasProto = hf.Value, true
		default:
			return -1, false
		}
	}
	switch {
	case method == "":
		return -1, false
	case hasProto:
		if method != "CONNECT" || proto == "" || authority == "" || scheme == "" || path == "" {
			return -1, false
		}
		*protocol = proto
	case method == "CONNECT":
		if authority == "" || scheme != "" || hasPath {
			return -1, false
		}
		path = authority
	case scheme == "" || path == "":
		return -1, false
	}
	dst.SetMethod(method)
	dst.SetTarget(path)
	if hasAuthority {
		dst.Append("host", authority)
	}
	declLen = -1
	var cookie []byte
	for _, hf := range f.RegularFields() {
		switch hf.Name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			return -1, false
		case "te":
			if hf.Value != "trailers" {
				return -1, false
			}
		case "host":
			if hasAuthority {
				continue
			}
		case "content-length":
			n, err := strconv.ParseUint(hf.Value, 10, 63)
			if err != nil || declLen >= 0 && int64(n) != declLen {
				return -1, false
			}
			declLen = int64(n)
		case "cookie":
			if cookie != nil {
				cookie = append(cookie, "; "...)
			}
			cookie = append(cookie, hf.Value...)
			continue
		}
		dst.Append(hf.Name, hf.Value)
	}
	if cookie != nil {
		dst.AppendBytes([]byte("cookie"), cookie)
	}
	return declLen, true
}

// appendH2Fields appends the fields of f that may travel in HTTP/2, with lowercase names.
func appendH2Fields(dst []hpack.HeaderField, f *header.Fields) []hpack.HeaderField {
	for _, fl := range f.All() {
		if connectionSpecific(f, fl.Name, fl.Value) {
			continue
		}
		dst = append(dst, hpack.HeaderField{Name: lowerString(fl.Name), Value: string(fl.Value)})
	}
	return dst
}

// commonNames are field names common in responses, in lowercase, so that sending them
// allocates no string.
var commonNames = func() map[string]string {
	m := make(map[string]string)
	for _, n := range []string{"accept-ranges", "age", "cache-control", "content-disposition",
		"content-encoding", "content-language", "content-length", "content-location",
		"content-range", "content-security-policy", "content-type", "date", "etag", "expires",
		"last-modified", "link", "location", "retry-after", "server", "set-cookie",
		"strict-transport-security", "vary", "via", "www-authenticate", "x-content-type-options",
		"x-frame-options", "access-control-allow-origin", "alt-svc", "grpc-status",
		"grpc-message", "trailer"} {
		m[n] = n
	}
	return m
}()

// lowerString returns b in ASCII lowercase as a string, without allocating for a common name
// already in lowercase or differing from one only in case.
func lowerString(b []byte) string {
	if len(b) <= 32 {
		var buf [32]byte
		l := buf[:len(b)]
		for i, c := range b {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			l[i] = c
		}
		if n, ok := commonNames[string(l)]; ok {
			return n
		}
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			l := []byte(string(b))
			for j := i; j < len(l); j++ {
				if 'A' <= l[j] && l[j] <= 'Z' {
					l[j] += 'a' - 'A'
				}
			}
			return string(l)
		}
	}
	return string(b)
}

// appendLower appends h to dst with lowercase names, ordered by name so that the result does
// not depend on map order; the values of one name keep their order.
func appendLower(dst *header.Fields, h http.Header) {
	var small [32]string
	keys := small[:0]
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var name [64]byte
	for _, k := range keys {
		n := append(name[:0], k...)
		for i, c := range n {
			if 'A' <= c && c <= 'Z' {
				n[i] = c + 'a' - 'A'
			}
		}
		for _, v := range h[k] {
			dst.AppendBytes(n, []byte(v))
		}
	}
}

// fieldsToHTTP adds the fields of f that may travel in HTTP/2 to h, prefixing their names
// with prefix (http.TrailerPrefix for trailers). Host is left out when skipHost is set.
func fieldsToHTTP(f *header.Fields, h http.Header, prefix string, skipHost bool) {
	for i := range f.Len() {
		fl := f.At(i)
		if connectionSpecific(f, fl.Name, fl.Value) || skipHost && header.EqualFold(fl.Name, "host") {
			continue
		}
		k := prefix + textproto.CanonicalMIMEHeaderKey(string(fl.Name))
		h[k] = append(h[k], string(fl.Value))
	}
}
