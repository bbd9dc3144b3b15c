// Package ratelimit limits the request rate of a proxy per client, per header value or per
// key of the program's choosing, on one instance (Local) or across many sharing a Redis
// server (Redis), and answers refused requests with 429 and the RateLimit header fields.
//
// It imports proxy, so it sits at level 5 of the architecture, beside proxy: the counting
// primitives it builds on are in limits (level 0).
//
// The response fields follow draft-ietf-httpapi-ratelimit-headers-06 (December 2022):
// RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset (delta seconds) and RateLimit-Policy
// ("quota;w=window-seconds"), plus Retry-After (RFC 9110, section 10.2.3) on a 429.
package ratelimit

import (
	"context"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/proxy"
)

// Limiter decides whether one more request with a key may pass.
type Limiter interface {
	// Allow counts one request for key and returns the decision. The key bytes are only
	// valid during the call. Allow is safe for concurrent use.
	Allow(ctx context.Context, key []byte) Decision
}

// Decision is a Limiter's answer for one request, with what the RateLimit fields report.
type Decision struct {
	// Allowed reports whether the request may pass.
	Allowed bool
	// Limit is the quota: how many requests a key may make per Window.
	Limit int64
	// Window is the time the quota applies to.
	Window time.Duration
	// Remaining is how many more requests the key may make now.
	Remaining int64
	// Reset is how long until the key's whole quota is available again.
	Reset time.Duration
	// RetryAfter is, for a refused request, how long until a request of the key may pass.
	RetryAfter time.Duration
}

// Field names written by AppendHeaders and Filter.Reject.
const (
	FieldLimit      = "RateLimit-Limit"
	FieldRemaining  = "RateLimit-Remaining"
	FieldReset      = "RateLimit-Reset"
	FieldPolicy     = "RateLimit-Policy"
	FieldRetryAfter = "Retry-After"
)

// AppendHeaders appends the RateLimit fields describing d to f: RateLimit-Limit,
// RateLimit-Remaining, RateLimit-Reset and RateLimit-Policy, and Retry-After when d refused
// the request. Seconds are rounded up. Call it from ResponseFilter to advertise the quota on
// allowed responses too.
func (d *Decision) AppendHeaders(f *header.Fields) {
	var buf [40]byte
	f.AppendBytes([]byte(FieldLimit), strconv.AppendInt(buf[:0], d.Limit, 10))
	f.AppendBytes([]byte(FieldRemaining), strconv.AppendInt(buf[:0], max(d.Remaining, 0), 10))
	f.AppendBytes([]byte(FieldReset), strconv.AppendInt(buf[:0], ceilSeconds(d.Reset), 10))
	b := strconv.AppendInt(buf[:0], d.Limit, 10)
	b = append(b, ";w="...)
	b = strconv.AppendInt(b, ceilSeconds(d.Window), 10)
	f.AppendBytes([]byte(FieldPolicy), b)
	if !d.Allowed {
		f.AppendBytes([]byte(FieldRetryAfter), strconv.AppendInt(buf[:0], max(ceilSeconds(d.RetryAfter), 1), 10))
	}
}

// ceilSeconds returns d in whole seconds, rounded up, and 0 for d <= 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// KeyFunc appends the rate-limit key of the request in s to dst and returns the extended
// slice. An empty key exempts the request from the limit. Keys of up to 128 bytes cost no
// allocation.
type KeyFunc func(s *proxy.Session, dst []byte) []byte

// ClientIP is a KeyFunc keying requests by the client's IP address (IPv4-mapped IPv6
// addresses as IPv4), without the port.
func ClientIP(s *proxy.Session, dst []byte) []byte {
	switch a := s.ClientAddr().(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap().AppendTo(dst)
	case nil:
		return dst
	default:
		host, _, err := net.SplitHostPort(a.String())
		if err != nil {
			return append(dst, a.String()...)
		}
		return append(dst, host...)
	}
}

// Header returns a KeyFunc keying requests by the value of the first field named name;
// requests without it are not limited.
func Header(name string) KeyFunc {
	return func(s *proxy.Session, dst []byte) []byte {
		v, _ := s.Req().Get(name)
		return append(dst, v...)
	}
}

// Filter is a ready request filter: it keys each request with Key, asks Limiter, and answers
// a refused request with 429 Too Many Requests. Call its RequestFilter from the RequestFilter
// phase of a proxy program. A Filter is safe for concurrent use once set up.
type Filter struct {
	// Limiter decides; it is required.
	Limiter Limiter
	// Key keys the requests; nil keys them by ClientIP.
	Key KeyFunc
	// Body is the body of 429 responses; nil sends "429 Too Many Requests\n".
	Body []byte
	// KeepAlive keeps the downstream connection open after a 429. By default it is closed,
	// as in the reference's example, so that a client over its limit pays for a new
	// connection.
	KeepAlive bool
}

var defaultBody = []byte("429 Too Many Requests\n")

// keyBufs holds scratch buffers for keys: a key handed to a Limiter (an interface) escapes,
// so a stack buffer would be a heap allocation per request.
var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, maxPooledKey); return &b }}

// maxPooledKey is the longest key made without an allocation.
const maxPooledKey = 128

// RequestFilter limits the request in s: it returns false when the request may go on (or has
// no key), and true after answering it with 429. Use it as the body of a RequestFilter phase:
//
//	func (a *App) RequestFilter(s *proxy.Session, _ *Ctx) (bool, error) {
//		return a.limit.RequestFilter(s)
//	}
func (f *Filter) RequestFilter(s *proxy.Session) (bool, error) {
	d, limited := f.Check(s)
	if !limited || d.Allowed {
		return false, nil
	}
	return true, f.Reject(s, &d)
}

// Check keys the request in s and asks the Limiter, without answering. limited is false when
// the request has no key; d is then the zero Decision.
func (f *Filter) Check(s *proxy.Session) (d Decision, limited bool) {
	key := f.Key
	if key == nil {
		key = ClientIP
	}
	bp := keyBufs.Get().(*[]byte)
	if k := key(s, (*bp)[:0]); len(k) > 0 {
		d, limited = f.Limiter.Allow(context.Background(), k), true
	}
	// The buffer goes back as it was: a KeyFunc may return a slice that is not its dst, and
	// appending to that later would write into someone else's memory.
	keyBufs.Put(bp)
	return d, limited
}

// Reject answers the request in s with 429, the RateLimit fields of d and Retry-After, and
// closes the downstream connection afterwards unless KeepAlive is set.
func (f *Filter) Reject(s *proxy.Session, d *Decision) error {
	if !f.KeepAlive {
		s.SetKeepAlive(false)
	}
	var extra header.Fields
	extra.Append("Content-Type", "text/plain; charset=utf-8")
	extra.Append("Cache-Control", "private, no-store")
	d.AppendHeaders(&extra)
	body := f.Body
	if body == nil {
		body = defaultBody
	}
	return s.Respond(429, &extra, body)
}
