package compression

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// ErrTooLarge is returned when a body decodes to more bytes than the decoder's limit allows,
// as a decompression bomb would.
var ErrTooLarge = errors.New("compression: decoded body exceeds the size limit")

var (
	errEncoderClosed = errors.New("compression: encoder used after the end of its stream")
	errDecoderClosed = errors.New("compression: decoder released")
)

// maxZstdWindow is the largest zstd window the decoder accepts: RFC 8878 §7.2 lets HTTP
// decoders refuse frames that need more than 8 MiB.
const maxZstdWindow = 8 << 20

// decodeChunk is how much output the decoder asks for at a time.
const decodeChunk = 32 << 10

// Decoder decompresses one body pushed to it piece by piece, with a limit on the decoded size.
//
// The decompressors read from an io.Reader, so a Decoder runs one on its own goroutine and
// feeds it the pieces: the goroutine and the caller of Decode hand control to each other
// through channels, so exactly one of them runs at a time and the decoded bytes need no lock.
// Decoders come from pools (NewDecoder) and go back with Release.
type Decoder struct {
	coding Coding
	limit  int64
	total  int64

	in chan piece // caller → goroutine: the next piece; closed by Release
	ev chan error // goroutine → caller: nil when it needs input, else how it ended

	// The fields below belong to whichever side holds control.
	cur     []byte // unread part of the current piece
	last    bool   // cur is the last piece
	out     []byte // decoded bytes of this Decode call
	started bool
	ended   bool
	err     error // how decoding ended (nil for a clean end)
	closed  bool
	// sawInput is set once the decompressor has read a byte.
	sawInput bool

	buf []byte // the decompressor's output, before it is appended to out
	gz  *gzip.Reader
	br  *brotli.Reader
	zs  *zstd.Decoder
}

type piece struct {
	b    []byte
	last bool
}

var decoderPools [numCodings]sync.Pool

// NewDecoder returns a decoder for coding c that fails with ErrTooLarge once the body decodes
// to more than limit bytes. It panics for Identity or an unknown coding.
func NewDecoder(c Coding, limit int64) *Decoder {
	if c == Identity || c >= numCodings {
		panic(fmt.Sprintf("compression: no decoder for coding %v", c))
	}
	d, _ := decoderPools[c].Get().(*Decoder)
	if d == nil {
		d = &Decoder{coding: c}
	}
	d.limit = limit
	if d.in == nil {
		d.in = make(chan piece)
	}
	if d.ev == nil {
		d.ev = make(chan error)
	}
	return d
}

// Coding returns the coding the decoder reads.
func (d *Decoder) Coding() Coding { return d.coding }

// Decode decodes piece and appends the output to dst: all the bytes that the input so far
// decodes to, as far as the coded stream lets them out (a stream flushed by its encoder after
// each piece decodes completely). last marks the final piece. Once the coded stream has ended,
// further input is ignored. A truncated stream (last arrives before its end) is an error.
func (d *Decoder) Decode(dst, p []byte, last bool) ([]byte, error) {
	if d.ended {
		return dst, d.err
	}
	d.out = dst
	if !d.started {
		d.started = true
		d.cur, d.last = p, last
		go d.run()
	} else {
		d.in <- piece{p, last}
	}
	if err := <-d.ev; err != nil {
		d.ended = true
		d.cur = nil
		if err != io.EOF {
			d.err = err
		}
	}
	out := d.out
	d.out = nil
	return out, d.err
}

// brotliExcessiveInput is andybalholm/brotli's error for input past the end of the stream.
const brotliExcessiveInput = "brotli: excessive input"

// run decodes on its own goroutine until the stream ends, fails or the decoder is released.
func (d *Decoder) run() {
	var r io.Reader
	err := d.reset()
	switch d.coding {
	case Gzip:
		r = d.gz
	case Brotli:
		r = d.br
	case Zstd:
		r = d.zs
	}
	if d.buf == nil {
		d.buf = make([]byte, decodeChunk)
	}
	for err == nil {
		// Read into the goroutine's own buffer: a Read can block for the next piece, and
		// d.out is the caller's to replace meanwhile.
		room := d.buf
		if left := d.limit - d.total + 1; int64(len(room)) > left {
			room = room[:left]
		}
		var n int
		n, err = r.Read(room)
		if d.total+int64(n) > d.limit {
			n, err = int(d.limit-d.total), ErrTooLarge
		}
		d.out = append(d.out, room[:n]...)
		d.total += int64(n)
	}
	if err == io.ErrUnexpectedEOF && !d.sawInput {
		// An empty body: nothing to decode, which brotli would call truncated.
		err = io.EOF
	}
	if d.coding == Brotli && err != nil && err.Error() == brotliExcessiveInput && d.last && len(d.cur) == 0 {
		// andybalholm/brotli ends a stream whose last bytes arrived one by one with this
		// error, counting bytes of its own input buffer that the stream did use. The
		// source holds the body's last byte back until the decoder asks for it: when the
		// decoder took it, the stream ended with the body and ended well; when it did not,
		// bytes followed the stream, and the error stands.
		err = io.EOF
	}
	d.ev <- err
}

// reset points the decompressor at the decoder's input. For gzip it reads the header, so it
// runs on the decoding goroutine.
func (d *Decoder) reset() error {
	switch d.coding {
	case Gzip:
		if d.gz == nil {
			d.gz = new(gzip.Reader)
		}
		return d.gz.Reset(source{d})
	case Brotli:
		if d.br == nil {
			d.br = brotli.NewReader(source{d})
			return nil
		}
		return d.br.Reset(source{d})
	default:
		if d.zs == nil {
			var err error
			d.zs, err = zstd.NewReader(source{d}, zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(maxZstdWindow))
			return err
		}
		return d.zs.Reset(source{d})
	}
}

// Release stops the decoder's goroutine and returns the decoder to its pool; it must not be
// used afterwards.
func (d *Decoder) Release() {
	in, ev := d.in, d.ev
	if d.started && !d.ended {
		d.closed = true
		close(in)
		for err := range ev {
			if err != nil {
				break
			}
		}
		in = nil
	}
	*d = Decoder{coding: d.coding, in: in, ev: ev, buf: d.buf, gz: d.gz, br: d.br, zs: d.zs}
	decoderPools[d.coding].Put(d)
}

// source is the decompressor's input: the pieces given to Decode. When the current piece is
// used up it hands control back to Decode and waits for the next one.
type source struct{ d *Decoder }

func (s source) next() error {
	d := s.d
	for len(d.cur) == 0 {
		if d.last {
			return io.EOF
		}
		if d.closed {
			return errDecoderClosed
		}
		d.ev <- nil
		p, ok := <-d.in
		if !ok {
			d.closed = true
			return errDecoderClosed
		}
		d.cur, d.last = p.b, p.last
	}
	return nil
}

func (s source) Read(p []byte) (int, error) {
	if err := s.next(); err != nil {
		return 0, err
	}
	s.d.sawInput = true
	avail := s.d.cur
	if s.d.coding == Brotli && s.d.last && len(avail) > 1 {
		// Hold the body's last byte back until brotli asks for it: a stream that ends
		// without it had bytes after its end (see run).
		avail = avail[:len(avail)-1]
	}
	n := copy(p, avail)
	s.d.cur = s.d.cur[n:]
	return n, nil
}

func (s source) ReadByte() (byte, error) {
	if err := s.next(); err != nil {
		return 0, err
	}
	s.d.sawInput = true
	b := s.d.cur[0]
	s.d.cur = s.d.cur[1:]
	return b, nil
}
