package ws

import (
	"encoding/binary"
	"io"
	"unicode/utf8"
)

// Header is the head of one frame (RFC 6455 §5.2).
type Header struct {
	Fin              bool
	RSV1, RSV2, RSV3 bool
	Opcode           Opcode
	Masked           bool
	Mask             [4]byte
	// Length is the payload length.
	Length int64
}

// MaxHeaderSize is the longest frame head: 2 bytes, an 8-byte length and a 4-byte mask.
const MaxHeaderSize = 14

// headerSize returns how long the head starting with b0, b1 is.
func headerSize(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// ParseHeader decodes the frame head at the start of b and returns it with its length in
// bytes. It returns io.ErrUnexpectedEOF when b holds only part of a head, and a protocol
// error for a 64-bit length with its top bit set. The rules that depend on the connection
// (masking, reserved bits, opcodes, fragmentation) are the Reader's to check.
func ParseHeader(b []byte) (Header, int, error) {
	var h Header
	if len(b) < 2 {
		return h, 0, io.ErrUnexpectedEOF
	}
	n := headerSize(b[1])
	if len(b) < n {
		return h, 0, io.ErrUnexpectedEOF
	}
	h.Fin = b[0]&0x80 != 0
	h.RSV1 = b[0]&0x40 != 0
	h.RSV2 = b[0]&0x20 != 0
	h.RSV3 = b[0]&0x10 != 0
	h.Opcode = Opcode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	p := 2
	switch l := b[1] & 0x7f; l {
	case 126:
		h.Length = int64(binary.BigEndian.Uint16(b[2:]))
		p += 2
	case 127:
		v := binary.BigEndian.Uint64(b[2:])
		if v>>63 != 0 {
			return h, 0, protoErr("frame length has its most significant bit set")
		}
		h.Length = int64(v)
		p += 8
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		copy(h.Mask[:], b[p:p+4])
	}
	return h, n, nil
}

// AppendHeader appends the encoding of h to dst, with the shortest length form.
func AppendHeader(dst []byte, h Header) []byte {
	b0 := byte(h.Opcode & 0x0f)
	if h.Fin {
		b0 |= 0x80
	}
	if h.RSV1 {
		b0 |= 0x40
	}
	if h.RSV2 {
		b0 |= 0x20
	}
	if h.RSV3 {
		b0 |= 0x10
	}
	var b1 byte
	if h.Masked {
		b1 = 0x80
	}
	switch {
	case h.Length <= 125:
		dst = append(dst, b0, b1|byte(h.Length))
	case h.Length <= 0xffff:
		dst = append(dst, b0, b1|126, byte(h.Length>>8), byte(h.Length))
	default:
		dst = append(dst, b0, b1|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(h.Length))
	}
	if h.Masked {
		dst = append(dst, h.Mask[:]...)
	}
	return dst
}

// Mask XORs b in place with key, starting at position pos of the key's cycle (the offset of b
// in the frame's payload), and returns the position after b. Masking twice unmasks.
func Mask(key [4]byte, pos int, b []byte) int {
	pos &= 3
	// Bring the key in line with b's first byte, then work 8 bytes at a time.
	k := [4]byte{key[pos], key[(pos+1)&3], key[(pos+2)&3], key[(pos+3)&3]}
	k32 := binary.LittleEndian.Uint32(k[:])
	k64 := uint64(k32) | uint64(k32)<<32
	i := 0
	for ; i+8 <= len(b); i += 8 {
		v := binary.LittleEndian.Uint64(b[i:])
		binary.LittleEndian.PutUint64(b[i:], v^k64)
	}
	for ; i < len(b); i++ {
		b[i] ^= k[i&3]
	}
	return (pos + len(b)) & 3
}

// validUTF8Prefix reports whether b is valid UTF-8 except for an incomplete but so far valid
// sequence at its end (a message whose later fragments may complete it), and how many bytes
// that unfinished tail holds.
func validUTF8Prefix(b []byte) (ok bool, tail int) {
	// Find where the last rune starts: at most 3 bytes back.
	start := len(b)
	for i := len(b) - 1; i >= 0 && i >= len(b)-4; i-- {
		if !utf8.RuneStart(b[i]) {
			continue
		}
		start = i
		break
	}
	if start == len(b) || utf8.FullRune(b[start:]) {
		return utf8.Valid(b), 0
	}
	if !utf8.Valid(b[:start]) {
		return false, 0
	}
	return partialRuneOK(b[start:]), len(b) - start
}

// partialRuneOK reports whether p, shorter than its rune, can still become a valid rune: the
// lead byte and the bytes after it respect the ranges of RFC 3629 §4.
func partialRuneOK(p []byte) bool {
	lo, hi := byte(0x80), byte(0xbf)
	switch c := p[0]; {
	case c >= 0xc2 && c <= 0xdf:
	case c == 0xe0:
		lo = 0xa0
	case c >= 0xe1 && c <= 0xec, c == 0xee, c == 0xef:
	case c == 0xed:
		hi = 0x9f
	case c == 0xf0:
		lo = 0x90
	case c >= 0xf1 && c <= 0xf3:
	case c == 0xf4:
		hi = 0x8f
	default:
		return false
	}
	for i, c := range p[1:] {
		if i > 0 {
			lo, hi = 0x80, 0xbf
		}
		if c < lo || c > hi {
			return false
		}
	}
	return true
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
