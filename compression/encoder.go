package compression

import (
	"fmt"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Level ranges and defaults of the codings.
const (
	// DefaultGzipLevel is the gzip level used when none is set (zlib's default).
	DefaultGzipLevel = 6
	// DefaultBrotliLevel is the brotli quality used when none is set: a level meant for
	// compressing on the fly, not for static files.
	DefaultBrotliLevel = 5
	// DefaultZstdLevel is the zstd level used when none is set (zstd's default).
	DefaultZstdLevel = 3

	maxGzipLevel   = 9
	maxBrotliLevel = 11
	maxZstdLevel   = 22
)

// brotliWindow is the log2 of brotli's window, as the reference uses (512 KiB).
const brotliWindow = 19

// zstdWindow caps the zstd window: 8 MiB is what RFC 8878 §7.2 asks HTTP decoders to support,
// and a smaller window keeps each pooled encoder small.
const zstdWindow = 1 << 20

// Encoder compresses one body piece by piece. After each piece it flushes, so that a client
// can decode everything it has received: server-sent events and other streams stay live.
// Encoders come from pools (NewEncoder) and go back with Release.
type Encoder struct {
	coding Coding
	level  int
	out    sliceWriter
	gz     *gzip.Writer
	br     *brotli.Writer
	zs     *zstd.Encoder
	closed bool
}

// encoderPools holds released encoders by coding and level.
var encoderPools [numCodings][maxZstdLevel + 1]sync.Pool

// NewEncoder returns an encoder for coding c at level (clamped to the coding's range; 0 or less
// picks the coding's default). It panics for Identity or an unknown coding.
func NewEncoder(c Coding, level int) *Encoder {
	level = clampLevel(c, level)
	if e, ok := encoderPools[c][level].Get().(*Encoder); ok {
		return e
	}
	e := &Encoder{coding: c, level: level}
	switch c {
	case Gzip:
		// NewWriterLevel fails only for a level out of range, which clampLevel prevents.
		e.gz, _ = gzip.NewWriterLevel(&e.out, level)
	case Brotli:
		e.br = brotli.NewWriterOptions(&e.out, brotli.WriterOptions{Quality: level, LGWin: brotliWindow})
	case Zstd:
		// The options are all valid, so NewWriter cannot fail.
		e.zs, _ = zstd.NewWriter(&e.out, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
			zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(zstdWindow), zstd.WithLowerEncoderMem(true))
	default:
		panic(fmt.Sprintf("compression: no encoder for coding %v", c))
	}
	return e
}

// clampLevel brings level into c's range, mapping 0 and below to c's default.
func clampLevel(c Coding, level int) int {
	def, max := 0, 0
	switch c {
	case Gzip:
		def, max = DefaultGzipLevel, maxGzipLevel
	case Brotli:
		def, max = DefaultBrotliLevel, maxBrotliLevel
	case Zstd:
		def, max = DefaultZstdLevel, maxZstdLevel
	default:
		panic(fmt.Sprintf("compression: no encoder for coding %v", c))
	}
	if level <= 0 {
		return def
	}
	return min(level, max)
}

// Coding returns the coding the encoder produces.
func (e *Encoder) Coding() Coding { return e.coding }

// Encode compresses piece and appends the output to dst. Unless last, it flushes, so the
// output decodes to all the input so far; with last it ends the stream. An empty piece that is
// not the last produces nothing.
func (e *Encoder) Encode(dst, piece []byte, last bool) ([]byte, error) {
	if e.closed {
		return dst, errEncoderClosed
	}
	if len(piece) == 0 && !last {
		return dst, nil
	}
	e.out.b = dst
	defer func() { e.out.b = nil }()
	var err error
	switch e.coding {
	case Gzip:
		err = encode(e.gz, piece, last)
	case Brotli:
		err = encode(e.br, piece, last)
	case Zstd:
		err = encode(e.zs, piece, last)
	}
	if last {
		e.closed = true
	}
	return e.out.b, err
}

// streamWriter is what the three compressors have in common.
type streamWriter interface {
	Write(p []byte) (int, error)
	Flush() error
	Close() error
}

func encode(w streamWriter, piece []byte, last bool) error {
	if len(piece) > 0 {
		if _, err := w.Write(piece); err != nil {
			return err
		}
	}
	if last {
		return w.Close()
	}
	return w.Flush()
}

// Release resets the encoder and returns it to its pool; it must not be used afterwards.
func (e *Encoder) Release() {
	switch e.coding {
	case Gzip:
		e.gz.Reset(&e.out)
	case Brotli:
		e.br.Reset(&e.out)
	case Zstd:
		e.zs.Reset(&e.out)
	}
	e.closed = false
	e.out.b = nil
	encoderPools[e.coding][e.level].Put(e)
}

// sliceWriter appends what is written to a byte slice.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}
