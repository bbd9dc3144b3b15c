package ws

import (
	"bytes"
	"encoding/binary"
	"io"
	"reflect"
	"strings"
	"testing"
)

// The examples of RFC 6455 §5.7, byte for byte.
func TestReaderRFC6455Examples(t *testing.T) {
	big256 := bytes.Repeat([]byte{'x'}, 256)
	big64k := bytes.Repeat([]byte{'y'}, 65536)
	tests := []struct {
		name string
		role Role
		in   []byte
		want []got
	}{
		{"unmasked text", ClientSide, []byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}, []got{{OpText, "Hello"}}},
		{"masked text", ServerSide, []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}, []got{{OpText, "Hello"}}},
		{"fragmented text", ClientSide, []byte{0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f}, []got{{OpText, "Hello"}}},
		{"ping", ClientSide, []byte{0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}, []got{{OpPing, "Hello"}}},
		{"masked pong", ServerSide, []byte{0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}, []got{{OpPong, "Hello"}}},
		{"256 bytes", ClientSide, append([]byte{0x82, 0x7e, 0x01, 0x00}, big256...), []got{{OpBinary, string(big256)}}},
		{"64 KiB", ClientSide, append([]byte{0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0}, big64k...), []got{{OpBinary, string(big64k)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := readAll(tt.in, tt.role, nil)
			wantEOF(t, err)
			if !reflect.DeepEqual(msgs, tt.want) {
				t.Fatalf("got %+v, want %+v", msgs, tt.want)
			}
		})
	}
}

func TestReaderControlInterleaved(t *testing.T) {
	in := cat(cframe(false, OpText, "Hel"), cframe(true, OpPing, "p1"), cframe(false, OpContinuation, "l"),
		cframe(true, OpPong, "p2"), cframe(true, OpContinuation, "o"), cframe(true, OpBinary, "\x00\xff"),
		cframe(true, OpClose, "\x03\xe8bye"))
	msgs, err := readAll(in, ServerSide, nil)
	wantEOF(t, err)
	want := []got{{OpPing, "p1"}, {OpPong, "p2"}, {OpText, "Hello"}, {OpBinary, "\x00\xff"}, {OpClose, "\x03\xe8bye"}}
	if !reflect.DeepEqual(msgs, want) {
		t.Fatalf("got %+v, want %+v", msgs, want)
	}
}

