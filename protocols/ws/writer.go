package ws

import (
	"bufio"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"unicode/utf8"
)

// Writer writes frames to one peer: masked with a fresh key per frame when it plays the client,
// compressed when permessage-deflate was negotiated and the caller asks for it, split into
// fragments of Config.FragmentSize. Every call writes whole frames and flushes them. A Writer
// is not safe for concurrent use.
type Writer struct {
	bw       *bufio.Writer
	role     Role
	fragment int
	comp     *compressor
	rng      *rand.ChaCha8
	hdr      [MaxHeaderSize]byte
	scratch  []byte
}

// maskChunk is how much payload a client Writer masks at a time (in a scratch buffer, so the
// caller's bytes stay untouched).
const maskChunk = 8 << 10

// NewWriter returns a Writer of frames an endpoint of role sends to dst.
func NewWriter(dst io.Writer, role Role, c *Config) *Writer {
	w := &Writer{bw: bufio.NewWriterSize(dst, 4096), role: role}
	if c != nil {
		w.fragment = c.FragmentSize
		if c.Deflate != nil {
			w.comp = newCompressor(c.CompressionLevel, c.Deflate.bits(role), c.Deflate.noContext(role))
		}
	}
	if role == ClientSide {
		var seed [32]byte
		crand.Read(seed[:])
		w.rng = rand.NewChaCha8(seed)
		w.scratch = make([]byte, maskChunk)
	}
	return w
}

// CanCompress reports whether permessage-deflate was negotiated for this Writer.
func (w *Writer) CanCompress() bool { return w.comp != nil }

// WriteMessage writes a text or binary message, compressed when compress is set and
// permessage-deflate was negotiated.
func (w *Writer) WriteMessage(op Opcode, payload []byte, compress bool) error {
	if op != OpText && op != OpBinary {
		return errors.New("websocket: WriteMessage takes a text or binary opcode")
	}
	rsv1 := false
	if compress && w.comp != nil {
		var err error
		if payload, err = w.comp.compress(payload); err != nil {
			return err
		}
		rsv1 = true
	}
	for first := true; ; first = false {
		n := len(payload)
		if w.fragment > 0 && n > w.fragment {
			n = w.fragment
		}
		h := Header{Fin: n == len(payload), RSV1: rsv1 && first, Opcode: op}
		if !first {
			h.Opcode = OpContinuation
		}
		if err := w.frame(h, payload[:n]); err != nil {
			return err
		}
		payload = payload[n:]
		if h.Fin {
			return w.bw.Flush()
		}
	}
}

// WriteControl writes a ping, pong or close frame with payload (at most 125 bytes; a close
// payload is not checked here, see WriteClose).
func (w *Writer) WriteControl(op Opcode, payload []byte) error {
	if op != OpPing && op != OpPong && op != OpClose {
		return errors.New("websocket: WriteControl takes a control opcode")
	}
	if len(payload) > MaxControlPayload {
		return errors.New("websocket: control frame payload longer than 125 bytes")
	}
	if err := w.frame(Header{Fin: true, Opcode: op}, payload); err != nil {
		return err
	}
	return w.bw.Flush()
}

// WriteClose writes a close frame with code and reason (cut to MaxCloseReason bytes on a rune
// boundary). CloseNoStatus sends a close frame without a body; other codes must be
// ValidOnWire.
func (w *Writer) WriteClose(code CloseCode, reason string) error {
	var b [MaxControlPayload]byte
	p := b[:0]
	if code != CloseNoStatus {
		if !code.ValidOnWire() {
			return ErrInvalidCloseCode
		}
		if !utf8.ValidString(reason) {
			return errors.New("websocket: close reason is not valid UTF-8")
		}
		p = binary.BigEndian.AppendUint16(p, uint16(code))
		p = append(p, truncateUTF8(reason, MaxCloseReason)...)
	}
	return w.WriteControl(OpClose, p)
}

// frame writes one frame, masking it when playing the client.
func (w *Writer) frame(h Header, p []byte) error {
	h.Length = int64(len(p))
	if w.role == ClientSide {
		h.Masked = true
		binary.LittleEndian.PutUint32(h.Mask[:], uint32(w.rng.Uint64()))
	}
	if _, err := w.bw.Write(AppendHeader(w.hdr[:0], h)); err != nil {
		return err
	}
	if !h.Masked {
		_, err := w.bw.Write(p)
		return err
	}
	pos := 0
	for len(p) > 0 {
		n := copy(w.scratch, p)
		pos = Mask(h.Mask, pos, w.scratch[:n])
		if _, err := w.bw.Write(w.scratch[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// Release returns the compressor's state to a pool; the Writer must not be used afterwards.
func (w *Writer) Release() {
	if w.comp != nil {
		w.comp.release()
	}
}
