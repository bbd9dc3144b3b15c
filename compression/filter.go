package compression

import (
	"time"

	"github.com/pingora-go/pingora/header"
)

// Filter compresses or decompresses one response on its way to the client: ResponseHeader
// decides from the request's Accept-Encoding and the response head, and rewrites the head;
// ResponseBody then transforms each piece of the body as it streams. Whole bodies are never
// held: each piece goes out, flushed, as soon as it has been transformed.
//
// Decisions, in order: interim (1xx) heads, heads that end the response, 204, 304 and partial
// (206 or Content-Range) responses, and responses marked Cache-Control: no-transform or sent
// for a request marked so (RFC 9111 §5.2.2.6, §5.2.1.6) pass as they are. A coded response
// (one known Content-Encoding) is decoded when the client does not accept its coding, and
// encoded again with a coding the client accepts when its type is compressible. An uncoded
// response of a compressible type is encoded with the coding Accept.Negotiate picks. A
// response to HEAD gets the head a GET would get, and no body.
//
// A full (200) response to a request with Range is coded like any other: the server chose to
// send the whole representation, and once Content-Length and Accept-Ranges are gone nothing
// downstream cuts a range out of the coded bytes. Ranges served as 206 are never touched.
//
// The zero Filter is ready to use with default Options; a Filter is reused after Release.
type Filter struct {
	opts     Options
	dec      *Decoder
	enc      *Encoder
	headOnly bool
	mid, out []byte
	info     Info
	err      error // the coding error that broke the current response
}

// Info tells what a Filter did to a response.
type Info struct {
	// Decoded is the upstream coding removed, Identity if none.
	Decoded Coding
	// Encoded is the coding applied, Identity if none.
	Encoded Coding
	// BytesIn and BytesOut count the body bytes before and after the filter, for responses it
	// transformed.
	BytesIn, BytesOut int64
	// Duration is the time spent transforming the body.
	Duration time.Duration
}

// maxKeptBuffer is the largest buffer a released Filter keeps for its next response.
const maxKeptBuffer = 1 << 20

// NewFilter returns a filter with options o.
func NewFilter(o Options) *Filter { return &Filter{opts: o} }

// Options returns the filter's own copy of its options, to change before ResponseHeader.
// Replace a slice field rather than modify its elements: the slice is shared with the Options
// the filter was given.
func (f *Filter) Options() *Options { return &f.opts }

// Reset releases what the filter holds and gives it options o for its next response.
func (f *Filter) Reset(o Options) {
	f.Release()
	f.opts = o
}

// Info returns what the filter did to the current response.
func (f *Filter) Info() Info { return f.info }

// Active reports whether the filter transforms the current response's body.
func (f *Filter) Active() bool { return f.dec != nil || f.enc != nil }

// ResponseHeader decides what to do with the response whose head is resp, sent for req, and
// rewrites resp accordingly: Content-Encoding set or removed, Content-Length and
// Accept-Ranges removed, strong ETags made weak, Vary: Accept-Encoding added where the choice
// depended on it. endOfStream is true when the response has no body.
func (f *Filter) ResponseHeader(req *header.RequestHeader, resp *header.ResponseHeader, endOfStream bool) {
	if resp.Status < 200 {
		return
	}
	f.releaseCoders()
	f.info, f.err = Info{}, nil
	if endOfStream || resp.Status == 204 || resp.Status == 304 || resp.Status == 206 ||
		resp.Has("Content-Range") || resp.HasToken("Cache-Control", "no-transform") ||
		req.HasToken("Cache-Control", "no-transform") {
		return
	}
	upstream, ok := contentCoding(resp)
	if !ok {
		return
	}
	o := &f.opts
	accept := ParseAccept(&req.Fields)
	dec, enc := Identity, Identity
	if upstream != Identity {
		if o.DisableDecompression {
			return
		}
		addVary(resp)
		if accept.Accepts(upstream) {
			return
		}
		dec = upstream
		if !o.DisableCompression && o.Compressible(resp, false) {
			enc = accept.Negotiate(o.codings())
		}
	} else {
		// A client that refuses identity gets even a short body compressed.
		if o.DisableCompression || !o.Compressible(resp, accept.Accepts(Identity)) {
			return
		}
		addVary(resp)
		if enc = accept.Negotiate(o.codings()); enc == Identity {
			return
		}
	}
	resp.Remove("Content-Length")
	resp.Remove("Accept-Ranges")
	if enc != Identity {
		resp.Set("Content-Encoding", enc.String())
	} else {
		resp.Remove("Content-Encoding")
	}
	if !o.PreserveETag {
		weakenETag(resp)
	}
	f.info.Decoded, f.info.Encoded = dec, enc
	if req.IsMethod("HEAD") {
		f.headOnly = true
		return
	}
	if dec != Identity {
		f.dec = NewDecoder(dec, o.decompressLimit())
	}
	if enc != Identity {
		f.enc = NewEncoder(enc, o.Level(enc))
	}
}

