package ws

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/flate"
)

// deflateTail is the end of a DEFLATE sync flush, which permessage-deflate removes from every
// compressed message and the receiver puts back (RFC 7692 §7.2.1).
var deflateTail = [4]byte{0x00, 0x00, 0xff, 0xff}

// maxWindow is the largest DEFLATE window: what a receiver keeps of earlier messages when the
// sender takes its context over.
const maxWindow = 1 << 15

// DefaultCompressionLevel is the level messages are compressed at unless Config says
// otherwise: the fastest, since a proxy compresses on the hot path.
const DefaultCompressionLevel = flate.BestSpeed

// flateWriters pools compressors of the full window, per level (1..9); flateReaders pools
// decompressors, whose only per-message state is the dictionary given on Reset.
var (
	flateWriters [10]sync.Pool
	flateReaders sync.Pool
)

// compressor compresses messages for one sender.
type compressor struct {
	fw        *flate.Writer
	level     int
	bits      int
	noContext bool
	out       sliceWriter
}

type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func newCompressor(level, bits int, noContext bool) *compressor {
	if level < flate.BestSpeed || level > flate.BestCompression {
		level = DefaultCompressionLevel
	}
	return &compressor{level: level, bits: bits, noContext: noContext}
}

// compress returns p compressed as one permessage-deflate message, valid until the next call.
func (c *compressor) compress(p []byte) ([]byte, error) {
	c.out.b = c.out.b[:0]
	if c.fw == nil {
		c.fw = c.get()
		c.fw.Reset(&c.out)
	}
	if _, err := c.fw.Write(p); err != nil {
		return nil, err
	}
	if err := c.fw.Flush(); err != nil {
		return nil, err
	}
	b := c.out.b
	if !bytes.HasSuffix(b, deflateTail[:]) {
		return nil, errors.New("websocket: compressor did not end with a sync flush")
	}
	b = b[:len(b)-len(deflateTail)]
	if c.noContext {
		c.release()
	}
	return b, nil
}

// get returns a compressor writing to c.out: pooled for the full window, new for a smaller one.
func (c *compressor) get() *flate.Writer {
	if c.bits == 15 {
		if fw, ok := flateWriters[c.level].Get().(*flate.Writer); ok {
			return fw
		}
		fw, _ := flate.NewWriter(&c.out, c.level)
		return fw
	}
	fw, _ := flate.NewWriterWindow(&c.out, 1<<c.bits)
	return fw
}

// release gives the DEFLATE state back; the next message starts a fresh context.
func (c *compressor) release() {
	if c.fw == nil {
		return
	}
	if c.bits == 15 {
		c.fw.Reset(nil)
		flateWriters[c.level].Put(c.fw)
	}
	c.fw = nil
}

// decompressor inflates messages of one sender, keeping the window of the messages before
// when the sender takes its context over.
type decompressor struct {
	noContext bool
	window    []byte
	src       bytes.Reader
}

// decompress inflates the compressed message p, to which it appends the sync-flush tail in
// place (p must have room or be owned), onto dst[:0], failing with ErrMessageTooBig beyond
// limit bytes.
func (d *decompressor) decompress(dst, p []byte, limit int64) ([]byte, error) {
	p = append(p, deflateTail[:]...)
	d.src.Reset(p)
	fr, _ := flateReaders.Get().(io.ReadCloser)
	if fr == nil {
		fr = flate.NewReader(nil)
	}
	defer flateReaders.Put(fr)
	var dict []byte
	if !d.noContext {
		dict = d.window
	}
	if err := fr.(flate.Resetter).Reset(&d.src, dict); err != nil {
		return dst, err
	}
	dst = dst[:0]
	for {
		if len(dst) == cap(dst) {
			// Room for one byte past the limit is enough to see it passed.
			dst = slices.Grow(dst, int(min(int64(max(cap(dst), 4096)), limit+1-int64(len(dst)))))
		}
		n, err := fr.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if int64(len(dst)) > limit {
			return dst, ErrMessageTooBig
		}
		if err == nil {
			continue
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF && d.src.Len() == 0 {
			break
		}
		return dst, &Error{Code: CloseInvalidPayload, Reason: "invalid compressed data"}
	}
	if !d.noContext {
		d.keep(dst)
	}
	return dst, nil
}

// keep appends out to the window and trims the window to its last maxWindow bytes.
func (d *decompressor) keep(out []byte) {
	if len(out) >= maxWindow {
		d.window = append(d.window[:0], out[len(out)-maxWindow:]...)
		return
	}
	if over := len(d.window) + len(out) - maxWindow; over > 0 {
		d.window = d.window[:copy(d.window, d.window[over:])]
	}
	d.window = append(d.window, out...)
}
