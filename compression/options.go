package compression

import (
	"strconv"
	"strings"

	"github.com/pingora-go/pingora/header"
)

// Options configures compression and decompression. The zero value uses the defaults: it
// compresses with zstd, br or gzip and decompresses for clients that do not accept the
// upstream's coding.
type Options struct {
	// Codings lists the codings to produce, in the server's order of preference, which
	// decides between codings the client weighs equally. Default: zstd, br, gzip.
	Codings []Coding
	// GzipLevel (1-9), BrotliLevel (1-11) and ZstdLevel (1-22) set each coding's level;
	// 0 uses DefaultGzipLevel, DefaultBrotliLevel and DefaultZstdLevel.
	GzipLevel, BrotliLevel, ZstdLevel int
	// MinLength is the smallest Content-Length worth compressing; a response without
	// Content-Length is compressed whatever its length. Default 20 (the reference's);
	// negative compresses every length.
	MinLength int64
	// Types lists the compressible media types, as "type/subtype" or "type/*", compared
	// without parameters and case. Default: DefaultTypes.
	Types []string
	// Exclude lists substrings of media types never compressed, such as already compressed
	// formats matched by Types' wildcards. Default: DefaultExclude.
	Exclude []string
	// DisableCompression turns compression off; decompression still happens.
	DisableCompression bool
	// DisableDecompression leaves coded upstream responses as they are, even for clients that
	// do not accept their coding.
	DisableDecompression bool
	// PreserveETag keeps ETags as they are when the body changes; by default a strong ETag is
	// made weak (W/) and a malformed one removed, since the bytes are no longer the origin's.
	PreserveETag bool
	// DecompressLimit caps the decoded size of one response body; a body that decodes to more
	// (a decompression bomb) ends the response with ErrTooLarge. Since a whole piece of input
	// is decoded at once, it also bounds the memory one response can take. Default
	// DefaultDecompressLimit.
	DecompressLimit int64
}

// DefaultDecompressLimit is the default of Options.DecompressLimit.
const DefaultDecompressLimit = 64 << 20

// DefaultMinLength is the default of Options.MinLength.
const DefaultMinLength = 20

// DefaultCodings is the default of Options.Codings.
var DefaultCodings = []Coding{Zstd, Brotli, Gzip}

// DefaultTypes is the default of Options.Types: the reference's list of compressible types.
var DefaultTypes = []string{"text/*", "application/*", "font/*", "image/svg+xml", "image/x-icon",
	"image/vnd.microsoft.icon", "binary/octet-stream"}

// DefaultExclude is the default of Options.Exclude: compressed formats among DefaultTypes.
var DefaultExclude = []string{"zip", "zstd", "x-xz", "x-7z", "x-rar", "x-compress", "x-lzma", "x-lz4"}

// Level returns the level used for coding c.
func (o *Options) Level(c Coding) int {
	switch c {
	case Gzip:
		return clampLevel(c, o.GzipLevel)
	case Brotli:
		return clampLevel(c, o.BrotliLevel)
	case Zstd:
		return clampLevel(c, o.ZstdLevel)
	}
	return 0
}

func (o *Options) codings() []Coding {
	if o.Codings == nil {
		return DefaultCodings
	}
	return o.Codings
}

func (o *Options) decompressLimit() int64 {
	if o.DecompressLimit <= 0 {
		return DefaultDecompressLimit
	}
	return o.DecompressLimit
}

// Compressible reports whether resp is worth compressing: its media type is among Types and
// not excluded, and its Content-Length, if any, is at least MinLength. checkLength false skips
// the length test (the length of a coded body says little about its decoded size).
func (o *Options) Compressible(resp *header.ResponseHeader, checkLength bool) bool {
	ct, ok := resp.Get("Content-Type")
	if !ok {
		return false
	}
	if checkLength {
		minLen := o.MinLength
		if minLen == 0 {
			minLen = DefaultMinLength
		}
		if cl, ok := resp.Get("Content-Length"); ok {
			n, err := strconv.ParseInt(string(header.TrimOWS(cl)), 10, 64)
			if err != nil || n < minLen {
				return false
			}
		}
	}
	mt, _ := cut(ct, ';')
	mt = header.TrimOWS(mt)
	exclude := o.Exclude
	if exclude == nil {
		exclude = DefaultExclude
	}
	for _, x := range exclude {
		if containsFold(mt, x) {
			return false
		}
	}
	types := o.Types
	if types == nil {
		types = DefaultTypes
	}
	for _, t := range types {
		if matchType(mt, t) {
			return true
		}
	}
	return false
}

// matchType reports whether the media type mt matches pattern ("type/subtype", "type/*" or
// "*/*").
func matchType(mt []byte, pattern string) bool {
	if pattern == "*/*" {
		return true
	}
	if base, ok := strings.CutSuffix(pattern, "/*"); ok {
		typ, _ := cut(mt, '/')
		return header.EqualFold(typ, base) && len(typ) < len(mt)
	}
	return header.EqualFold(mt, pattern)
}

// containsFold reports whether b contains sub, ignoring ASCII case.
func containsFold(b []byte, sub string) bool {
	for i := 0; i+len(sub) <= len(b); i++ {
		if header.EqualFold(b[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}
