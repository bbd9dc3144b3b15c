package cache

import (
	"net/url"
	"strings"

	"github.com/pingora-go/pingora/header"
)

// Safe reports whether method is safe (RFC 9110 §9.2.1): GET, HEAD, OPTIONS and TRACE.
func Safe(method []byte) bool {
	switch string(method) {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return false
}

// Invalidations returns the requests whose stored responses must be invalidated after resp
// answered the unsafe request req (RFC 9111 §4.4): when the status is 2xx or 3xx, the target
// URI and the URIs in Location and Content-Location that have the same origin (scheme, host and
// port) as the target. Each is returned as a GET request head with Host set, ready for a
// KeyFunc. It returns nil for a safe method or an error status.
func Invalidations(scheme string, req *header.RequestHeader, resp *header.ResponseHeader) []*header.RequestHeader {
	if Safe(req.Method()) || resp.Status < 200 || resp.Status > 399 {
		return nil
	}
	host, pathQuery := requestAuthority(req)
	base, err := url.Parse(scheme + "://" + string(host) + string(pathQuery))
	if err != nil || base.Host == "" {
		return nil
	}
	out := []*header.RequestHeader{getRequest(base.Host, string(pathQuery))}
	for _, name := range [...]string{"Location", "Content-Location"} {
		v, ok := resp.Get(name)
		if !ok {
			continue
		}
		ref, err := url.Parse(string(header.TrimOWS(v)))
		if err != nil {
			continue
		}
		u := base.ResolveReference(ref)
		if !sameOrigin(base, u) {
			continue
		}
		pq := u.EscapedPath()
		if pq == "" {
			pq = "/"
		}
		if u.RawQuery != "" {
			pq += "?" + u.RawQuery
		}
		if pq == string(pathQuery) {
			continue
		}
		out = append(out, getRequest(base.Host, pq))
	}
	return out
}

func getRequest(host, pathQuery string) *header.RequestHeader {
	r := header.NewRequest("GET", pathQuery)
	r.Append("Host", host)
	return r
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(hostPort(a), hostPort(b))
}

// hostPort returns the URL's host with its port, the default one made explicit.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	return u.Hostname() + ":" + port
}
