package gateway

import (
	"github.com/pingora-go/pingora/compression"
)

// Compression is how a route codes response bodies (package compression). It may be written
// as true or false alone: true compresses with the defaults.
type Compression struct {
	// Enabled turns compression on (default true when the mapping is given). Off, bodies pass
	// as they are, coded or not.
	Enabled *bool `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	// Codings lists the codings to produce, in the order preferred when a client weighs
	// several equally (default [zstd, br, gzip]).
	Codings []string `yaml:"codings,omitempty" json:"codings,omitempty" enum:"zstd,br,gzip"`
	// GzipLevel is gzip's level, 1 to 9 (default 6).
	GzipLevel int `yaml:"gzip_level,omitempty" json:"gzip_level,omitempty"`
	// BrLevel is brotli's level, 1 to 11 (default 5).
	BrLevel int `yaml:"br_level,omitempty" json:"br_level,omitempty"`
	// ZstdLevel is zstd's level, 1 to 22 (default 3).
	ZstdLevel int `yaml:"zstd_level,omitempty" json:"zstd_level,omitempty"`
	// MinLength is the smallest Content-Length compressed (default 20 bytes); responses of
	// unknown length are compressed whatever their length.
	MinLength *Size `yaml:"min_length,omitempty" json:"min_length,omitempty"`
	// Types lists the media types compressed, as "type/subtype" or "type/*" (default text,
	// application, font and a few image types).
	Types []string `yaml:"types,omitempty" json:"types,omitempty"`
	// Exclude lists substrings of media types never compressed (default: the compressed
	// formats among Types' wildcards, such as zip and zstd).
	Exclude []string `yaml:"exclude,omitempty" json:"exclude,omitempty"`
	// Decompress decodes upstream responses whose coding the client does not accept
	// (default true).
	Decompress *bool `yaml:"decompress,omitempty" json:"decompress,omitempty"`
	// DecompressLimit caps the decoded size of one response body; a body that decodes to more
	// ends the response (default 64MiB).
	DecompressLimit Size `yaml:"decompress_limit,omitempty" json:"decompress_limit,omitempty"`
	// PreserveETag keeps strong ETags of bodies the proxy coded (default false: they are
	// made weak, since the bytes are no longer the origin's).
	PreserveETag bool `yaml:"preserve_etag,omitempty" json:"preserve_etag,omitempty"`
}

// setScalar lets a route's compression be written as true or false.
func (c *Compression) setScalar(s string) error {
	return setSwitch(s, &c.Enabled, "compression settings")
}

// scalarSchemaType is the JSON Schema type of the scalar form.
func (*Compression) scalarSchemaType() string { return "boolean" }

// levelRanges are the levels each coding accepts.
var levelRanges = map[string][2]int{"gzip_level": {1, 9}, "br_level": {1, 11}, "zstd_level": {1, 22}}

// validate checks c and fills in its defaults; p is its key path.
func (c *Compression) validate(v *validator, p string) {
	if c.Enabled == nil {
		c.Enabled = ptr(true)
	}
	if c.Decompress == nil {
		c.Decompress = ptr(true)
	}
	seen := map[compression.Coding]bool{}
	for i, name := range c.Codings {
		cd, ok := compression.ParseCoding([]byte(name))
		if !ok || cd == compression.Identity {
			v.fail(p+".codings["+itoa(i)+"]", "want zstd, br or gzip")
			continue
		}
		if seen[cd] {
			v.fail(p+".codings["+itoa(i)+"]", "%s listed twice", name)
		}
		seen[cd] = true
	}
	for key, lv := range map[string]int{"gzip_level": c.GzipLevel, "br_level": c.BrLevel, "zstd_level": c.ZstdLevel} {
		r := levelRanges[key]
		if lv != 0 && (lv < r[0] || lv > r[1]) {
			v.fail(p+"."+key, "want a level from %d to %d", r[0], r[1])
		}
	}
	for i, t := range c.Types {
		if !mediaTypeRE.MatchString(t) {
			v.fail(p+".types["+itoa(i)+"]", `want a media type such as "text/html" or "text/*"`)
		}
	}
	if c.DecompressLimit != 0 && c.DecompressLimit < 1024 {
		v.fail(p+".decompress_limit", "want at least 1KiB")
	}
}

// options returns the compression options of a route whose compression is c (validated).
func (c *Compression) options() compression.Options {
	var o compression.Options
	for _, name := range c.Codings {
		cd, _ := compression.ParseCoding([]byte(name))
		o.Codings = append(o.Codings, cd)
	}
	o.GzipLevel, o.BrotliLevel, o.ZstdLevel = c.GzipLevel, c.BrLevel, c.ZstdLevel
	o.MinLength = compression.DefaultMinLength
	if c.MinLength != nil {
		o.MinLength = int64(*c.MinLength)
		if o.MinLength == 0 {
			o.MinLength = -1 // every length
		}
	}
	o.Types, o.Exclude = c.Types, c.Exclude
	o.DisableCompression = !*c.Enabled
	o.DisableDecompression = !*c.Enabled || !*c.Decompress
	o.DecompressLimit = int64(c.DecompressLimit)
	o.PreserveETag = c.PreserveETag
	return o
}

// routeCompression returns the options of a route's module, or nil when the route neither
// compresses nor decompresses.
func routeCompression(c *Compression) *compression.Options {
	if !*c.Enabled {
		return nil
	}
	o := c.options()
	return &o
}
