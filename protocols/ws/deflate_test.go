package ws

import (
	"bytes"
	"crypto/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/flate"
)

// The examples of RFC 7692 §7.2.3, as a client reads them from a server.
func TestDeflateRFC7692Examples(t *testing.T) {
	c := &Config{Deflate: &DeflateParams{}}
	tests := []struct {
		name string
		in   []byte
		want []got
	}{
		{"Hello", []byte{0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}, []got{{OpText, "Hello"}}},
		{"sharing the LZ77 window", []byte{0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00},
			[]got{{OpText, "Hello"}, {OpText, "Hello"}}},
		{"fragmented", []byte{0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00}, []got{{OpText, "Hello"}}},
		{"stored block", []byte{0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}, []got{{OpText, "Hello"}}},
		{"BFINAL set", []byte{0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}, []got{{OpText, "Hello"}}},
		{"two blocks", []byte{0xc1, 0x0d, 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00}, []got{{OpText, "Hello"}}},
		{"uncompressed beside compressed", []byte{0x81, 0x05, 'H', 'e', 'l', 'l', 'o', 0xc2, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00},
			[]got{{OpText, "Hello"}, {OpBinary, "Hello"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := readAll(tt.in, ClientSide, c)
			wantEOF(t, err)
			if !reflect.DeepEqual(msgs, tt.want) {
				t.Fatalf("got %+v, want %+v", msgs, tt.want)
			}
		})
	}
	// The second message of the window example refers to the first: without context
	// takeover it cannot be read.
	noCtx := &Config{Deflate: &DeflateParams{ServerNoContextTakeover: true}}
	_, err := readAll([]byte{0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00}, ClientSide, noCtx)
	wantCode(t, err, CloseInvalidPayload)
}

// compressedSizes writes msg twice with a server writer and returns the payload sizes.
func compressedSizes(t *testing.T, p *DeflateParams, msg []byte) (int64, int64) {
	t.Helper()
	var b bytes.Buffer
	w := NewWriter(&b, ServerSide, &Config{Deflate: p})
	defer w.Release()
	var sizes []int64
	for range 2 {
		if err := w.WriteMessage(OpBinary, msg, true); err != nil {
			t.Fatal(err)
		}
		h, n, err := ParseHeader(b.Bytes())
		if err != nil || !h.RSV1 {
			t.Fatalf("frame %+v, %v", h, err)
		}
		sizes = append(sizes, h.Length)
		b.Next(n + int(h.Length))
	}
	return sizes[0], sizes[1]
}

func TestDeflateContextTakeover(t *testing.T) {
	msg := make([]byte, 4000)
	rand.Read(msg) // incompressible on its own; only a reference to the previous copy helps
	first, second := compressedSizes(t, &DeflateParams{}, msg)
	if second > first/4 {
		t.Fatalf("with context takeover the repeat took %d bytes after %d", second, first)
	}
	first, second = compressedSizes(t, &DeflateParams{ServerNoContextTakeover: true}, msg)
	if second < first*9/10 {
		t.Fatalf("without context takeover the repeat took %d bytes after %d: it used the old context", second, first)
	}
	// The client's parameter does not bind the server.
	_, second = compressedSizes(t, &DeflateParams{ClientNoContextTakeover: true}, msg)
	if second > first/4 {
		t.Fatal("client_no_context_takeover stopped the server's context takeover")
	}
}

// A compressor with a small window does not refer further back than the window.
func TestDeflateWindowBits(t *testing.T) {
	block := make([]byte, 1000)
	rand.Read(block)
	msg := append(append([]byte(nil), block...), block...) // a repeat 1000 bytes back
	for _, tt := range []struct {
		bits  int
		reach bool
	}{{15, true}, {10, true}, {9, false}, {8, false}} {
		size, _ := compressedSizes(t, &DeflateParams{ServerMaxWindowBits: tt.bits}, msg)
		if reach := size < 1500; reach != tt.reach {
			t.Fatalf("window bits %d: %d bytes for 2000 (reached the repeat: %v)", tt.bits, size, reach)
		}
	}
}

func TestDeflateLimits(t *testing.T) {
	// A small compressed message that inflates past the limit fails with 1009.
	var zb bytes.Buffer
	fw, _ := flate.NewWriter(&zb, flate.BestCompression)
	fw.Write(make([]byte, 10<<20))
	fw.Flush()
	bomb := bytes.TrimSuffix(zb.Bytes(), deflateTail[:])
	if len(bomb) > 64<<10 {
		t.Fatalf("bomb of %d bytes", len(bomb))
	}
	c := &Config{MaxMessageSize: 1 << 20, Deflate: &DeflateParams{}}
	_, err := readAll(frame(true, OpBinary, true, nil, bomb), ClientSide, c)
	wantCode(t, err, CloseMessageTooBig)
	// Exactly at the limit is fine.
	zb.Reset()
	fw.Reset(&zb)
	fw.Write(make([]byte, 1<<20))
	fw.Flush()
	msgs, err := readAll(frame(true, OpBinary, true, nil, bytes.TrimSuffix(zb.Bytes(), deflateTail[:])), ClientSide, c)
	wantEOF(t, err)
	if len(msgs) != 1 || len(msgs[0].payload) != 1<<20 {
		t.Fatal("message at the limit not read")
	}
	// Garbage and invalid UTF-8 after inflating fail with 1007.
	_, err = readAll(frame(true, OpBinary, true, nil, []byte{0xff, 0xff, 0xff}), ClientSide, c)
	wantCode(t, err, CloseInvalidPayload)
	var b bytes.Buffer
	w := NewWriter(&b, ServerSide, c)
	bad, _ := w.comp.compress([]byte("ok\xff"))
	_, err = readAll(frame(true, OpText, true, nil, bad), ClientSide, c)
	if e, ok := err.(*Error); !ok || e != ErrInvalidUTF8 {
		t.Fatalf("compressed invalid UTF-8: %v", err)
	}
}

func TestParseExtensions(t *testing.T) {
	tests := []struct {
		in   []string
		want []Extension
		bad  bool
	}{
		{[]string{"permessage-deflate"}, []Extension{{Name: "permessage-deflate"}}, false},
		{[]string{"permessage-deflate; client_max_window_bits, permessage-deflate ;server_max_window_bits = \"10\" ", "x-foo"},
			[]Extension{{Name: "permessage-deflate", Params: []Param{{Name: "client_max_window_bits"}}},
				{Name: "permessage-deflate", Params: []Param{{Name: "server_max_window_bits", Value: "10", HasValue: true}}},
				{Name: "x-foo"}}, false},
		{[]string{" , a ,, b"}, []Extension{{Name: "a"}, {Name: "b"}}, false},
		{[]string{""}, nil, false},
		{[]string{"a;"}, nil, true},
		{[]string{"a; b="}, nil, true},
		{[]string{"a; b=\"unterminated"}, nil, true},
		{[]string{"a b"}, nil, true},
		{[]string{"=a"}, nil, true},
		{[]string{strings.Repeat("a,", MaxExtensions+1)}, nil, true},
	}
	for _, tt := range tests {
		got, err := ParseExtensions(tt.in...)
		if (err != nil) != tt.bad {
			t.Fatalf("%q: error %v", tt.in, err)
		}
		if !tt.bad && !reflect.DeepEqual(got, tt.want) {
			t.Fatalf("%q: got %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestNegotiateDeflate(t *testing.T) {
	tests := []struct {
		offer string
		conf  DeflateServerConfig
		want  string // "" for no agreement
	}{
		{"permessage-deflate", DeflateServerConfig{}, "permessage-deflate"},
		{"permessage-deflate; client_max_window_bits", DeflateServerConfig{}, "permessage-deflate"},
		{"permessage-deflate; client_max_window_bits=10; server_max_window_bits=12", DeflateServerConfig{},
			"permessage-deflate; server_max_window_bits=12; client_max_window_bits=10"},
		{"permessage-deflate", DeflateServerConfig{NoContextTakeover: true},
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{"permessage-deflate; server_max_window_bits=7, permessage-deflate; server_no_context_takeover", DeflateServerConfig{},
			"permessage-deflate; server_no_context_takeover"},
		{"permessage-deflate; server_max_window_bits", DeflateServerConfig{}, ""},
		{"permessage-deflate; server_max_window_bits=16", DeflateServerConfig{}, ""},
		{"permessage-deflate; server_max_window_bits=010", DeflateServerConfig{}, ""},
		{"permessage-deflate; server_no_context_takeover; server_no_context_takeover", DeflateServerConfig{}, ""},
		{"permessage-deflate; server_no_context_takeover=1", DeflateServerConfig{}, ""},
		{"permessage-deflate; unknown", DeflateServerConfig{}, ""},
		{"x-webkit-deflate-frame", DeflateServerConfig{}, ""},
	}
	for _, tt := range tests {
		exts, err := ParseExtensions(tt.offer)
		if err != nil {
			t.Fatal(err)
		}
		p, ok := NegotiateDeflate(exts, tt.conf)
		got := ""
		if ok {
			got = p.String()
		}
		if got != tt.want {
			t.Fatalf("%q: answered %q, want %q", tt.offer, got, tt.want)
		}
	}
}

func TestParseDeflateResponse(t *testing.T) {
	tests := []struct {
		offer, resp string
		want        DeflateParams
		found, bad  bool
	}{
		{"permessage-deflate", "", DeflateParams{}, false, false},
		{"permessage-deflate", "permessage-deflate", DeflateParams{}, true, false},
		{"permessage-deflate; client_max_window_bits", "permessage-deflate; client_max_window_bits=9; server_no_context_takeover",
			DeflateParams{ClientMaxWindowBits: 9, ServerNoContextTakeover: true}, true, false},
		{"permessage-deflate", "permessage-deflate; client_max_window_bits=9", DeflateParams{}, false, true},
		{"permessage-deflate; client_max_window_bits", "permessage-deflate; client_max_window_bits", DeflateParams{}, false, true},
		{"permessage-deflate", "permessage-deflate, permessage-deflate", DeflateParams{}, false, true},
		{"permessage-deflate", "permessage-deflate; server_max_window_bits=20", DeflateParams{}, false, true},
		{"x-foo", "permessage-deflate", DeflateParams{}, false, true},
		{"permessage-deflate", "x-foo", DeflateParams{}, false, true},
	}
	for _, tt := range tests {
		offers, _ := ParseExtensions(tt.offer)
		resp, _ := ParseExtensions(tt.resp)
		p, found, err := ParseDeflateResponse(resp, offers)
		if (err != nil) != tt.bad || found != tt.found || p != tt.want {
			t.Fatalf("offer %q answer %q: %+v %v %v", tt.offer, tt.resp, p, found, err)
		}
	}
}
