package ws

import (
	"bytes"
	"testing"
)

// FuzzReader feeds arbitrary bytes to readers of both roles, with and without compression and
// with small limits: no input may crash one, and what it returns keeps to its limits and to
// the protocol.
func FuzzReader(f *testing.F) {
	f.Add([]byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58})
	f.Add([]byte{0x01, 0x03, 0x48, 0x65, 0x6c, 0x89, 0x00, 0x80, 0x02, 0x6c, 0x6f})
	f.Add([]byte{0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00})
	f.Add(cat(cframe(false, OpText, "a\xf0\x90"), cframe(true, OpContinuation, "\x80\x80")))
	f.Add(cframe(true, OpClose, "\x03\xe8bye"))
	f.Add([]byte{0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, role := range []Role{ServerSide, ClientSide} {
			for _, c := range []*Config{
				{MaxFrameSize: 512, MaxMessageSize: 1024},
				{MaxFrameSize: 512, MaxMessageSize: 1024, Deflate: &DeflateParams{}},
				{MaxMessageSize: 1024, Deflate: &DeflateParams{ServerNoContextTakeover: true, ClientNoContextTakeover: true}},
			} {
				r := NewReader(bytes.NewReader(in), role, c)
				for range 64 {
					m, err := r.ReadMessage()
					if err != nil {
						break
					}
					switch m.Opcode {
					case OpText, OpBinary:
						if int64(len(m.Payload)) > c.MaxMessageSize {
							t.Fatalf("message of %d bytes past the limit", len(m.Payload))
						}
					case OpClose, OpPing, OpPong:
						if len(m.Payload) > MaxControlPayload {
							t.Fatalf("control frame of %d bytes", len(m.Payload))
						}
					default:
						t.Fatalf("returned opcode %d", m.Opcode)
					}
				}
			}
		}
		if h, n, err := ParseHeader(in); err == nil {
			if got := AppendHeader(nil, h); n < len(got) {
				t.Fatalf("head of %d bytes re-encoded in %d", n, len(got))
			}
		}
	})
}

// FuzzInflate feeds arbitrary bytes as a compressed message: inflating never crashes nor
// passes the limit, and what the compressor makes of the input inflates back to it, in a
// context shared with the message before.
func FuzzInflate(f *testing.F) {
	f.Add([]byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00})
	f.Add([]byte{0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00})
	f.Add([]byte{0xf2, 0x00, 0x11, 0x00, 0x00})
	f.Add([]byte("plain text that is not deflate at all"))
	f.Fuzz(func(t *testing.T, in []byte) {
		const limit = 64 << 10
		d := &decompressor{}
		out, err := d.decompress(nil, append([]byte(nil), in...), limit)
		if err == nil && len(out) > limit {
			t.Fatalf("inflated to %d bytes past the limit", len(out))
		}
		c := newCompressor(DefaultCompressionLevel, 15, false)
		defer c.release()
		d = &decompressor{}
		for range 2 {
			z, err := c.compress(in)
			if err != nil {
				t.Fatal(err)
			}
			back, err := d.decompress(nil, append([]byte(nil), z...), int64(len(in)))
			if err != nil || !bytes.Equal(back, in) {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}