// Every rule of RFC 6455 a reader enforces, with the close code it fails with.
func TestReaderViolations(t *testing.T) {
	long := strings.Repeat("a", 126)
	closeWith := func(code uint16, reason string) []byte {
		p := binary.BigEndian.AppendUint16(nil, code)
		return cframe(true, OpClose, string(p)+reason)
	}
	tests := []struct {
		name string
		role Role
		c    *Config
		in   []byte
		code CloseCode
	}{
		{"unmasked client frame", ServerSide, nil, sframe(true, OpText, "x"), CloseProtocolError},
		{"masked server frame", ClientSide, nil, cframe(true, OpText, "x"), CloseProtocolError},
		{"RSV1 without deflate", ServerSide, nil, frame(true, OpText, true, testMask, []byte("x")), CloseProtocolError},
		{"RSV2", ServerSide, nil, func() []byte { b := cframe(true, OpText, "x"); b[0] |= 0x20; return b }(), CloseProtocolError},
		{"RSV3", ServerSide, nil, func() []byte { b := cframe(true, OpText, "x"); b[0] |= 0x10; return b }(), CloseProtocolError},
		{"opcode 3", ServerSide, nil, cframe(true, 3, "x"), CloseProtocolError},
		{"opcode 7", ServerSide, nil, cframe(true, 7, "x"), CloseProtocolError},
		{"opcode 0xB", ServerSide, nil, cframe(true, 0xB, "x"), CloseProtocolError},
		{"opcode 0xF", ServerSide, nil, cframe(true, 0xF, ""), CloseProtocolError},
		{"fragmented ping", ServerSide, nil, cframe(false, OpPing, "x"), CloseProtocolError},
		{"ping of 126 bytes", ServerSide, nil, cframe(true, OpPing, long), CloseProtocolError},
		{"close of 126 bytes", ServerSide, nil, cframe(true, OpClose, "\x03\xe8"+long[:124]), CloseProtocolError},
		{"RSV1 on ping", ServerSide, &Config{Deflate: &DeflateParams{}}, frame(true, OpPing, true, testMask, nil), CloseProtocolError},
		{"RSV1 on continuation", ServerSide, &Config{Deflate: &DeflateParams{}},
			cat(frame(false, OpText, true, testMask, []byte{0xf2}), frame(true, OpContinuation, true, testMask, []byte{0})), CloseProtocolError},
		{"continuation first", ServerSide, nil, cframe(true, OpContinuation, "x"), CloseProtocolError},
		{"text inside a message", ServerSide, nil, cat(cframe(false, OpText, "a"), cframe(true, OpText, "b")), CloseProtocolError},
		{"binary inside a message", ServerSide, nil, cat(cframe(false, OpBinary, "a"), cframe(true, OpBinary, "b")), CloseProtocolError},
		{"64-bit length with top bit", ClientSide, nil, []byte{0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1}, CloseProtocolError},
		{"frame too big", ServerSide, &Config{MaxFrameSize: 10}, cframe(true, OpBinary, "01234567890"), CloseMessageTooBig},
		{"message too big", ServerSide, &Config{MaxMessageSize: 10},
			cat(cframe(false, OpBinary, "012345"), cframe(true, OpContinuation, "67890")), CloseMessageTooBig},
		{"invalid UTF-8", ServerSide, nil, cframe(true, OpText, "a\xffb"), CloseInvalidPayload},
		{"surrogate in UTF-8", ServerSide, nil, cframe(true, OpText, "\xed\xa0\x80"), CloseInvalidPayload},
		{"truncated UTF-8 at the end", ServerSide, nil, cframe(true, OpText, "a\xe2\x82"), CloseInvalidPayload},
		{"truncated UTF-8 across fragments", ServerSide, nil,
			cat(cframe(false, OpText, "a\xf0\x90"), cframe(true, OpContinuation, "\x80")), CloseInvalidPayload},
		{"close with 1 byte", ServerSide, nil, cframe(true, OpClose, "\x03"), CloseProtocolError},
		{"close 999", ServerSide, nil, closeWith(999, ""), CloseProtocolError},
		{"close 1004", ServerSide, nil, closeWith(1004, ""), CloseProtocolError},
		{"close 1005", ServerSide, nil, closeWith(1005, ""), CloseProtocolError},
		{"close 1006", ServerSide, nil, closeWith(1006, ""), CloseProtocolError},
		{"close 1015", ServerSide, nil, closeWith(1015, ""), CloseProtocolError},
		{"close 1016", ServerSide, nil, closeWith(1016, ""), CloseProtocolError},
		{"close 2999", ServerSide, nil, closeWith(2999, ""), CloseProtocolError},
		{"close 5000", ServerSide, nil, closeWith(5000, ""), CloseProtocolError},
		{"close reason not UTF-8", ServerSide, nil, closeWith(1000, "\xc0\xaf"), CloseInvalidPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readAll(tt.in, tt.role, tt.c)
			wantCode(t, err, tt.code)
		})
	}
}

func TestReaderValidCloseCodes(t *testing.T) {
	for _, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999} {
		p := string(binary.BigEndian.AppendUint16(nil, code)) + "réason"
		msgs, err := readAll(cframe(true, OpClose, p), ServerSide, nil)
		wantEOF(t, err)
		if len(msgs) != 1 || msgs[0].op != OpClose {
			t.Fatalf("code %d: got %+v", code, msgs)
		}
		r := NewReader(bytes.NewReader(cframe(true, OpClose, p)), ServerSide, nil)
		m, _ := r.ReadMessage()
		if m.CloseCode() != CloseCode(code) || m.CloseReason() != "réason" {
			t.Fatalf("code %d: parsed %d %q", code, m.CloseCode(), m.CloseReason())
		}
	}
	r := NewReader(bytes.NewReader(cframe(true, OpClose, "")), ServerSide, nil)
	if m, err := r.ReadMessage(); err != nil || m.CloseCode() != CloseNoStatus {
		t.Fatalf("empty close: %v %v", m, err)
	}
}

// Invalid UTF-8 fails as soon as the fragment that holds it arrives, before the message ends.
func TestReaderUTF8FailsFast(t *testing.T) {
	_, err := readAll(cframe(false, OpText, "ok\xc0"), ServerSide, nil)
	wantCode(t, err, CloseInvalidPayload)
	// A valid sequence cut between fragments is fine, however it is cut.
	text := "añ€𐍈z"
	for i := 1; i < len(text); i++ {
		for j := i + 1; j < len(text); j++ {
			in := cat(cframe(false, OpText, text[:i]), cframe(false, OpContinuation, text[i:j]), cframe(true, OpContinuation, text[j:]))
			msgs, err := readAll(in, ServerSide, nil)
			wantEOF(t, err)
			if len(msgs) != 1 || msgs[0].payload != text {
				t.Fatalf("cut at %d,%d: %+v", i, j, msgs)
			}
		}
	}
	// A prefix of an invalid sequence fails before its continuation arrives.
	for _, bad := range []string{"\xe0\x80", "\xed\xa0", "\xf0\x80", "\xf4\x90", "\xf5", "\xc1"} {
		_, err := readAll(cframe(false, OpText, "a"+bad), ServerSide, nil)
		wantCode(t, err, CloseInvalidPayload)
	}
}

