package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"sync"

	"github.com/pingora-go/pingora/header"
)

// Hash is a 128-bit digest: the first half of a SHA-256. Keys are compared by hash only, so a
// hash must be as collision-resistant as the cache is exposed to crafted requests; 128 bits of
// SHA-256 are, and the digest is stable across processes, which disk storage needs.
type Hash [16]byte

// IsZero reports whether h is the zero hash, which means "none" (no variance).
func (h Hash) IsZero() bool { return h == Hash{} }

// String returns h in lower-case hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash parses the hex form String produces.
func ParseHash(s string) (Hash, bool) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, false
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, false
	}
	return h, true
}

// Key identifies one stored response: the primary hash of the resource (by default its URI) and
// the variance, a hash of the request fields the response's Vary names (zero without Vary).
type Key struct {
	Primary  Hash
	Variance Hash
}

// Uint64 returns 64 bits of the key for hash tables and eviction indexes.
func (k Key) Uint64() uint64 {
	return binary.LittleEndian.Uint64(k.Primary[:8]) ^ binary.LittleEndian.Uint64(k.Variance[:8])
}

// String returns "primary" or "primary-variance" in hex.
func (k Key) String() string {
	if k.Variance.IsZero() {
		return k.Primary.String()
	}
	return k.Primary.String() + "-" + k.Variance.String()
}

// PrimaryOnly returns the key without its variance: the slot of the resource itself.
func (k Key) PrimaryOnly() Key { return Key{Primary: k.Primary} }

// KeyFunc computes the primary key of a request. scheme is "http" or "https" as the request
// arrived. A key function decides which requests share a stored response: everything that
// changes the response and is not covered by Vary must go into it, or one user's response may
// be served to another (cache poisoning).
type KeyFunc func(scheme string, req *header.RequestHeader) Key

// DefaultKey is the default KeyFunc: scheme, host (lower-cased, default port removed) and the
// path with its query, taken from the Host field or from an absolute-form request-target. The
// method is not part of it: HEAD is served from a stored GET.
func DefaultKey(scheme string, req *header.RequestHeader) Key {
	host, pathQuery := requestAuthority(req)
	return PrimaryKey(scheme, host, pathQuery)
}

// PrimaryKey hashes a scheme, host and path-with-query into a primary key. host is compared
// case-insensitively and a default port (80 for http, 443 for https) is ignored.
func PrimaryKey(scheme string, host, pathQuery []byte) Key {
	bp := keyBufPool.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, "pingora-cache-v1\x00"...)
	b = appendLower(b, []byte(scheme))
	b = append(b, 0)
	b = appendLower(b, stripDefaultPort(scheme, host))
	b = append(b, 0)
	b = append(b, pathQuery...)
	sum := sha256.Sum256(b)
	*bp = b
	keyBufPool.Put(bp)
	var k Key
	copy(k.Primary[:], sum[:16])
	return k
}

var keyBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// requestAuthority returns the host and path-with-query of a request, from an absolute-form
// target when there is one, else from Host and the origin-form target.
func requestAuthority(req *header.RequestHeader) (host, pathQuery []byte) {
	t := req.Target()
	if i := bytes.Index(t, []byte("://")); i > 0 && t[0] != '/' {
		rest := t[i+3:]
		j := bytes.IndexByte(rest, '/')
		if q := bytes.IndexByte(rest, '?'); q >= 0 && (j < 0 || q < j) {
			j = q
		}
		if j < 0 {
			return rest, []byte("/")
		}
		return rest[:j], rest[j:]
	}
	return req.Host(), t
}

func stripDefaultPort(scheme string, host []byte) []byte {
	switch {
	case scheme == "http" && bytes.HasSuffix(host, []byte(":80")):
		return host[:len(host)-3]
	case scheme == "https" && bytes.HasSuffix(host, []byte(":443")):
		return host[:len(host)-4]
	}
	return host
}

func appendLower(dst, s []byte) []byte {
	for _, c := range s {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}
