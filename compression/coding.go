// Package compression compresses and decompresses HTTP response bodies (gzip, br, zstd) as
// they stream through a proxy, choosing the coding by Accept-Encoding negotiation.
package compression

import "github.com/pingora-go/pingora/header"

// Coding is a content coding (RFC 9110 §8.4.1) the package knows.
type Coding uint8

// The codings; Identity means no coding.
const (
	Identity Coding = iota
	Gzip
	Brotli
	Zstd
	numCodings
)

// names are the tokens of the codings on the wire.
var names = [numCodings]string{"identity", "gzip", "br", "zstd"}

// String returns the coding's token, as used in Content-Encoding.
func (c Coding) String() string {
	if c < numCodings {
		return names[c]
	}
	return "unknown"
}

// ParseCoding returns the coding named by token (case-insensitively; "x-gzip" is gzip, RFC
// 9110 §8.4.1.3) and whether it is one the package knows.
func ParseCoding(token []byte) (Coding, bool) {
	for c := Identity; c < numCodings; c++ {
		if header.EqualFold(token, names[c]) {
			return c, true
		}
	}
	if header.EqualFold(token, "x-gzip") {
		return Gzip, true
	}
	return Identity, false
}