func TestReaderEOF(t *testing.T) {
	_, err := readAll(nil, ServerSide, nil)
	wantEOF(t, err)
	full := cframe(true, OpText, "hello")
	for i := 1; i < len(full); i++ {
		_, err := readAll(full[:i], ServerSide, nil)
		if err != io.ErrUnexpectedEOF {
			t.Fatalf("cut at %d: %v", i, err)
		}
	}
	// Between the fragments of a message the connection may not end either.
	_, err = readAll(cframe(false, OpText, "hel"), ServerSide, nil)
	if err != io.ErrUnexpectedEOF {
		t.Fatalf("inside a message: %v", err)
	}
	// After a close frame the reader reports the end even if bytes follow.
	msgs, err := readAll(cat(cframe(true, OpClose, ""), cframe(true, OpText, "late")), ServerSide, nil)
	wantEOF(t, err)
	if len(msgs) != 1 {
		t.Fatalf("read past close: %+v", msgs)
	}
}

func TestReaderLimitsAllowExactSize(t *testing.T) {
	c := &Config{MaxFrameSize: 5, MaxMessageSize: 10}
	in := cat(cframe(false, OpBinary, "01234"), cframe(true, OpContinuation, "56789"))
	msgs, err := readAll(in, ServerSide, c)
	wantEOF(t, err)
	if len(msgs) != 1 || msgs[0].payload != "0123456789" {
		t.Fatalf("got %+v", msgs)
	}
}

// A reader drops a buffer grown for a big message, so that a connection does not keep it.
func TestReaderDropsBigBuffer(t *testing.T) {
	big := strings.Repeat("z", 2*maxKeptBuffer)
	r := NewReader(bytes.NewReader(cat(cframe(true, OpBinary, big), cframe(true, OpBinary, "small"))), ServerSide, nil)
	if m, err := r.ReadMessage(); err != nil || len(m.Payload) != len(big) {
		t.Fatal(err)
	}
	if m, err := r.ReadMessage(); err != nil || string(m.Payload) != "small" {
		t.Fatal(err)
	}
	if cap(r.buf) > maxKeptBuffer {
		t.Fatalf("kept a buffer of %d bytes", cap(r.buf))
	}
}

func TestParseHeaderRoundTrip(t *testing.T) {
	for _, h := range []Header{
		{Fin: true, Opcode: OpText, Length: 0},
		{Fin: true, Opcode: OpBinary, Length: 125},
		{Opcode: OpText, RSV1: true, Length: 126},
		{Fin: true, Opcode: OpBinary, Length: 65535, Masked: true, Mask: [4]byte{1, 2, 3, 4}},
		{Fin: true, Opcode: OpBinary, Length: 65536},
		{Fin: true, Opcode: OpBinary, Length: 1 << 40, RSV2: true, RSV3: true},
	} {
		b := AppendHeader(nil, h)
		got, n, err := ParseHeader(b)
		if err != nil || n != len(b) || got != h {
			t.Fatalf("%+v: parsed %+v, %d of %d bytes, %v", h, got, n, len(b), err)
		}
		if _, _, err := ParseHeader(b[:len(b)-1]); err != io.ErrUnexpectedEOF {
			t.Fatalf("%+v: short head: %v", h, err)
		}
	}
}

func TestMaskMatchesBytewise(t *testing.T) {
	key := [4]byte{0xde, 0xad, 0xbe, 0xef}
	for n := range 40 {
		for pos := range 4 {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(i * 7)
			}
			want := append([]byte(nil), b...)
			for i := range want {
				want[i] ^= key[(pos+i)&3]
			}
			if next := Mask(key, pos, b); next != (pos+n)&3 || !bytes.Equal(b, want) {
				t.Fatalf("n=%d pos=%d: wrong mask", n, pos)
			}
		}
	}
}

func TestAcceptKey(t *testing.T) {
	// RFC 6455 §1.3.
	if got := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("got %q", got)
	}
}
