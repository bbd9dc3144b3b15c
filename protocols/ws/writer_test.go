package ws

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestWriterServerFramesAreRFCBytes(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b, ServerSide, nil)
	if err := w.WriteMessage(OpText, []byte("Hello"), false); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteControl(OpPing, []byte("Hello")); err != nil {
		t.Fatal(err)
	}
	want := []byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}
	if !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("wrote % x, want % x", b.Bytes(), want)
	}
}

func TestWriterFragments(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b, ServerSide, &Config{FragmentSize: 2})
	if err := w.WriteMessage(OpText, []byte("Hello"), false); err != nil {
		t.Fatal(err)
	}
	want := cat(sframe(false, OpText, "He"), sframe(false, OpContinuation, "ll"), sframe(true, OpContinuation, "o"))
	if !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("wrote % x, want % x", b.Bytes(), want)
	}
}

// A client masks every frame with a new key and leaves the caller's bytes alone.
func TestWriterClientMasks(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b, ClientSide, nil)
	payload := []byte(strings.Repeat("mask me ", 3000))
	orig := append([]byte(nil), payload...)
	for range 2 {
		if err := w.WriteMessage(OpBinary, payload, false); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(payload, orig) {
		t.Fatal("the writer changed the caller's payload")
	}
	wire := b.Bytes()
	h1, n1, _ := ParseHeader(wire)
	h2, _, _ := ParseHeader(wire[n1+int(h1.Length):])
	if !h1.Masked || !h2.Masked || h1.Mask == h2.Mask {
		t.Fatalf("masks %v %x, %v %x", h1.Masked, h1.Mask, h2.Masked, h2.Mask)
	}
	if bytes.Contains(wire, []byte("mask me")) {
		t.Fatal("payload went out unmasked")
	}
	msgs, err := readAll(wire, ServerSide, nil)
	wantEOF(t, err)
	if len(msgs) != 2 || msgs[0].payload != string(orig) || msgs[1].payload != string(orig) {
		t.Fatal("read back a different payload")
	}
}

func TestWriteClose(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b, ServerSide, nil)
	if err := w.WriteClose(CloseNoStatus, "ignored"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), []byte{0x88, 0x00}) {
		t.Fatalf("close without status: % x", b.Bytes())
	}
	for _, c := range []CloseCode{CloseAbnormal, CloseTLSHandshakeFail, 1004, 999, 2000, 5000} {
		if err := w.WriteClose(c, ""); err != ErrInvalidCloseCode {
			t.Fatalf("code %d: %v", c, err)
		}
	}
	b.Reset()
	long := strings.Repeat("é", 100) // 200 bytes
	if err := w.WriteClose(CloseGoingAway, long); err != nil {
		t.Fatal(err)
	}
	r := NewReader(&b, ClientSide, nil)
	m, err := r.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if m.CloseCode() != CloseGoingAway || len(m.CloseReason()) != 122 || !strings.HasPrefix(long, m.CloseReason()) {
		t.Fatalf("close %d with a reason of %d bytes", m.CloseCode(), len(m.CloseReason()))
	}
	if err := w.WriteControl(OpPing, make([]byte, 126)); err == nil {
		t.Fatal("wrote a ping of 126 bytes")
	}
	if err := w.WriteMessage(OpPing, nil, false); err == nil {
		t.Fatal("WriteMessage took a control opcode")
	}
}

// Messages of any size, fragmented any way, compressed or not, read back as written, in both
// roles.
func TestWriterReaderRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, deflate := range []*DeflateParams{nil, {}, {ServerNoContextTakeover: true, ClientNoContextTakeover: true},
		{ServerMaxWindowBits: 9, ClientMaxWindowBits: 10}} {
		for _, role := range []Role{ServerSide, ClientSide} {
			peer := ServerSide
			if role == ServerSide {
				peer = ClientSide
			}
			var wire bytes.Buffer
			var sent [][]byte
			for i := range 40 {
				w := NewWriter(&wire, role, &Config{Deflate: deflate, FragmentSize: rng.IntN(3000)})
				n := rng.IntN(20000)
				p := make([]byte, n)
				for j := range p {
					p[j] = byte('a' + rng.IntN(4)) // compressible text
				}
				sent = append(sent, p)
				if err := w.WriteMessage(OpText, p, rng.IntN(4) != 0); err != nil {
					t.Fatal(err)
				}
				// One writer per message would lose the compression context: write the rest
				// with the same writer.
				for _, q := range [][]byte{p, []byte("tail")} {
					sent = append(sent, q)
					if err := w.WriteMessage(OpBinary, q, true); err != nil {
						t.Fatal(err)
					}
				}
				w.Release()
				r := NewReader(&wire, peer, &Config{Deflate: deflate})
				for k := range 3 {
					m, err := r.ReadMessage()
					if err != nil {
						t.Fatalf("deflate %+v role %d message %d.%d: %v", deflate, role, i, k, err)
					}
					if want := sent[len(sent)-3+k]; !bytes.Equal(m.Payload, want) {
						t.Fatalf("deflate %+v role %d message %d.%d: %d bytes back, want %d", deflate, role, i, k, len(m.Payload), len(want))
					}
				}
			}
		}
	}
}