// ResponseBody transforms one piece of the body; endOfStream marks the last. The result is
// piece itself when the filter leaves the body alone, else a buffer of the filter's that stays
// valid until the next call. After an error the response cannot be completed.
func (f *Filter) ResponseBody(piece []byte, endOfStream bool) ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	if f.headOnly || !f.Active() {
		return piece, nil
	}
	start := time.Now()
	f.info.BytesIn += int64(len(piece))
	data := piece
	var err error
	if f.dec != nil {
		f.mid, err = f.dec.Decode(f.mid[:0], piece, endOfStream)
		if err != nil {
			return nil, f.fail(err)
		}
		data = f.mid
	}
	if f.enc != nil {
		f.out, err = f.enc.Encode(f.out[:0], data, endOfStream)
		if err != nil {
			return nil, f.fail(err)
		}
		data = f.out
	}
	f.info.BytesOut += int64(len(data))
	f.info.Duration += time.Since(start)
	if endOfStream {
		f.releaseCoders()
	}
	return data, nil
}

// fail ends the current response's coding with err, which later pieces get too.
func (f *Filter) fail(err error) error {
	f.releaseCoders()
	f.err = err
	return err
}

// Release returns the filter's encoder and decoder to their pools and drops large buffers;
// the filter can then be Reset for another response.
func (f *Filter) Release() {
	f.releaseCoders()
	f.err = nil
	if cap(f.mid) > maxKeptBuffer {
		f.mid = nil
	}
	if cap(f.out) > maxKeptBuffer {
		f.out = nil
	}
}

func (f *Filter) releaseCoders() {
	if f.dec != nil {
		f.dec.Release()
		f.dec = nil
	}
	if f.enc != nil {
		f.enc.Release()
		f.enc = nil
	}
	f.headOnly = false
}

// contentCoding returns the coding of resp's Content-Encoding (Identity when absent), and false
// when it is not one coding the package knows.
func contentCoding(resp *header.ResponseHeader) (Coding, bool) {
	coding, n, known := Identity, 0, true
	resp.Values("Content-Encoding", func(v []byte) bool {
		for len(v) > 0 {
			var item []byte
			item, v = cut(v, ',')
			item = header.TrimOWS(item)
			if len(item) == 0 {
				continue
			}
			c, ok := ParseCoding(item)
			if !ok {
				known = false
				return false
			}
			if c != Identity {
				coding = c
				n++
			}
		}
		return true
	})
	return coding, known && n <= 1
}

// addVary adds Accept-Encoding to Vary unless it is there already or Vary is "*".
func addVary(resp *header.ResponseHeader) {
	if resp.HasToken("Vary", "*") || resp.HasToken("Vary", "Accept-Encoding") {
		return
	}
	resp.Append("Vary", "Accept-Encoding")
}

// weakenETag makes a strong ETag weak and removes one that is not a quoted string: the
// transformed body is no longer byte for byte the one the tag names (RFC 9110 §8.8.3).
func weakenETag(resp *header.ResponseHeader) {
	v, ok := resp.Get("ETag")
	if !ok {
		return
	}
	v = header.TrimOWS(v)
	switch {
	case len(v) >= 4 && v[0] == 'W' && v[1] == '/' && v[2] == '"' && v[len(v)-1] == '"':
	case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"':
		resp.Set("ETag", "W/"+string(v))
	default:
		resp.Remove("ETag")
	}
}
